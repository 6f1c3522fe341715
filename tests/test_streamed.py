"""Streamed ivfpq indexes: latents written chunk by chunk, float16 rows on disk, an IVF-PQ index, the same checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_helpers import ok, refused
from test_ann import META, clustered

from alice.config.search import AnnSpec
from alice.errors import AliceError
from alice.files import sha256_file
from alice.search.header import IndexHeader
from alice.search.indexes import Index
from alice.search.streamed import write_streamed

pytest.importorskip("faiss")
pytestmark = pytest.mark.usefixtures("recipe_dir")


def chunked(z: torch.Tensor, rows: int = 700):
    return (z[i : i + rows].numpy() for i in range(0, len(z), rows))


def test_a_streamed_index_finds_what_exact_search_finds(tmp_path):
    z = clustered(2000)
    labels = torch.randint(0, 2, (2000, 3))
    spec = AnnSpec(kind="ivfpq", nlist=16, pq=8, nprobe=8, rerank=20)
    path = write_streamed(tmp_path / "s.safetensors", chunked(z), 2000, META, spec, {"labels": labels.to(torch.uint8)})
    index = Index.open(path, sha256=sha256_file(path))
    settings = index.meta["ann"]
    assert index.kind == "ivfpq" and IndexHeader.read(path).embeddings_dtype == "F16"
    assert settings["factory"] == "IVF16,PQ8" and settings["recall_at_10"] >= 0.9 and settings["recall_queries"] == 200
    assert torch.equal(index.labels, labels.to(torch.uint8))
    # the rows on disk are the latents in float16
    assert np.array_equal(index.rows(np.arange(2000)), z.numpy().astype(np.float16).astype(np.float32))
    queries = clustered(40, seed=1)
    exact_scores, exact_rows = index.search(queries, 10, exact=True)
    scores, rows = index.search(queries, 10)
    recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(rows, exact_rows)])
    assert recall >= 0.9, recall
    # re-scored exactly against the stored rows, best first
    stored = torch.from_numpy(index.rows(np.arange(2000)))
    assert torch.allclose(scores, (queries[:, None, :] * stored[rows]).sum(-1), atol=1e-5)
    # a server holds only the FAISS index: the rows stay on disk, and the answers are the same
    loaded = Index.open(path).load()
    assert loaded._embeddings is None and torch.equal(loaded.search(queries, 10)[1], rows)


def test_an_opq_rotation_is_built_searched_and_checked(tmp_path):
    z = clustered(1500)
    spec = AnnSpec(kind="ivfpq", nlist=8, pq=8, opq=True, nprobe=8, recall_queries=50)
    index = Index.open(write_streamed(tmp_path / "o.safetensors", chunked(z), 1500, META, spec))
    assert index.meta["ann"]["factory"] == "OPQ8,IVF8,PQ8" and index.meta["ann"]["recall_at_10"] >= 0.8
    assert index.search(z[:3], 5)[1][:, 0].tolist() == [0, 1, 2]


def test_a_stream_that_breaks_its_word_leaves_nothing_behind(tmp_path):
    z = clustered(300)
    spec = AnnSpec(kind="ivfpq", nlist=4, pq=8)
    path = tmp_path / "b.safetensors"
    with pytest.raises(AliceError, match="the latents number 300, not the 400 announced"):
        write_streamed(path, chunked(z), 400, META, spec)
    with pytest.raises(AliceError, match="latents of 16 dimensions after ones of 32"):
        write_streamed(path, iter([z[:100].numpy(), z[:100, :16].numpy()]), 200, META, spec)
    bad = z[:100].clone()
    bad[5, 3] = float("nan")
    with pytest.raises(AliceError, match="latents 0 to 99 hold NaN"):
        write_streamed(path, iter([bad.numpy()]), 100, META, spec)
    with pytest.raises(AliceError, match="--pq 7 must divide the latent size 32"):
        write_streamed(path, chunked(z), 300, META, AnnSpec(kind="ivfpq", nlist=4, pq=7))
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_or_foreign_faiss_index_is_refused(tmp_path):
    import faiss

    z = clustered(600)
    path = write_streamed(tmp_path / "d.safetensors", chunked(z), 600, META, AnnSpec(kind="ivfpq", nlist=4, pq=8))
    index = Index.open(path)
    index.meta["ann"]["sha256"] = "0" * 64
    with pytest.raises(AliceError, match="does not match the sha256 in its metadata; rebuild it"):
        index.search(z[:1], 5)
    # an IVF-PQ index whose list names an item past the rows is refused before any search reads it
    from alice.search.ann import check_loaded

    good = Index.open(path).approximate()
    assert check_loaded(good, "ivfpq", 600, 32) == ""
    assert "holds 600 items" in check_loaded(good, "ivfpq", 601, 32)
    flat = faiss.IndexFlatIP(32)
    flat.add(z.numpy())
    assert "not an IVF index over product-quantised codes" in check_loaded(flat, "ivfpq", 600, 32)
    lists = faiss.downcast_InvertedLists(good.invlists)
    ids = faiss.rev_swig_ptr(lists.get_ids(0), lists.list_size(0))
    ids[0] = 10_000
    assert "names item 10000, outside 0 to 599" in check_loaded(good, "ivfpq", 600, 32)


def test_index_build_kind_ivfpq_through_the_cli(reference_copy):
    ref = reference_copy
    r = ok(
        "index", "build", ref, "--modality", "image", "--kind", "ivfpq", "--nlist", "4", "--pq", "8", "--nprobe", "4"
    )
    assert "ivfpq index (IVF4,PQ8)" in r.err
    listed = json.loads(ok("index", "list", ref, "--json").out)
    assert listed[0]["kind"] == "ivfpq" and listed[0]["status"] == "ok"
    found = json.loads(ok("search", ref, "one digit: five", "--in", "image", "-k", "5", "--json").out)
    exact = json.loads(ok("search", ref, "one digit: five", "--in", "image", "-k", "5", "--exact", "--json").out)
    assert found["kind"] == "ivfpq" and len(found["results"]) == 5
    assert len({r["row"] for r in found["results"]} & {r["row"] for r in exact["results"]}) >= 4
    assert ok("reference", "verify", ref, "--json").code == 0
    refused("--pq 7 must divide", "index", "build", ref, "--modality", "text", "--kind", "ivfpq", "--pq", "7")
