"""Approximate indexes (FAISS ivf and hnsw inside the index file): recall against exact search, pinning, damage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from cli_helpers import alice, ok, refused

from alice.config.search import AnnSpec
from alice.errors import AliceError
from alice.search.header import IndexHeader
from alice.search.indexes import Index, write_index

pytest.importorskip("faiss")
pytestmark = pytest.mark.usefixtures("recipe_dir")

META = {"modality": "m", "reference_sha256": "r", "adapter_sha256": "a"}


def clustered(n: int, dim: int = 32, centres: int = 40, seed: int = 0) -> torch.Tensor:
    """Unit vectors around random centres, as embeddings lie (uniform noise in many dimensions has no neighbours)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.nn.functional.normalize(torch.randn(centres, dim, generator=g), dim=1)
    x = c[torch.randint(0, centres, (n,), generator=g)] + 0.5 * torch.randn(n, dim, generator=g) / dim**0.5
    return torch.nn.functional.normalize(x, dim=1)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_search_finds_what_exact_search_finds(tmp_path, kind):
    z = clustered(3000)
    path = write_index(tmp_path / "a.safetensors", z, META, approximate=AnnSpec(kind=kind))
    index = Index.open(path)
    settings = index.meta["ann"]
    assert index.kind == kind
    assert settings["recall_queries"] == 200
    assert settings["recall_at_10"] >= 0.9
    assert settings["factory"].endswith("SQ8")
    assert IndexHeader.read(path).kind == kind
    queries = clustered(50, seed=1)
    exact_scores, exact_rows = index.search(queries, 10, exact=True)
    scores, rows = index.search(queries, 10)
    assert rows.shape == (50, 10)
    recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(rows, exact_rows)])
    assert recall >= 0.9, recall
    # re-ranked: the scores are exact inner products of the rows returned, best first
    assert torch.allclose(scores, (queries[:, None, :] * z[rows]).sum(-1), atol=1e-5)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    # held in memory, the same answers
    assert torch.equal(Index.open(path).load().search(queries, 10)[1], rows)


def test_a_tiny_approximate_index_and_k_beyond_it(tmp_path):
    z = clustered(60)
    index = Index.open(write_index(tmp_path / "t.safetensors", z, META, approximate=AnnSpec(kind="ivf", nprobe=64)))
    scores, rows = index.search(z[:2], 100)
    assert rows.shape == (2, 60)
    assert rows[0, 0] == 0
    assert rows[1, 0] == 1


def test_a_damaged_faiss_index_or_unknown_kind_is_refused(tmp_path):
    path = write_index(tmp_path / "d.safetensors", clustered(500), META, approximate=AnnSpec(kind="hnsw"))
    index = Index.open(path)
    index.meta["ann"]["sha256"] = "0" * 64
    with pytest.raises(AliceError, match="does not match the sha256 in its metadata; rebuild it"):
        index.search(clustered(1, seed=2), 5)
    with pytest.raises(AliceError, match="unknown index kind 'lsh'"):
        write_index(tmp_path / "x.safetensors", clustered(10), META, approximate=AnnSpec(kind="lsh"))
    with pytest.raises(AliceError, match="nprobe must be at least 1"):
        AnnSpec(kind="ivf", nprobe=0).check()


def test_index_build_kind_list_and_search_through_the_cli(tiny_reference, tmp_path):
    ref = tmp_path / "ref"
    shutil.copytree(tiny_reference, ref)
    r = ok("index", "build", ref, "--modality", "image", "--kind", "hnsw")
    assert "recall@10 against exact search" in r.err
    listed = json.loads(ok("index", "list", ref, "--json").out)
    assert listed[0]["kind"] == "hnsw"
    assert listed[0]["status"] == "ok"
    assert listed[0]["recall_at_10"] > 0.5
    found = json.loads(ok("search", ref, "one digit: five", "--in", "image", "-k", "5", "--json").out)
    exact = json.loads(ok("search", ref, "one digit: five", "--in", "image", "-k", "5", "--exact", "--json").out)
    assert found["kind"] == "hnsw"
    assert exact["kind"] == "exact"
    assert len(found["results"]) == 5
    assert len({r["row"] for r in found["results"]} & {r["row"] for r in exact["results"]}) >= 3
    refused("unknown index kind 'flat'", "index", "build", ref, "--modality", "text", "--kind", "flat")
    # verify still accepts the file (a derived index, pinned like an exact one)
    code, out, _ = alice("reference", "verify", ref, "--json")
    assert code == 0, out
