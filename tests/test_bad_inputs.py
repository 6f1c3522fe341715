"""The catalogue of bad inputs (docs/reliability.md): each gets one line, a non-zero exit, no traceback.

Every case runs the real CLI entry point in-process (``alice.cli.main``) and
checks what a user would see on stderr.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import refused, run

from alice import plugins
from alice.datasets import DataSet, Split
from alice.hookspecs import hookimpl

pytestmark = pytest.mark.usefixtures("recipe_dir")  # the tiny-* recipes


# ----------------------------------------------------------------- a data set that misbehaves on demand


class Troubled(DataSet):
    name = "troubled"
    modality = "image"

    def __init__(self, problem: str = "none") -> None:
        self.problem = problem

    @property
    def vocabulary(self):
        return ["zero", "one", "two"]

    def split(self, name):
        rng = np.random.default_rng(0)
        n = 0 if self.problem == "empty" else 40
        images = [rng.random((20, 20)).astype(np.float32) for _ in range(n)]
        labels = (rng.random((n, 3)) > 0.5).astype(np.float32)
        labels[:, 0] = 1
        if self.problem == "not-binary":
            labels[0, 0] = 2.0
        if self.problem == "columns":
            labels = labels[:, :2]
        if self.problem == "unlabelled":
            labels[:] = 0
        if self.problem == "nan-pixels":
            images[3][0, 0] = np.nan
        return Split(images, labels, None)


class TroubledPlugin:
    @hookimpl
    def alice_register_datasets(self, register):
        register(Troubled)


@pytest.fixture
def troubled(tmp_path):
    plugins.register_plugin(TroubledPlugin(), "troubled-plugin")
    recipe = tmp_path / "troubled.toml"
    recipe.write_text(
        'stage = "reference"\nmodality = "image"\n[data]\ndataset = "troubled"\n[backbone]\nname = "pixels"\n'
        "[model]\nlatent_dim = 8\nencoder_hidden = [16]\nclassifier_hidden = [16]\n"
        '[intervention]\ndesign = "global"\n[training]\nsteps = 5\nbatch_size = 8\n'
    )
    yield recipe
    plugins.unregister_plugin("troubled-plugin")


# ----------------------------------------------------------------- recipes


def test_recipe_unknown_name(capsys):
    refused(capsys, "unknown recipe 'nope'", "reference", "build", "nope")


def test_recipe_bad_toml(capsys, tmp_path):
    (tmp_path / "r.toml").write_text("stage = \n")
    refused(capsys, "is not valid TOML", "reference", "build", tmp_path / "r.toml")


def test_recipe_wrong_type(capsys):
    refused(capsys, "training.batch_size must be int", "reference", "build", "digits-image", "--set", "training.batch_size=1.5")


def test_recipe_unknown_field(capsys):
    refused(capsys, "unknown field 'training.stepz'", "reference", "build", "digits-image", "--set", "training.stepz=3")


def test_recipe_missing_file(capsys, tmp_path):
    refused(capsys, "does not exist", "reference", "build", tmp_path / "none.toml")


def test_recipe_modality_not_the_data_sets(capsys, tmp_path):
    refused(capsys, "says modality 'text', but data set 'digits-image' holds image", "reference", "build", "digits-image", "--set", "modality=text", "--out", tmp_path / "o")


def test_recipe_unknown_data_set_option(capsys, tmp_path):
    refused(capsys, "unknown option 'colour'", "reference", "build", "digits-image", "--set", "data.colour=1", "--out", tmp_path / "o")


def test_set_without_equals(capsys):
    refused(capsys, "--set expects section.key=value", "reference", "build", "digits-image", "--set", "training.steps")


# ----------------------------------------------------------------- data


@pytest.mark.parametrize(
    "problem, needle",
    [
        ("empty", "has an empty train split"),
        ("not-binary", "labels must be 0 or 1"),
        ("columns", "labels have 2 columns, vocabulary has 3"),
        ("unlabelled", "no sample has any label in the reference vocabulary"),
        ("nan-pixels", "backbone 'pixels' (plugin 'image') returned NaN or infinite features"),
    ],
)
def test_bad_data(capsys, troubled, tmp_path, problem, needle):
    refused(capsys, needle, "reference", "build", troubled, "--set", f"data.problem={problem}", "--out", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_missing_image_file():
    from alice.errors import AliceError
    from alice_plugins.image.inputs import to_rgb_array

    with pytest.raises(AliceError, match="cannot read image .*missing.png"):
        to_rgb_array("/nonexistent/missing.png")


def test_empty_caption():
    from alice.errors import AliceError
    from alice_plugins.text.backbones import MiniLMBackbone

    with pytest.raises(AliceError, match="empty text"):
        MiniLMBackbone().extract(["a seven", "   "], torch.device("cpu"))


def test_label_alias_outside_the_vocabulary(capsys, reference_copy):
    refused(capsys, "'septem' is not in the reference vocabulary", "modality", "add", "text", "--reference", reference_copy,
            "--recipe", "tiny-text", "--name", "t2", "--set", 'labels.aliases.seven="septem"')


def test_no_label_maps_onto_the_reference(capsys, reference_copy):
    aliases = "{" + ", ".join(f'{w} = ""' for w in ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]) + "}"
    refused(capsys, "no label of data set 'digits-text' maps onto the reference vocabulary", "modality", "add", "text",
            "--reference", reference_copy, "--recipe", "tiny-text", "--name", "t2", "--set", f"labels.aliases={aliases}")


def test_damaged_feature_cache(capsys, tmp_path, monkeypatch):
    from alice.errors import AliceError
    from alice.features import extract_features
    from alice_plugins.image.backbones import PixelBackbone

    monkeypatch.setenv("ALICE_CACHE_DIR", str(tmp_path))
    inputs = [np.zeros((20, 20), np.float32)] * 5
    kw = dict(dataset_identity={"name": "d"}, split="train", device=torch.device("cpu"))
    extract_features(PixelBackbone(), inputs, **kw)
    shard = next(tmp_path.rglob("shard-*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:50])
    with pytest.raises(AliceError, match="feature cache .* is damaged"):
        extract_features(PixelBackbone(), inputs, **kw)


# ----------------------------------------------------------------- artifacts


def test_tampered_weights(capsys, reference_copy):
    p = reference_copy / "adapters" / "image" / "adapter.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    p.write_bytes(bytes(data))
    refused(capsys, "does not match the sha256", "reference", "show", reference_copy)
    code, out, err = run(capsys, "reference", "verify", reference_copy)
    assert code == 1 and "adapters/image" in err and "adapters/text" not in err


def test_manifest_of_another_version(capsys, reference_copy):
    m = json.loads((reference_copy / "reference.json").read_text())
    m["format_version"] = 2
    (reference_copy / "reference.json").write_text(json.dumps(m))
    refused(capsys, "format version 2", "eval", reference_copy)


def test_truncated_weights(capsys, reference_copy):
    p = reference_copy / "reference.safetensors"
    p.write_bytes(p.read_bytes()[:64])
    refused(capsys, "does not match the sha256", "reference", "verify", reference_copy)


def test_adapter_of_another_reference(capsys, reference_copy):
    m = json.loads((reference_copy / "adapters" / "text" / "adapter.json").read_text())
    m["reference_sha256"] = "0" * 64
    (reference_copy / "adapters" / "text" / "adapter.json").write_text(json.dumps(m))
    refused(capsys, "trained against another reference", "eval", reference_copy)


def test_unexpected_file_in_a_reference(capsys, reference_copy):
    (reference_copy / "adapters" / "text" / "model.pt").write_bytes(b"pickle")
    refused(capsys, "adapters/text/model.pt: unexpected file", "reference", "verify", reference_copy)


def test_not_a_reference_folder(capsys, tmp_path):
    refused(capsys, "reference.json is missing", "reference", "show", tmp_path)


# ----------------------------------------------------------------- CLI


def test_output_folder_exists(capsys, reference_copy):
    refused(capsys, "already exists; pass --overwrite", "reference", "build", "tiny-image", "--out", reference_copy)


def test_unknown_device(capsys, tmp_path):
    refused(capsys, "unknown device 'quantum'", "reference", "build", "tiny-image", "--device", "quantum", "--out", tmp_path / "o")


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_cuda_asked_for_without_a_gpu(capsys, tmp_path):
    refused(capsys, "no CUDA device is available", "reference", "build", "tiny-image", "--device", "cuda", "--out", tmp_path / "o")


def test_resume_with_other_settings(capsys, tmp_path, monkeypatch):
    from alice import checkpoints

    out = tmp_path / "o"
    monkeypatch.setattr(checkpoints, "remove", lambda folder: None)  # keep the checkpoint, as a killed run would
    code, _, err = run(capsys, "reference", "build", "tiny-image", "--out", out, "--steps", "30", "--checkpoint-every", "10")
    assert code == 0, err
    monkeypatch.undo()
    shutil.rmtree(out)
    assert checkpoints.checkpoint_folder(out).exists()
    refused(capsys, "belongs to a run with other settings", "reference", "build", "tiny-image", "--out", out, "--steps", "30", "--resume", "--set", "training.lr=0.01")


# ----------------------------------------------------------------- sharing


def _archive(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"{}") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


@pytest.mark.parametrize(
    "entries, needle",
    [
        ([_file("ref/reference.json"), _file("ref/../../evil.json")], "would land outside the target folder"),
        ([_file("/tmp/evil.json")], "would land outside the target folder"),
        ([_file("ref/reference.json"), _link("ref/adapters.json", "/etc/passwd")], "is a link"),
        ([_file("ref/reference.json"), _file("ref/run.py", b"print(1)")], "is not safetensors, JSON or README.md"),
        ([_file("a/reference.json"), _file("b/reference.json")], "expected one top folder"),
        ([_file("ref/reference.json", b"{not json")], "not valid JSON"),
    ],
    ids=["dotdot", "absolute", "symlink", "python-file", "two-tops", "bad-json"],
)
def test_import_refuses_crafted_archives(capsys, tmp_path, entries, needle):
    archive = _archive(tmp_path / "a.tar.gz", entries)
    refused(capsys, needle, "reference", "import", archive, "--into", tmp_path / "into")
    assert not (tmp_path / "evil.json").exists()
    assert not list((tmp_path / "into").glob("*")) if (tmp_path / "into").exists() else True


def test_import_refuses_tampered_weights_and_leaves_nothing(capsys, tmp_path, tiny_reference):
    code, _, err = run(capsys, "reference", "export", tiny_reference, "--out", tmp_path / "ok.tar.gz")
    assert code == 0, err
    with tarfile.open(tmp_path / "ok.tar.gz") as src, tarfile.open(tmp_path / "bad.tar.gz", "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("reference.safetensors"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    refused(capsys, "does not match the sha256", "reference", "import", tmp_path / "bad.tar.gz", "--into", tmp_path / "into")
    assert list((tmp_path / "into").iterdir()) == []


def test_import_not_an_archive(capsys, tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"hello")
    refused(capsys, "is not a readable archive", "reference", "import", tmp_path / "x.tar.gz")


def test_export_import_round_trip(capsys, tmp_path, tiny_reference):
    from alice.artifacts import sha256_file

    assert run(capsys, "reference", "export", tiny_reference, "--out", tmp_path / "r.tar.gz")[0] == 0
    code, _, err = run(capsys, "reference", "import", tmp_path / "r.tar.gz", "--into", tmp_path / "into")
    assert code == 0, err
    got = tmp_path / "into" / tiny_reference.name
    assert sha256_file(got / "reference.safetensors") == sha256_file(tiny_reference / "reference.safetensors")
    assert run(capsys, "reference", "verify", got)[0] == 0
    refused(capsys, "already exists", "reference", "import", tmp_path / "r.tar.gz", "--into", tmp_path / "into")
