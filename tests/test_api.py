"""The Python API (`alice.load` -> Space): the same numbers as training and evaluation, clear errors."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import alice
from alice.errors import AliceError

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def space(tiny_reference):
    return alice.load(tiny_reference)


@pytest.fixture(scope="module")
def image_test(tiny_reference):
    """The image adapter's test split as `alice eval` loads it, and its raw (unstandardised) features."""
    from alice.artifacts.loaded import ReferenceSpace

    reference = ReferenceSpace.load(tiny_reference)
    adapter = reference.load_adapter("image")
    data = adapter.load_data(("val", "test"), torch.device("cpu"))
    return adapter, data, _raw_features(reference, "image", "test")


def _raw_features(reference, name: str, split: str) -> torch.Tensor:
    """Cached backbone features exactly as extracted: the data pipeline with mean 0 and std 1."""
    from alice.data.loading import load_modality

    m = reference.load_adapter(name).manifest
    data = load_modality(
        m.modality_spec(), reference.vocabulary, torch.device("cpu"), splits=(split,), normalisation="none"
    )
    return data.features[split]


def test_load_gives_the_space_with_every_adapter(space, tiny_reference):
    assert isinstance(space, alice.Space)
    assert space.modalities == ["image", "text"]
    assert space.reference_modality == "image"
    assert space.vocabulary[3] == "three"
    assert len(space.vocabulary) == 10
    assert space.latent_dim == 32
    assert "image, text" in repr(space)


def test_import_alice_stays_free_of_torch():
    code = "import sys, alice; assert alice.__version__; assert 'torch' not in sys.modules, 'torch imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_encode_features_equals_what_evaluation_computes(space, image_test):
    adapter, data, raw = image_test
    with torch.no_grad():
        z_eval = adapter.encoder(data.features["test"])
    z = space.encode_features("image", raw)
    assert z.shape == (raw.shape[0], space.latent_dim)
    assert torch.equal(z, z_eval)
    assert torch.allclose(z.norm(dim=1), torch.ones(len(z)), atol=1e-5)  # on the unit sphere
    # numpy in, one row as a vector
    assert torch.allclose(space.encode_features("image", raw[0].numpy()), z[:1], atol=1e-6)


def test_encode_raw_inputs_matches_the_cached_features(space, tiny_reference):
    from alice.artifacts.loaded import ReferenceSpace
    from alice.data.loading import make_dataset

    reference = ReferenceSpace.load(tiny_reference)
    for name in ("text", "image"):
        inputs = make_dataset(space.adapter(name).manifest.modality_spec().data).split("test").inputs[:40]
        cached = _raw_features(reference, name, "test")[:40]
        from_raw = space.encode(name, inputs)
        from_cache = space.encode_features(name, cached)
        # text is padded per batch, so MiniLM's features may differ in the last bits; the pixels are exact
        assert torch.allclose(from_raw, from_cache, atol=1e-4), (name, (from_raw - from_cache).abs().max())
    assert space.labels(space.encode("text", "a seven next to a two"), "text")  # one string is one input


def test_classify_separates_the_classes_and_predict_uses_the_stored_thresholds(space, image_test):
    from alice.core.metrics import youden_thresholds

    adapter, data, raw = image_test
    z = space.encode_features("image", raw)
    p = space.classify(z)
    assert p.shape == (len(z), 10)
    assert float(p.min()) >= 0
    assert float(p.max()) <= 1
    y = data.labels["test"].numpy() > 0.5
    auroc = np.mean([roc_auc_score(y[:, c], p[:, c].numpy()) for c in range(10)])
    assert auroc > 0.7, auroc  # chance is 0.5
    # the thresholds are the adapter's calibrated ones: Youden's J on its val split, as `alice eval` computes them
    with torch.no_grad():
        probs_val = torch.sigmoid(space.reference.classifier(adapter.encoder(data.features["val"]))).numpy()
    recomputed = youden_thresholds(probs_val, data.labels["val"].numpy(), data.mapping.annotated)
    assert np.allclose(space.thresholds("image").numpy(), recomputed, atol=1e-5)
    assert torch.equal(space.thresholds(), space.thresholds("image"))
    pred = space.predict(z)
    assert pred.dtype == torch.bool
    assert torch.equal(pred, p >= space.thresholds())
    labels = space.labels(z[:5])
    assert labels == [[space.vocabulary[c] for c in np.flatnonzero(row)] for row in pred[:5].numpy()]


def test_replacing_three_with_seven_gives_seven_and_not_three(space, image_test):
    _, _, raw = image_test
    z = space.encode_features("image", raw)
    pred = space.predict(z).numpy()
    three, seven = space.vocabulary.index("three"), space.vocabulary.index("seven")
    rows = pred[:, three]  # latents read as holding a three
    assert rows.sum() >= 20
    # chance: how often a test latent is read as "seven and not three" without any edit
    chance = float((pred[:, seven] & ~pred[:, three]).mean())
    z2 = space.intervene(z[rows], replace=("three", "seven"))
    after = space.predict(z2).numpy()
    rate = float((after[:, seven] & ~after[:, three]).mean())
    assert rate > max(0.6, chance + 0.25), (rate, chance)
    assert torch.allclose(z2.norm(dim=1), torch.ones(len(z2)), atol=1e-5)
    # names or indices, one pair or one per row: the same edit
    assert torch.equal(space.intervene(z[rows], replace=(three, seven)), z2)
    assert torch.equal(space.intervene(z[rows], replace=[("three", "seven")] * int(rows.sum())), z2)
    # the default path is the reference modality's decoder and encoder; direct=True is M_ref alone
    assert torch.equal(space.intervene(z[rows], replace=("three", "seven"), through="image"), z2)
    direct = space.intervene(z[rows], replace=("three", "seven"), direct=True)
    adapter = space.adapter("image")
    with torch.no_grad():
        assert torch.allclose(adapter.encoder(adapter.decoder(direct)), z2, atol=1e-6)


def test_decode_returns_the_modality_features_in_backbone_units(space, image_test):
    _, data, raw = image_test
    z = space.encode_features("image", raw[:50])
    x = space.decode("image", z)
    assert x.shape == (50, space.feature_dim("image"))
    a = space.adapter("image")
    assert torch.allclose(x, space.decode("image", z, standardised=True) * a.feature_std + a.feature_mean)
    # decoding is the inverse the adapter learned: re-encoding mostly keeps the predicted labels
    same = (space.predict(space.encode_features("image", x)) == space.predict(z)).float().mean()
    assert same > 0.8, same
    assert space.decode("text", z).shape == (50, 384)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s, z: s.encode("audio", ["x"]), r"unknown modality 'audio': this space has image, text"),
        (lambda s, z: s.encode_features("sonar", np.zeros((1, 4))), r"unknown modality 'sonar'"),
        (
            lambda s, z: s.intervene(z, replace=("three", "eleven")),
            r"unknown label 'eleven': the vocabulary is zero, one, two",
        ),
        (lambda s, z: s.intervene(z, replace=(3, 12)), r"label index 12 is out of range"),
        (lambda s, z: s.intervene(z, replace=("three", "three")), r"names the same class twice"),
        (lambda s, z: s.intervene(z, replace=[("one", "two")] * 3), r"replace gives 3 pairs for 2 latents"),
        (lambda s, z: s.intervene(z, replace="three"), r"replace must be a pair"),
        (lambda s, z: s.intervene(z, replace=("one", "two"), template=5), r"template must be an integer from 0 to 0"),
        (lambda s, z: s.intervene(z, replace=("one", "two"), through="text", direct=True), r"not both"),
        (lambda s, z: s.intervene(z, replace=("one", "two"), through="radar"), r"unknown modality 'radar'"),
        (
            lambda s, z: s.encode_features("image", np.zeros((2, 7))),
            r"adapter 'image' takes 400 features per input \(backbone 'pixels'\), got 7",
        ),
        (lambda s, z: s.encode_features("text", np.zeros((0, 384))), r"empty input"),
        (lambda s, z: s.encode("text", []), r"got no inputs"),
        (lambda s, z: s.classify(np.zeros((0, 32))), r"empty input"),
        (lambda s, z: s.classify(np.zeros((2, 5))), r"latents of this space have 32 dimensions, got 5"),
        (lambda s, z: s.decode("image", torch.full((1, 32), float("nan"))), r"NaN or infinite"),
        (lambda s, z: s.encode_features("image", np.zeros((2, 3, 4))), r"must have shape \[n, d\]"),
        (lambda s, z: s.predict(z, modality="speech"), r"unknown modality 'speech'"),
    ],
)
def test_mistakes_raise_one_clear_line(space, call, message):
    z = torch.nn.functional.normalize(torch.randn(2, 32), dim=1)
    with pytest.raises(AliceError, match=message) as info:
        call(space, z)
    assert "\n" not in str(info.value)


def test_load_refuses_a_damaged_folder(reference_copy):
    blob = bytearray((reference_copy / "adapters" / "text" / "adapter.safetensors").read_bytes())
    blob[-1] ^= 1
    (reference_copy / "adapters" / "text" / "adapter.safetensors").write_bytes(bytes(blob))
    with pytest.raises(AliceError, match="does not match the sha256"):
        alice.load(reference_copy)


def _readme_python_block() -> str:
    text = README.read_text()
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the From Python section holds one python block"
    return blocks[0]


def test_the_readme_example_runs(tiny_reference):
    code = _readme_python_block()
    assert '"artifacts/digits-image"' in code
    code = code.replace('"artifacts/digits-image"', repr(str(tiny_reference)))
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), namespace)
    printed = out.getvalue().splitlines()
    assert len(printed) == 2
    assert all(line.startswith("[[") for line in printed)
    assert namespace["p"].shape == (2, 10)
    assert namespace["x"].shape == (2, 400)
