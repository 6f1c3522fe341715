"""Cross-modal and counterfactual search: exact blocked top-k, index files, the CLI, and its errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from cli_helpers import alice, refused, scene_file_with

from alice.core.similarity import top_k
from alice.errors import AliceError
from alice.search.indexes import Index, pack_strings, unpack_strings, write_index

pytestmark = pytest.mark.usefixtures("recipe_dir")


# ----------------------------------------------------------------- exact blocked search


@pytest.mark.parametrize("block_rows", [1, 7, 64, 10_000])
@pytest.mark.parametrize("k", [1, 5, 300])
def test_blocked_top_k_equals_one_full_product(block_rows, k):
    g = torch.Generator().manual_seed(0)
    gallery = torch.nn.functional.normalize(torch.randn(257, 16, generator=g), dim=1)
    queries = torch.nn.functional.normalize(torch.randn(9, 16, generator=g), dim=1)
    blocks = ((lo, gallery[lo : lo + block_rows]) for lo in range(0, 257, block_rows))
    scores, rows = top_k(queries, blocks, k)
    sims = queries @ gallery.T
    full = sims.topk(min(k, 257), dim=1)
    assert rows.shape == (9, min(k, 257))
    # the same scores, and each row is the item it scores
    # (a 1-row product may round differently: no index equality on near-ties)
    assert torch.allclose(scores, full.values, atol=1e-6)
    assert torch.allclose(sims.gather(1, rows), full.values, atol=1e-6)
    assert all(len(set(r.tolist())) == rows.shape[1] for r in rows)


def test_strings_round_trip_through_tensors():
    items = ["a seven next to a two", "", "zwölf ✓", "x" * 1000]
    assert unpack_strings(*pack_strings(items)) == items


def test_index_file_round_trip_and_block_reads(tmp_path):
    z = torch.nn.functional.normalize(torch.randn(50, 8), dim=1)
    labels = (torch.rand(50, 4) < 0.3).float()
    path = write_index(
        tmp_path / "i.safetensors",
        z,
        {"modality": "m", "reference_sha256": "r", "adapter_sha256": "a"},
        labels,
        np.array([1, 1, 0, 1]),
        [f"text {i}" for i in range(50)],
        [f"p{i}" for i in range(50)],
    )
    index = Index.open(path)
    assert (index.count, index.dim, index.modality) == (50, 8, "m")
    assert index.texts[3] == "text 3"
    assert index.pair_ids[49] == "p49"
    assert index.annotated.tolist() == [True, True, False, True]
    assert torch.equal(index.labels, (labels > 0.5).to(torch.uint8))
    assert torch.equal(torch.cat([b for _, b in index.blocks(7)]), z)
    scores, rows = index.search(z[:2], k=1, block_rows=7)
    assert rows[:, 0].tolist() == [0, 1]
    assert torch.allclose(scores[:, 0], torch.ones(2))
    with pytest.raises(AliceError, match="already exists"):
        write_index(path, z, {"modality": "m"})
    index.check_against("r", "a")
    with pytest.raises(AliceError, match="another reference|built against reference"):
        index.check_against("other", "a")
    with pytest.raises(AliceError, match="another 'm' adapter"):
        index.check_against("r", "b")
    assert not list(tmp_path.glob(".*partial*"))


# ----------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def indexed(tiny_reference, tmp_path_factory):
    """A copy of the tiny reference with an image and a text index of the test split."""
    ref = tmp_path_factory.mktemp("search") / "ref"
    shutil.copytree(tiny_reference, ref)
    from alice.search.build import build_index

    for modality in ("image", "text"):
        build_index(ref, modality, "test", device_name="cpu")
    return ref


def test_index_build_writes_a_verified_index(indexed):
    index = Index.open(indexed / "indexes" / "text-test.safetensors")
    assert index.count == 600
    assert index.dim == 32
    assert index.texts
    assert index.pair_ids
    assert index.labels.shape == (600, 10)
    code, out, err = alice("reference", "verify", indexed, "--json")
    assert code == 0, err
    found = {f["item"]: f for f in json.loads(out)["findings"]}
    assert found["indexes/image-test.safetensors"]["ok"]
    assert found["indexes/text-test.safetensors"]["ok"]
    code, out, _ = alice("index", "list", indexed, "--json")
    assert code == 0
    assert {r["modality"] for r in json.loads(out)} == {"image", "text"}
    refused("already exists", "index", "build", indexed, "--modality", "image")


def test_text_query_finds_images_of_its_digit(indexed):
    hits = 0
    for word in ("zero", "three", "seven", "nine"):
        code, out, err = alice("search", indexed, f"one digit: {word}", "--in", "image", "-k", "10", "--json")
        assert code == 0, err
        result = json.loads(out)
        assert result["from"] == "text"
        assert len(result["results"]) == 10
        scores = [r["score"] for r in result["results"]]
        assert scores == sorted(scores, reverse=True)
        hits += sum(word in r["labels"] for r in result["results"])
    index = Index.open(indexed / "indexes" / "image-test.safetensors")
    vocab = json.loads((indexed / "reference.json").read_text())["vocabulary"]
    chance = float(
        np.mean([index.labels[:, vocab.index(w)].float().mean() for w in ("zero", "three", "seven", "nine")])
    )
    # chance: the share of scenes that show the digit (about a fifth)
    assert hits / 40 > 1.5 * chance, (hits, chance)


def test_counterfactual_query_retrieves_the_edited_scene(indexed, tmp_path):
    image, _ = scene_file_with(indexed, "three", tmp_path)
    code, out, err = alice("search", indexed, image, "--in", "text", "-k", "10", "--json")
    assert code == 0, err
    plain = json.loads(out)
    assert plain["from"] == "image"
    code, out, err = alice("search", indexed, image, "--in", "text", "-k", "10", "--replace", "three=seven", "--json")
    assert code == 0, err
    edited = json.loads(out)
    assert edited["replace"] == ["three", "seven"]
    assert "seven" in edited["edited_labels"]
    assert "three" not in edited["edited_labels"]
    sevens = lambda r: sum("seven" in x["labels"] and "three" not in x["labels"] for x in r["results"])  # noqa: E731
    assert sevens(edited) >= 5
    assert sevens(edited) > sevens(plain)
    code, out, err = alice("search", indexed, image, "--in", "text", "--replace", "three=seven")
    assert code == 0
    assert "after replacing three with seven" in out.replace("\n", " ")


def test_search_errors_are_one_line(indexed, tmp_path, tiny_reference):
    refused("no index at", "search", indexed, "a two", "--in", "speech")
    refused("--replace takes OLD=NEW", "search", indexed, "a two", "--in", "image", "--replace", "three")
    refused("unknown label 'eleven'", "search", indexed, "a two", "--in", "image", "--replace", "eleven=two")
    refused("no file", "search", indexed, "missing.png", "--in", "text")
    refused("unknown modality 'sonar'", "search", indexed, "a two", "--in", "image", "--from", "sonar")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    refused("cannot read image", "search", indexed, broken, "--in", "text")
    # a damaged index file
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((indexed / "indexes" / "image-test.safetensors").read_bytes()[:100])
    refused("not a readable index", "search", indexed, "a two", "--in", str(bad))
    bad.write_bytes(b"\x00" * 64)
    refused("not a readable index", "search", indexed, "a two", "--in", str(bad))


def test_index_build_and_search_refuse_bad_requests_before_any_work(indexed, tmp_path):
    refused("unknown split 'bogus'", "index", "build", indexed, "--modality", "image", "--split", "bogus")
    (tmp_path / "folder").mkdir()
    refused(
        "is a folder", "index", "build", indexed, "--modality", "image", "--out", tmp_path / "folder", "--overwrite"
    )
    refused("has no 'sonar' adapter", "index", "build", indexed, "--modality", "sonar")
    other = tmp_path / "other"
    shutil.copytree(indexed, other)  # an index of one space written into another would go unrecorded there
    refused(
        "is inside another reference space", "index", "build", indexed, "-m", "image", "--out", other / "indexes" / "x"
    )
    # labels of another vocabulary, or an index that names no adapter
    z = torch.nn.functional.normalize(torch.randn(5, 32), dim=1)
    sha = json.loads((indexed / "reference.json").read_text())["weights"]["sha256"]
    adapter = json.loads((indexed / "adapters" / "image" / "adapter.json").read_text())["weights"]["sha256"]
    wide = write_index(
        tmp_path / "wide.safetensors",
        z,
        {"modality": "image", "reference_sha256": sha, "adapter_sha256": adapter},
        torch.zeros(5, 40),
    )
    refused("labels cover 40 classes, the reference vocabulary has 10", "search", indexed, "a two", "--in", wide)
    bare = write_index(tmp_path / "bare.safetensors", z, {"modality": "image", "reference_sha256": sha})
    refused("names no adapter_sha256", "search", indexed, "a two", "--in", bare)
    # k beyond the index: all of it, said so; a replacement of a class the query lacks: a warning
    code, out, err = alice("search", indexed, "one digit: two", "--in", "image", "-k", "5000", "--replace", "nine=four")
    assert code == 0, err
    assert "top 300 of 300" in out
    assert "do not include 'nine'" in err


@pytest.mark.slow
def test_an_index_of_another_reference_or_adapter_is_refused(indexed, tmp_path):
    other = tmp_path / "other"
    code, _, err = alice(
        "reference", "build", "tiny-image", "--out", other, "--steps", "20", "--set", "training.seed=7"
    )
    assert code == 0, err
    refused(
        "was built against reference",
        "search",
        other,
        "a two",
        "--in",
        str(indexed / "indexes" / "image-test.safetensors"),
    )
    # the text adapter retrained: its old index no longer matches
    copy = tmp_path / "copy"
    shutil.copytree(indexed, copy)
    code, _, err = alice("modality", "add", "text", "--reference", copy, "--steps", "5", "--overwrite")
    assert code == 0, err
    refused("another 'text' adapter", "search", copy, "a two", "--in", "text")
    code, out, _ = alice("reference", "verify", copy, "--json")
    stale = {f["item"]: f for f in json.loads(out)["findings"]}["indexes/text-test.safetensors"]
    assert code != 0
    assert not stale["ok"]
    assert "rebuild" in stale["detail"]
    code, out, _ = alice("index", "list", copy, "--json")
    listed = {r["file"]: r["status"] for r in json.loads(out)}
    assert listed["image-test.safetensors"] == "ok"
    assert "rebuild" in listed["text-test.safetensors"]
    # derived folders stay out of an export, and a stale index does not block it
    code, _, err = alice("reference", "export", copy, "--out", tmp_path / "copy.alice.tar.gz")
    assert code == 0, err
    import tarfile

    with tarfile.open(tmp_path / "copy.alice.tar.gz") as tar:
        assert not [m.name for m in tar.getmembers() if "/indexes" in m.name]
