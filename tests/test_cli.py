"""The commands a user types, on a tiny configuration, and the errors they see."""

from __future__ import annotations

import json

import pytest
from cli_helpers import alice, refused


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory, recipe_dir):
    """Build and extend a reference through the CLI itself."""
    out = tmp_path_factory.mktemp("cli") / "ref"
    r = alice("reference", "build", "tiny-image", "--out", out, "--steps", "60", "--json")
    assert r.code == 0, r.err
    built = json.loads(r.out)
    assert built["path"] == str(out.resolve()) or built["path"] == out
    r = alice("modality", "add", "text", "--reference", out, "--steps", "60")
    assert r.code == 0, r.err
    return out


def test_reference_show_and_list(cli_reference):
    r = alice("reference", "show", cli_reference, "--json")
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert set(s["adapters"]) == {"image", "text"}
    assert s["latent_dim"] == 32
    assert len(s["vocabulary"]) == 10
    r = alice("reference", "show", cli_reference)
    assert r.code == 0
    assert "Adapters" in r.out
    assert "minilm" in r.out
    r = alice("reference", "list", "--root", cli_reference.parent, "--json")
    listed = json.loads(r.out)
    assert any(x["name"] == "digits-image" for x in listed["recipes"])
    assert any(x["name"] == "tiny-image" for x in listed["recipes"])
    assert listed["built"][0]["modalities"] == ["image", "text"]
    r = alice("modality", "list", "--json")
    assert any(x["name"] == "digits-text" for x in json.loads(r.out)["recipes"])


@pytest.mark.slow
def test_eval_prints_both_tables_and_writes_json(cli_reference):
    r = alice("eval", cli_reference, "--seeds", "2")
    assert r.code == 0, r.err
    assert "Table 1" in r.out
    assert "Table 2" in r.out
    assert "no training" in r.out
    report = json.loads((cli_reference / "eval.json").read_text())
    assert set(report["modalities"]) == {"image", "text"}
    assert {(x["query"], x["gallery"]) for x in report["retrieval"]} == {("image", "text"), ("text", "image")}


def test_plugins_list_table():
    r = alice("plugins", "list")
    assert r.code == 0
    assert "digits-image" in r.out
    assert "minilm" in r.out


def test_errors_are_one_line_with_non_zero_exit(cli_reference, tmp_path):
    refused("unknown recipe 'no-such-recipe'", "reference", "build", "no-such-recipe")
    refused("already exists", "reference", "build", "tiny-image", "--out", cli_reference)
    refused("does not exist", "reference", "show", tmp_path / "missing")
    refused("already has an adapter 'text'", "modality", "add", "text", "--reference", cli_reference)
    refused("unknown recipe 'tiny-smell'", "modality", "add", "smell", "--reference", cli_reference)
    refused(
        "training.steps must be int",
        "reference",
        "build",
        "tiny-image",
        "--set",
        "training.steps='many'",
        "--out",
        tmp_path / "x",
    )
    refused("is a modality recipe", "reference", "build", "tiny-text", "--out", tmp_path / "y")
    refused("reference.json is missing", "eval", tmp_path)
    refused("adapter name '../escape'", "modality", "add", "text", "--reference", cli_reference, "--name", "../escape")
    bad = tmp_path / "bad.toml"
    bad.write_text("stage = [unclosed")
    refused("is not valid TOML", "reference", "build", bad)
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "y").exists()
