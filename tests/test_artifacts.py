"""Artifacts round-trip exactly, and loading refuses anything that does not match its manifest."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from alice.artifacts import ReferenceSpace, state_digest
from alice.errors import AliceError


def test_round_trip_gives_identical_modules_and_outputs(tiny_reference, tmp_path):
    ref = ReferenceSpace.load(tiny_reference)
    adapter = ref.load_adapter("image")
    assert ref.manifest["weights"]["sha256"] == ref.sha256
    assert set(ref.adapter_names()) == {"image", "text"}
    # write the loaded modules out again, read them back: same bytes, same outputs
    from alice.artifacts import AdapterWeights, write_reference

    out = tmp_path / "again"
    keep = {k: v for k, v in ref.manifest.items() if k not in ("format", "format_version", "alice_version", "weights")}
    aw = AdapterWeights("image", adapter.encoder, adapter.decoder, adapter.feature_mean, adapter.feature_std,
                        {k: v for k, v in adapter.manifest.items() if k not in ("format", "format_version", "alice_version", "name", "weights", "reference_sha256")})
    digest = write_reference(out, ref.classifier, ref.intervention, keep, aw)
    assert digest == ref.sha256
    again = ReferenceSpace.load(out)
    assert state_digest(again.classifier, again.intervention) == state_digest(ref.classifier, ref.intervention)
    x = torch.randn(7, adapter.feature_mean.shape[0])
    with torch.no_grad():
        assert torch.equal(again.load_adapter("image").encoder(x), adapter.encoder(x))


def test_manifests_carry_what_the_design_requires(tiny_reference):
    m = json.loads((tiny_reference / "reference.json").read_text())
    for key in ("format_version", "vocabulary", "latent_dim", "intervention", "training", "metrics", "weights", "alice_version"):
        assert key in m
    a = json.loads((tiny_reference / "adapters" / "text" / "adapter.json").read_text())
    assert a["reference_sha256"] == m["weights"]["sha256"]
    assert a["backbone"]["name"] == "minilm" and a["backbone"]["feature_dim"] == 384
    assert a["labels"]["mapping"]["seven"] == "seven" and len(a["thresholds"]) == 10
    assert not list(tiny_reference.rglob("*.pt")) and not list(tiny_reference.rglob("*.pkl"))


def _flip_byte(path, offset=-10):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_tampered_reference_weights_are_refused(reference_copy):
    _flip_byte(reference_copy / "reference.safetensors")
    with pytest.raises(AliceError, match="does not match the sha256"):
        ReferenceSpace.load(reference_copy)


def test_tampered_adapter_weights_are_refused(reference_copy):
    _flip_byte(reference_copy / "adapters" / "text" / "adapter.safetensors")
    ref = ReferenceSpace.load(reference_copy)
    with pytest.raises(AliceError, match="does not match the sha256"):
        ref.load_adapter("text")


def test_truncated_weights_are_refused(reference_copy):
    path = reference_copy / "reference.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AliceError, match="sha256"):
        ReferenceSpace.load(reference_copy)


def test_adapter_of_another_reference_is_refused(reference_copy, tmp_path):
    m = json.loads((reference_copy / "reference.json").read_text())
    other = tmp_path / "other"
    shutil.copytree(reference_copy, other)
    # a different reference: retrain nothing, just a different classifier byte, re-hashed honestly
    from alice.artifacts import AdapterWeights, write_reference

    ref = ReferenceSpace.load(reference_copy)
    with torch.no_grad():
        ref.classifier.net[0].bias.add_(1.0)
    a = ref.load_adapter("image")
    keep = {k: v for k, v in m.items() if k not in ("format", "format_version", "alice_version", "weights")}
    aw = AdapterWeights("image", a.encoder, a.decoder, a.feature_mean, a.feature_std, {"modality": "image", "encoder_hidden": a.manifest["encoder_hidden"], "backbone": a.manifest["backbone"]})
    write_reference(other, ref.classifier, ref.intervention, keep, aw, overwrite=True)
    shutil.copytree(reference_copy / "adapters" / "text", other / "adapters" / "text")
    with pytest.raises(AliceError, match="trained against another reference"):
        ReferenceSpace.load(other).load_adapter("text")


def test_manifest_of_another_format_version_is_refused(reference_copy):
    path = reference_copy / "reference.json"
    m = json.loads(path.read_text())
    m["format_version"] = 99
    path.write_text(json.dumps(m))
    with pytest.raises(AliceError, match="format version 99"):
        ReferenceSpace.load(reference_copy)


def test_missing_folder_and_broken_json_are_refused(tmp_path, reference_copy):
    with pytest.raises(AliceError, match="does not exist"):
        ReferenceSpace.load(tmp_path / "nope")
    (reference_copy / "reference.json").write_text("{not json")
    with pytest.raises(AliceError, match="not valid JSON"):
        ReferenceSpace.load(reference_copy)


def test_existing_output_is_not_overwritten_without_permission(tiny_reference, recipe_dir):
    from alice.build import build_reference
    from alice.recipes import load_recipe

    before = (tiny_reference / "reference.safetensors").read_bytes()
    with pytest.raises(AliceError, match="already exists"):
        build_reference(load_recipe("tiny-image"), tiny_reference)
    assert (tiny_reference / "reference.safetensors").read_bytes() == before


def test_serialised_weights_are_byte_stable():
    """The same tensors always give the same file bytes (so the same seed can give the same sha256)."""
    import hashlib

    from alice.artifacts import _serialise

    tensors = {f"layer{i}.weight": torch.randn(4, 4) for i in range(20)}
    assert len({hashlib.sha256(_serialise(tensors)).hexdigest() for _ in range(30)}) == 1


def test_same_seed_gives_the_same_artifact_sha256(tmp_path, recipe_dir):
    from alice.build import build_reference
    from alice.recipes import load_recipe

    shas = [build_reference(load_recipe("tiny-image", ["training.steps=40"]), tmp_path / f"run{i}").sha256 for i in range(2)]
    other = build_reference(load_recipe("tiny-image", ["training.steps=40", "training.seed=1"]), tmp_path / "other").sha256
    assert shas[0] == shas[1] != other
