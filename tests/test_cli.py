"""The commands a user types, on a tiny configuration, and the errors they see."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def alice(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "alice", *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=dict(os.environ))


def one_line_error(r, needle: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], r.stderr


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory, recipe_dir):
    """Build and extend a reference through the CLI itself."""
    out = tmp_path_factory.mktemp("cli") / "ref"
    r = alice("reference", "build", "tiny-image", "--out", str(out), "--steps", "60", "--json")
    assert r.returncode == 0, r.stderr
    built = json.loads(r.stdout)
    assert built["path"] == str(out.resolve()) or built["path"] == str(out)
    r = alice("modality", "add", "text", "--reference", str(out), "--steps", "60")
    assert r.returncode == 0, r.stderr
    return out


def test_reference_show_and_list(cli_reference):
    r = alice("reference", "show", str(cli_reference), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert set(s["adapters"]) == {"image", "text"} and s["latent_dim"] == 32 and len(s["vocabulary"]) == 10
    r = alice("reference", "show", str(cli_reference))
    assert r.returncode == 0 and "Adapters" in r.stdout and "minilm" in r.stdout
    r = alice("reference", "list", "--root", str(cli_reference.parent), "--json")
    listed = json.loads(r.stdout)
    assert any(x["name"] == "digits-image" for x in listed["recipes"]) and any(x["name"] == "tiny-image" for x in listed["recipes"])
    assert listed["built"][0]["modalities"] == ["image", "text"]
    r = alice("modality", "list", "--json")
    assert any(x["name"] == "digits-text" for x in json.loads(r.stdout)["recipes"])


def test_eval_prints_both_tables_and_writes_json(cli_reference):
    r = alice("eval", str(cli_reference), "--seeds", "2")
    assert r.returncode == 0, r.stderr
    assert "Table 1" in r.stdout and "Table 2" in r.stdout and "no training" in r.stdout
    report = json.loads((cli_reference / "eval.json").read_text())
    assert set(report["modalities"]) == {"image", "text"}
    assert {(x["query"], x["gallery"]) for x in report["retrieval"]} == {("image", "text"), ("text", "image")}


def test_plugins_list_table():
    r = alice("plugins", "list")
    assert r.returncode == 0 and "digits-image" in r.stdout and "minilm" in r.stdout


def test_errors_are_one_line_with_non_zero_exit(cli_reference, tmp_path):
    one_line_error(alice("reference", "build", "no-such-recipe"), "unknown recipe 'no-such-recipe'")
    one_line_error(alice("reference", "build", "tiny-image", "--out", str(cli_reference)), "already exists")
    one_line_error(alice("reference", "show", str(tmp_path / "missing")), "does not exist")
    one_line_error(alice("modality", "add", "text", "--reference", str(cli_reference)), "already has an adapter 'text'")
    one_line_error(alice("modality", "add", "smell", "--reference", str(cli_reference)), "unknown recipe 'tiny-smell'")
    one_line_error(alice("reference", "build", "tiny-image", "--set", "training.steps='many'", "--out", str(tmp_path / "x")), "training.steps must be int")
    one_line_error(alice("reference", "build", "tiny-text", "--out", str(tmp_path / "y")), "is a modality recipe")
    one_line_error(alice("eval", str(tmp_path)), "reference.json is missing")
    one_line_error(alice("modality", "add", "text", "--reference", str(cli_reference), "--name", "../escape"), "adapter name '../escape'")
    bad = tmp_path / "bad.toml"
    bad.write_text("stage = [unclosed")
    one_line_error(alice("reference", "build", str(bad)), "is not valid TOML")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
