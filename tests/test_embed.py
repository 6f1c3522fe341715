"""``alice embed``: latents into Parquet, read back with pyarrow equal to what the space computes."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import torch
from cli_helpers import ok, refused

from alice.api import Space


def test_embed_a_split_reads_back_as_space_encode(tiny_reference, tmp_path):
    out = tmp_path / "text.parquet"
    r = ok("embed", tiny_reference, "--modality", "text", "--split", "test", "--out", out, "--batch-size", "7")
    assert "wrote" in r.err
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"alice"])
    space = Space.load(tiny_reference)
    assert meta["space_digest"] == space.digest and meta["modality"] == "text" and meta["split"] == "test"
    assert meta["adapter_sha256"] == space.adapter("text").sha256 and meta["count"] == table.num_rows
    assert {"id", "labels", "text", "search", "latent"} <= set(table.column_names)
    texts = table.column("text").to_pylist()
    raw = np.stack(table.column("latent").to_numpy(zero_copy_only=False))
    search = np.stack(table.column("search").to_numpy(zero_copy_only=False))
    assert table.column("id").to_pylist() == list(range(len(texts)))
    expected = space.encode("text", texts)
    assert np.allclose(raw, expected.numpy(), atol=1e-5)
    assert np.allclose(search, space.search_latents("text", expected).numpy(), atol=1e-5)
    assert all(set(labels) <= set(space.vocabulary) for labels in table.column("labels").to_pylist())
    assert any(table.column("labels").to_pylist())


def test_embed_files_and_bad_requests(tiny_reference, tmp_path):
    from PIL import Image

    files = []
    for i in range(3):
        f = tmp_path / f"d{i}.png"
        Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)).save(f)
        files.append(f)
    out = tmp_path / "files.parquet"
    ok("embed", tiny_reference, "-m", "image", "--files", files[0], "--files", files[1], "--files", files[2], "-o", out)
    table = pq.read_table(out)
    assert table.column("file").to_pylist() == [str(f) for f in files]
    space = Space.load(tiny_reference)
    raw = np.stack(table.column("latent").to_numpy(zero_copy_only=False))
    assert torch.allclose(torch.from_numpy(raw), space.encode("image", [str(f) for f in files]), atol=1e-5)
    refused("already exists; pass --overwrite", "embed", tiny_reference, "-m", "image", "--files", files[0], "-o", out)
    refused("embed one thing", "embed", tiny_reference, "-m", "text", "-o", tmp_path / "x.parquet")
    refused(
        "unknown split 'dev'", "embed", tiny_reference, "-m", "text", "--split", "dev", "-o", tmp_path / "x.parquet"
    )
    assert not (tmp_path / "x.parquet").exists()


def test_an_ivfpq_index_from_parquet_answers_as_the_split_does(tiny_reference, tmp_path):
    latents, out = tmp_path / "text.parquet", tmp_path / "text.safetensors"
    ok("embed", tiny_reference, "--modality", "text", "--split", "test", "--out", latents)
    build = ("index", "build", tiny_reference, "-m", "text", "--parquet", latents, "--out", out)
    r = ok(*build, "--kind", "ivfpq", "--nlist", "2", "--pq", "8", "--nprobe", "2")
    assert "pin it as" in r.err
    found = json.loads(ok("search", tiny_reference, "one digit: five", "--in", out, "-k", "5", "--json").out)
    assert found["kind"] == "ivfpq" and len(found["results"]) == 5 and found["results"][0]["text"]
    exact = json.loads(ok("search", tiny_reference, "one digit: five", "--in", out, "-k", "5", "--exact", "--json").out)
    assert {x["row"] for x in found["results"]} == {x["row"] for x in exact["results"]}  # (near-ties may swap)
    assert np.allclose([x["score"] for x in found["results"]], [x["score"] for x in exact["results"]], atol=1e-5)
    refused(
        "holds 'text' latents, not 'image'", *build[:3], "-m", "image", *build[5:], "--kind", "ivfpq", "--overwrite"
    )
    refused("--kind ivfpq, not 'exact'", *build, "--overwrite")


def test_embed_data_a_recipe_names_reads_back_as_space_encode(tiny_reference, recipe_dir, tmp_path):
    recipe = (recipe_dir / "tiny-text.toml").read_text(encoding="utf-8")
    recipe = recipe.replace("test = 300", "test = 40\nmax_digits = 6")
    (tmp_path / "six-digits.toml").write_text(recipe, encoding="utf-8")
    out = tmp_path / "six.parquet"
    ok("embed", tiny_reference, "-m", "text", "--data", tmp_path / "six-digits.toml", "--out", out)
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[b"alice"])
    assert meta["split"] == "test" and meta["dataset"] == {
        "name": "digits-text",
        "options": {"train": 1500, "val": 300, "test": 40, "max_digits": 6},
    }
    texts = table.column("text").to_pylist()
    assert table.num_rows == meta["count"] and 0 < table.num_rows < 300 and len(set(texts)) > 1  # not the 300 scenes
    space = Space.load(tiny_reference)
    raw = np.stack(table.column("latent").to_numpy(zero_copy_only=False))
    assert np.allclose(raw, space.encode("text", texts).numpy(), atol=1e-5)
    refused(
        "recipe 'tiny-image' reads modality 'image', not 'text'",
        *("embed", tiny_reference, "-m", "text", "--data", "tiny-image", "--out", tmp_path / "x.parquet"),
    )
    refused("embed one thing", "embed", tiny_reference, "-m", "text", "--data", "tiny-text", "--files", out, "-o", out)
    assert not (tmp_path / "x.parquet").exists()


def test_an_index_from_another_spaces_parquet_or_a_missing_one_is_refused(tiny_reference, tmp_path):
    latents, out = tmp_path / "text.parquet", tmp_path / "text.safetensors"
    ok("embed", tiny_reference, "--modality", "text", "--split", "test", "--out", latents)
    table = pq.read_table(latents)
    meta = json.loads(table.schema.metadata[b"alice"])
    other = tmp_path / "other.parquet"  # the same columns, written from a space of another reference
    meta["reference_sha256"] = "0" * 64
    pq.write_table(table.replace_schema_metadata({"alice": json.dumps(meta)}), other)
    build = ("index", "build", tiny_reference, "-m", "text", "--kind", "ivfpq", "--nlist", "2", "--pq", "8")
    refused(
        "holds latents of another reference or 'text' adapter than this space's", *build, "--parquet", other, "-o", out
    )
    refused(
        f"no Parquet file at {tmp_path / 'gone.parquet'}", *build, "--parquet", tmp_path / "gone.parquet", "-o", out
    )
    assert not out.exists()
