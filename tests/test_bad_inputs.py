"""The catalogue of bad inputs (docs/reliability.md): each gets one line, a non-zero exit, no traceback.

Every case runs the real CLI entry point in-process (``alice.cli.main``) and
checks what a user would see on stderr.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from cli_helpers import TroubledPlugin, alice, refused, tampered_copy, tar_archive, tar_file, tar_link

from alice.plugin import register_plugin, unregister_plugin

pytestmark = pytest.mark.usefixtures("recipe_dir")  # the tiny-* recipes


@pytest.fixture
def troubled(tmp_path):
    register_plugin(TroubledPlugin(), "troubled-plugin")
    recipe = tmp_path / "troubled.toml"
    recipe.write_text(
        'stage = "reference"\nmodality = "image"\n[data]\ndataset = "troubled"\n[backbone]\nname = "pixels"\n'
        "[model]\nlatent_dim = 8\nencoder_hidden = [16]\nclassifier_hidden = [16]\n"
        '[intervention]\ndesign = "global"\n[training]\nsteps = 5\nbatch_size = 8\n'
    )
    yield recipe
    unregister_plugin("troubled-plugin")


# ----------------------------------------------------------------- recipes


def test_recipe_unknown_name():
    refused("unknown recipe 'nope'", "reference", "build", "nope")


def test_recipe_bad_toml(tmp_path):
    (tmp_path / "r.toml").write_text("stage = \n")
    refused("is not valid TOML", "reference", "build", tmp_path / "r.toml")


def test_recipe_wrong_type():
    refused("training.batch_size must be int", "reference", "build", "digits-image", "--set", "training.batch_size=1.5")


def test_recipe_unknown_field():
    refused("unknown field 'training.stepz'", "reference", "build", "digits-image", "--set", "training.stepz=3")


def test_recipe_missing_file(tmp_path):
    refused("does not exist", "reference", "build", tmp_path / "none.toml")


def test_recipe_modality_not_the_data_sets(tmp_path):
    refused(
        "says modality 'text', but data set 'digits-image' holds image",
        "reference",
        "build",
        "digits-image",
        "--set",
        "modality=text",
        "--out",
        tmp_path / "o",
    )


def test_recipe_unknown_data_set_option(tmp_path):
    refused(
        "unknown option 'colour'",
        "reference",
        "build",
        "digits-image",
        "--set",
        "data.colour=1",
        "--out",
        tmp_path / "o",
    )


def test_set_without_equals():
    refused("--set expects section.key=value", "reference", "build", "digits-image", "--set", "training.steps")


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
def test_bad_data(troubled, tmp_path, problem, needle):
    refused(needle, "reference", "build", troubled, "--set", f"data.problem={problem}", "--out", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_missing_image_file():
    from alice.errors import AliceError
    from alice_plugins.media import to_rgb_array

    with pytest.raises(AliceError, match="cannot read image .*missing.png"):
        to_rgb_array("/nonexistent/missing.png")


def test_empty_caption():
    from alice.errors import AliceError
    from alice_plugins.text.backbones import MiniLMBackbone

    with pytest.raises(AliceError, match="empty text"):
        MiniLMBackbone().extract(["a seven", "   "], torch.device("cpu"))


def test_label_alias_outside_the_vocabulary(reference_copy):
    refused(
        "'septem' is not in the reference vocabulary",
        "modality",
        "add",
        "text",
        "--reference",
        reference_copy,
        "--recipe",
        "tiny-text",
        "--name",
        "t2",
        "--set",
        'labels.aliases.seven="septem"',
    )


def test_no_label_maps_onto_the_reference(reference_copy):
    aliases = (
        "{"
        + ", ".join(
            f'{w} = ""' for w in ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )
        + "}"
    )
    refused(
        "no label of data set 'digits-text' maps onto the reference vocabulary",
        "modality",
        "add",
        "text",
        "--reference",
        reference_copy,
        "--recipe",
        "tiny-text",
        "--name",
        "t2",
        "--set",
        f"labels.aliases={aliases}",
    )


def test_damaged_feature_cache(tmp_path, monkeypatch):
    from alice.data.features import extract_features
    from alice.errors import AliceError
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


@pytest.mark.parametrize("which", ["reference.safetensors", "adapters/image/adapter.safetensors"])
def test_tampered_weights(reference_copy, which):
    p = reference_copy / which
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    p.write_bytes(bytes(data))
    refused("does not match the sha256", "reference", "show", reference_copy)
    r = alice("reference", "verify", reference_copy)
    assert r.code == 1
    assert which.rsplit("/", 1)[0] in r.err
    assert "adapters/text" not in r.err


def test_truncated_weights(reference_copy):
    p = reference_copy / "reference.safetensors"
    p.write_bytes(p.read_bytes()[:64])
    refused("reference.safetensors: has 64 bytes, space.json says", "reference", "verify", reference_copy)


def test_manifest_of_another_version(reference_copy):
    m = json.loads((reference_copy / "reference.json").read_text())
    m["format_version"] = 2
    (reference_copy / "reference.json").write_text(json.dumps(m))
    refused("format version 2", "eval", reference_copy)


def test_manifest_not_json(reference_copy):
    (reference_copy / "reference.json").write_text("{not json")
    refused("reference.json is not valid JSON", "eval", reference_copy)


def test_adapter_of_another_reference(reference_copy, tmp_path):
    """A reference honestly re-hashed after one changed weight: the old text adapter no longer belongs to it."""
    from alice.artifacts.loaded import ReferenceSpace
    from alice.artifacts.publish import AdapterWeights
    from alice.train.jobs import save_reference

    ref = ReferenceSpace.load(reference_copy)
    with torch.no_grad():
        ref.classifier.net[0].bias.add_(1.0)
    image = ref.load_adapter("image")
    other = tmp_path / "other"
    save_reference(
        other,
        ref.classifier,
        ref.intervention,
        ref.manifest,
        [AdapterWeights(image.encoder, image.decoder, image.feature_mean, image.feature_std, image.manifest)],
    )
    shutil.copytree(reference_copy / "adapters" / "text", other / "adapters" / "text")
    refused("is an unexpected file, named by no manifest (not in space.json)", "eval", other)  # not recorded
    from alice.artifacts.publish import update_space

    update_space(other, {}, rehash=True)  # recorded by hand: the adapter still names the other reference
    refused("adapter 'text' was trained against another reference", "eval", other)


def test_unexpected_file_in_a_reference(reference_copy):
    (reference_copy / "adapters" / "text" / "model.pt").write_bytes(b"pickle")
    refused("adapters/text/model.pt: is an unexpected file", "reference", "verify", reference_copy)


def test_not_a_reference_folder(tmp_path):
    refused("reference.json is missing", "reference", "show", tmp_path)


# ----------------------------------------------------------------- CLI


def test_output_folder_exists(reference_copy):
    refused("already exists; pass --overwrite", "reference", "build", "tiny-image", "--out", reference_copy)


def test_unknown_device(tmp_path):
    refused(
        "unknown device 'quantum'", "reference", "build", "tiny-image", "--device", "quantum", "--out", tmp_path / "o"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_cuda_asked_for_without_a_gpu(tmp_path):
    refused(
        "no CUDA device is available", "reference", "build", "tiny-image", "--device", "cuda", "--out", tmp_path / "o"
    )


@pytest.mark.slow
def test_resume_with_other_settings(tmp_path, monkeypatch):
    from alice.train import checkpoints

    out = tmp_path / "o"
    monkeypatch.setattr(checkpoints, "remove", lambda folder: None)  # keep the checkpoint, as a killed run would
    code, _, err = alice("reference", "build", "tiny-image", "--out", out, "--steps", "30", "--checkpoint-every", "10")
    assert code == 0, err
    monkeypatch.undo()
    shutil.rmtree(out)
    assert checkpoints.checkpoint_folder(out).exists()
    refused(
        "belongs to a run with other settings",
        "reference",
        "build",
        "tiny-image",
        "--out",
        out,
        "--steps",
        "30",
        "--resume",
        "--set",
        "training.lr=0.01",
    )


# ----------------------------------------------------------------- sharing


@pytest.mark.parametrize(
    "entries, needle",
    [
        ([tar_file("ref/reference.json"), tar_file("ref/../../evil.json")], "would land outside the target folder"),
        ([tar_file("/tmp/evil.json")], "would land outside the target folder"),
        ([tar_file("ref/reference.json"), tar_link("ref/adapters.json", "/etc/passwd")], "is a link"),
        (
            [tar_file("ref/reference.json"), tar_file("ref/run.py", b"print(1)")],
            "is not safetensors, JSON or README.md",
        ),
        ([tar_file("a/reference.json"), tar_file("b/reference.json")], "expected one top folder"),
        ([tar_file("ref/space.json", b"{not json"), tar_file("ref/reference.json")], "not valid JSON"),
    ],
    ids=["dotdot", "absolute", "symlink", "python-file", "two-tops", "bad-json"],
)
def test_import_refuses_crafted_archives(tmp_path, entries, needle):
    archive = tar_archive(tmp_path / "a.tar.gz", entries)
    refused(needle, "reference", "import", archive, "--into", tmp_path / "into")
    assert not (tmp_path / "evil.json").exists()
    assert not list((tmp_path / "into").glob("*")) if (tmp_path / "into").exists() else True


def test_import_refuses_tampered_weights_and_leaves_nothing(tmp_path, tiny_reference):
    code, _, err = alice("reference", "export", tiny_reference, "--out", tmp_path / "ok.tar.gz")
    assert code == 0, err
    tampered_copy(tmp_path / "ok.tar.gz", tmp_path / "bad.tar.gz")
    refused("does not match the sha256", "reference", "import", tmp_path / "bad.tar.gz", "--into", tmp_path / "into")
    assert list((tmp_path / "into").iterdir()) == []


def test_import_not_an_archive(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"hello")
    refused("is not a readable archive", "reference", "import", tmp_path / "x.tar.gz")


def test_export_import_round_trip(tmp_path, tiny_reference):
    from alice.files import sha256_file

    assert alice("reference", "export", tiny_reference, "--out", tmp_path / "r.tar.gz")[0] == 0
    code, _, err = alice("reference", "import", tmp_path / "r.tar.gz", "--into", tmp_path / "into")
    assert code == 0, err
    got = tmp_path / "into" / tiny_reference.name
    assert sha256_file(got / "reference.safetensors") == sha256_file(tiny_reference / "reference.safetensors")
    assert alice("reference", "verify", got)[0] == 0
    refused("already exists", "reference", "import", tmp_path / "r.tar.gz", "--into", tmp_path / "into")
