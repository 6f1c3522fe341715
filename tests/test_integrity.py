"""The whole space under one hash: tampering is refused by every reader, a pinned digest refuses a re-hashed edit.

Readers: ``alice.load`` (Python), ``alice eval``, ``alice search`` and ``alice reference verify``.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from cli_helpers import alice, ok, refused

import alice as alice_api
from alice.artifacts.integrity.record import merkle_root
from alice.artifacts.publish import update_space
from alice.errors import AliceError

pytestmark = pytest.mark.usefixtures("recipe_dir")


@pytest.fixture(scope="module")
def indexed(tiny_reference, tmp_path_factory) -> Path:
    """The tiny reference with an image index, copied once; tests copy it again before changing it."""
    folder = tmp_path_factory.mktemp("integrity") / "ref"
    shutil.copytree(tiny_reference, folder)
    ok("index", "build", folder, "--modality", "image")
    return folder


@pytest.fixture
def space(indexed, tmp_path) -> Path:
    dst = tmp_path / "ref"
    shutil.copytree(indexed, dst)
    return dst


def digest_of(path: Path) -> str:
    return json.loads((path / "space.json").read_text())["digest"]


def all_readers_refuse(path: Path, needle: str) -> None:
    """alice.load, eval, search and verify each refuse ``path`` with one line holding ``needle``."""
    with pytest.raises(AliceError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        alice_api.load(path)
    refused(needle, "eval", path, "--seeds", "1")
    refused(needle, "search", path, "a seven", "--in", "image")
    r = alice("reference", "verify", path)
    assert r.code == 1, r.err
    assert "Traceback" not in r.err, r.err
    assert needle in r.out + r.err, r.err


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_the_digest_is_a_merkle_root_of_paths_and_hashes(space):
    record = json.loads((space / "space.json").read_text())
    files = {e["path"]: e["sha256"] for e in record["files"]}
    assert set(files) == {
        "reference.safetensors",
        "reference.json",
        "adapters/image/adapter.safetensors",
        "adapters/image/adapter.json",
        "adapters/text/adapter.safetensors",
        "adapters/text/adapter.json",
        "adapters/image/history.jsonl",  # how each adapter was trained: under the digest too
        "adapters/text/history.jsonl",
    }
    assert record["digest"] == merkle_root(files)
    assert record["reference_digest"] == merkle_root({k: files[k] for k in ("reference.safetensors", "reference.json")})
    assert {e["path"] for e in record["documentation"]} == {
        "README.md",
        "adapters/image/README.md",
        "adapters/text/README.md",
        "adapters/image/history.png",
        "adapters/text/history.png",
    }
    assert [e["path"] for e in record["derived"]] == ["indexes/image-test.safetensors"]
    manifest = json.loads((space / "adapters" / "text" / "adapter.json").read_text())
    assert manifest["reference_digest"] == record["reference_digest"]
    # show and verify print it; alice.load(digest=...) accepts it
    assert record["digest"] in ok("reference", "show", space).out
    assert record["digest"] in ok("reference", "verify", space).out
    assert alice_api.load(space, digest=record["digest"]).digest == record["digest"]


def test_a_threshold_edited_in_a_manifest_is_refused(space):
    """The red team's edit: one threshold of the text adapter set to 2.0."""
    _edit_json(space / "adapters" / "text" / "adapter.json", lambda m: m["thresholds"].__setitem__(0, 2.0))
    all_readers_refuse(space, "adapters/text/adapter.json")


def test_two_names_swapped_in_the_vocabulary_are_refused(space):
    def swap(m):
        v = m["vocabulary"]
        v[3], v[7] = v[7], v[3]

    _edit_json(space / "reference.json", swap)
    all_readers_refuse(space, "reference.json")


def test_a_swapped_adapter_folder_is_refused_even_when_its_own_hashes_agree(space, tmp_path, recipe_dir):
    """An adapter folder (weights and manifest together) taken from another space of the same reference."""
    other = tmp_path / "other"
    shutil.copytree(space, other)
    ok(
        "modality",
        "add",
        "text",
        "--reference",
        other,
        "--recipe",
        "tiny-text",
        "--overwrite",
        "--steps",
        "20",
        "--set",
        "training.seed=7",
    )
    shutil.rmtree(space / "adapters" / "text")
    shutil.copytree(other / "adapters" / "text", space / "adapters" / "text")
    all_readers_refuse(space, "adapters/text/adapter")


def test_adapters_bound_to_another_reference_are_refused_after_a_consistent_rehash(space):
    """Another reference manifest is another reference digest: re-recording the space does not help."""
    _edit_json(space / "reference.json", lambda m: m.__setitem__("name", "renamed"))
    refused("was trained against another reference", "reference", "verify", space, "--rehash")
    update_space(space, {}, rehash=True)  # space.json rewritten to match, as someone with write access could
    all_readers_refuse(space, "was trained against another reference")


def test_a_symlinked_weights_file_and_hidden_or_stray_extras_are_refused(space, tmp_path):
    weights = space / "adapters" / "text" / "adapter.safetensors"
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(weights, outside)
    os.symlink(outside, weights)
    all_readers_refuse(space, "is a symbolic link")


@pytest.mark.parametrize(
    "extra, needle",
    [
        ("adapters/text/.payload.pt", "is a hidden file"),
        (".cache/x.json", "is a hidden folder"),
        ("adapters/text/model.pt", "unexpected file, named by no manifest"),
        ("notes.txt", "unexpected file, named by no manifest"),
    ],
)
def test_extra_files_hidden_or_not_are_refused(space, extra, needle):
    target = space / extra
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\x80pickle")
    all_readers_refuse(space, needle)


def test_a_pinned_digest_refuses_a_consistently_rehashed_edit(space):
    pinned = digest_of(space)
    _edit_json(space / "adapters" / "text" / "adapter.json", lambda m: m["thresholds"].__setitem__(0, 2.0))
    ok("reference", "verify", space, "--rehash")  # the edit recorded, as an attacker with write access could
    assert digest_of(space) != pinned
    ok("reference", "verify", space)  # consistent now: only the pin can tell
    needle = "not the expected"
    with pytest.raises(AliceError, match=needle):
        alice_api.load(space, digest=pinned)
    refused(needle, "eval", space, "--expect-digest", pinned)
    refused(needle, "search", space, "a seven", "--in", "image", "--expect-digest", pinned)
    r = alice("reference", "verify", space, "--expect-digest", pinned)
    assert r.code == 1
    assert needle in r.out + r.err
    refused("--expect-digest takes the 64 hex digits", "eval", space, "--expect-digest", "abc")


@pytest.mark.slow
def test_eval_keeps_the_digest_adding_a_modality_changes_it_and_never_the_reference_digest(space):
    record = json.loads((space / "space.json").read_text())
    ok("eval", space, "--seeds", "1")
    after = json.loads((space / "space.json").read_text())
    assert after["digest"] == record["digest"]  # eval.json and the card are documentation
    assert "eval.json" in {e["path"] for e in after["documentation"]}
    alice_api.load(space, digest=record["digest"])  # the pin still holds after `alice eval`
    r = ok("modality", "add", "text", "--reference", space, "--recipe", "tiny-text", "--name", "text2", "--steps", "10")
    added = json.loads((space / "space.json").read_text())
    assert added["digest"] != record["digest"]
    assert added["digest"] in r.err
    assert added["reference_digest"] == record["reference_digest"]


def test_edited_documentation_is_flagged_by_verify_and_recorded_by_rehash(space):
    (space / "README.md").write_text("my own notes\n")
    r = alice("reference", "verify", space)
    assert r.code == 1
    assert "README.md" in r.err
    ok("reference", "verify", space, "--rehash")
    ok("reference", "verify", space)


def test_a_space_without_space_json_is_refused_in_one_line_that_says_to_rebuild_or_republish(space, tmp_path):
    """An older ALICE wrote spaces without space.json; nothing records their files, so every reader refuses them,
    `--rehash` and `import` too, naming the two ways out."""
    (space / "space.json").unlink()
    needle = "has no space.json, so nothing records its files (an older ALICE wrote it): rebuild it"
    all_readers_refuse(space, needle)
    refused(needle, "reference", "show", space)
    refused(needle, "reference", "verify", space, "--rehash")
    refused(needle, "reference", "export", space, "--out", tmp_path / "a.alice.tar.gz")
    assert not (space / "space.json").exists()  # nothing recorded on the way
    archive = tmp_path / "old.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # what an older `alice reference export` packed: no space.json
        tar.add(space, arcname="ref")
    refused(
        "holds no space.json (an older ALICE exported it): have its publisher export it again",
        "reference",
        "import",
        archive,
        "--into",
        tmp_path / "in",
    )
    assert not (tmp_path / "in" / "ref").exists()


def test_an_adapter_that_names_no_reference_digest_is_refused(space):
    _edit_json(space / "adapters" / "text" / "adapter.json", lambda m: m.pop("reference_digest"))
    update_space(space, {}, rehash=True)  # recorded as it is: only the adapter's binding is missing
    all_readers_refuse(space, "adapter 'text' names no reference digest (an older ALICE wrote it)")
