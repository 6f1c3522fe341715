"""The method itself: losses fall for every intervention design; stage 2 freezes the reference."""

from __future__ import annotations

import pytest
import torch

from alice.artifacts.loaded import ReferenceSpace
from alice.config.modality import BackboneSpec, DataSpec, ModalitySpec
from alice.config.training import ModelSpec, TrainingSpec
from alice.core.interventions import AffineIntervention, GlobalIntervention, NonLinearIntervention, sample_interventions
from alice.core.losses import masked_bce
from alice.core.modules import state_digest
from alice.data.loading import load_modality
from alice.files import sha256_file
from alice.train.stages import AdapterTrainer, ReferenceTrainer

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits_pixels():
    return load_modality(
        ModalitySpec(
            DataSpec("digits-image", {"train": 1500, "val": 200, "test": 200}), BackboneSpec("pixels", {"size": 12})
        ),
        None,
        CPU,
    )


def model(latent: int = 16, hidden: int = 64, dropout: float = 0.1) -> ModelSpec:
    return ModelSpec(
        latent_dim=latent,
        encoder_hidden=[hidden, hidden],
        classifier_hidden=[hidden, hidden],
        classifier_dropout=dropout,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "design",
    [
        lambda: GlobalIntervention(10, 16),
        lambda: AffineIntervention(10, 16),
        lambda: NonLinearIntervention(10, 16, hidden=64, condition="onehot"),
    ],
    ids=["global", "affine", "nonlinear"],
)
def test_each_design_trains_and_losses_fall(digits_pixels, design):
    t = TrainingSpec(steps=240, batch_size=128, rec_weight=1.0, eval_every=0, seed=1)
    E, D, C, M, history = ReferenceTrainer(digits_pixels, design(), model(), t, CPU).train()
    first, last = history.records[0], history.records[-1]
    for loss in ("rec", "cls", "sem"):
        assert last[loss] < 0.9 * first[loss], f"{loss} did not fall: {first[loss]:.4f} -> {last[loss]:.4f}"


def test_nonlinear_design_starts_near_identity():
    m = NonLinearIntervention(10, 16, hidden=32, condition="onehot")
    z = torch.nn.functional.normalize(torch.randn(64, 16), dim=-1)
    k = sample_interventions((torch.rand(64, 10) > 0.5).float())
    assert (m(z, k) - z).norm(dim=-1).max() < 0.1


def test_sampled_interventions_remove_a_present_and_add_an_absent_annotated_class():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(500, 10, generator=g) > 0.6).float()
    annotated = torch.tensor([True] * 7 + [False] * 3)
    k = sample_interventions(y, annotated, generator=g)
    rows = torch.arange(500)
    v = k.valid
    assert v.float().mean() > 0.5
    assert (y[rows, k.remove][v] == 1).all()
    assert (y[rows, k.add][v] == 0).all()
    assert annotated[k.remove[v]].all()
    assert annotated[k.add[v]].all()
    edited = k.apply_to_labels(y)
    assert (edited[rows, k.remove][v] == 0).all()
    assert (edited[rows, k.add][v] == 1).all()
    assert torch.equal(edited[~v], y[~v])  # no usable intervention: labels untouched
    assert ((edited != y).sum(1)[v] == 2).all()  # exactly two classes change
    # every annotated class gets drawn: the draw is not stuck on one index
    assert set(k.add[v].tolist()) == set(range(7))


def test_masked_bce_ignores_unannotated_classes():
    logits = torch.zeros(4, 5, requires_grad=True)
    target = torch.ones(4, 5)
    mask = torch.tensor([True, True, False, True, False])
    loss = masked_bce(logits, target, mask)
    loss.backward()
    assert torch.allclose(loss, torch.log(torch.tensor(2.0)))
    assert (logits.grad[:, ~mask] == 0).all()
    assert (logits.grad[:, mask] != 0).all()


def test_stage_two_leaves_reference_bit_identical(reference_copy, recipe_dir):
    """Adding a modality never writes the reference weights and never changes C_ref or M_ref."""
    from alice.data.recipes import load_recipe
    from alice.train.jobs import add_modality

    before_file = sha256_file(reference_copy / "reference.safetensors")
    ref = ReferenceSpace.load(reference_copy)
    before_state = state_digest(ref.classifier, ref.intervention)
    image_adapter = sha256_file(reference_copy / "adapters" / "image" / "adapter.safetensors")
    add_modality(reference_copy, load_recipe("tiny-text", ["training.steps=30"]), name="text2")
    after = ReferenceSpace.load(reference_copy)
    assert sha256_file(reference_copy / "reference.safetensors") == before_file
    assert state_digest(after.classifier, after.intervention) == before_state
    assert sha256_file(reference_copy / "adapters" / "image" / "adapter.safetensors") == image_adapter
    assert after.load_adapter("text2").manifest.reference_sha256 == before_file


def test_stage_two_trains_only_encoder_and_decoder_even_with_partial_labels(tiny_reference):
    """A modality annotating 6 of 10 classes: the others are masked, C_ref and M_ref keep their bytes."""
    from alice.config.modality import LabelSpec

    ref = ReferenceSpace.load(tiny_reference)
    aliases = {c: "" for c in ("six", "seven", "eight", "nine")}  # no counterpart in this modality
    spec = ModalitySpec(
        DataSpec("digits-image", {"train": 800, "val": 200, "test": 200, "seed": 3}),
        BackboneSpec("pixels", {"size": 12}),
        LabelSpec("by-name", aliases),
    )
    data = load_modality(spec, ref.vocabulary, CPU)
    assert data.mapping.annotated.tolist() == [True] * 6 + [False] * 4
    assert (data.labels["train"][:, 6:] == 0).all()
    before = state_digest(ref.classifier, ref.intervention)
    t = TrainingSpec(steps=60, batch_size=64, rec_weight=1.0, eval_every=0)
    E, D, history = AdapterTrainer(data, ref.classifier, ref.intervention, model(), t, CPU).train()
    assert state_digest(ref.classifier, ref.intervention) == before
    assert all(not p.requires_grad for p in (*ref.classifier.parameters(), *ref.intervention.parameters()))
    assert history.records[-1]["cls"] < history.records[0]["cls"]


@pytest.mark.slow
def test_fast_path_settings_give_the_same_losses(digits_pixels, monkeypatch):
    """bf16 autocast, fused Adam and torch.compile (the GPU fast path, run here on CPU): losses as the plain path's.

    Dropout is off so both runs see the same arithmetic up to rounding; bf16
    rounds activations to 8 bits of mantissa, so losses agree to about 1e-2
    relative after 60 steps, not bit for bit. The defaults stay bit-for-bit the
    old path (see the artifact-hash tests).

    torch.compile runs with the ``aot_eager`` backend here: the same Dynamo
    capture and AOTAutograd joint graphs (frozen modules, no-grad recompute,
    the gradients each graph must return) as inductor, without generating C++,
    which takes minutes on two busy cores. Inductor itself was checked by hand
    (docs/performance.md).
    """
    import functools

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: a second thread only waits on a busy machine
    try:
        _compare_fast_and_plain(digits_pixels)
    finally:
        torch.set_num_threads(threads)


def _compare_fast_and_plain(digits_pixels):
    from alice.train.stages import FastPath

    assert FastPath.resolve(TrainingSpec(), CPU).adam == {}
    assert FastPath.resolve(TrainingSpec(), CPU).autocast is None
    assert FastPath.resolve(TrainingSpec(), torch.device("cuda")).adam == {"fused": True}
    assert FastPath.resolve(TrainingSpec(), torch.device("cuda")).autocast is torch.bfloat16
    runs = {}
    for name, fast in (("plain", {}), ("fast", {"precision": "bf16", "optimizer": "fused", "compile": "default"})):
        t = TrainingSpec(steps=60, batch_size=64, rec_weight=1.0, eval_every=0, seed=1, **fast)
        torch.manual_seed(0)
        M = NonLinearIntervention(10, 16, hidden=32, condition="onehot")
        E, D, C, M, h1 = ReferenceTrainer(digits_pixels, M, model(hidden=32, dropout=0.0), t, CPU).train()
        t2 = TrainingSpec(steps=30, batch_size=64, rec_weight=1.0, eval_every=0, seed=2, **fast)
        _, _, h2 = AdapterTrainer(digits_pixels, C, M, model(hidden=32), t2, CPU).train()
        runs[name] = (h1.records[-1], h2.records[-1])
    for plain, fast in zip(runs["plain"], runs["fast"]):
        for k, v in plain.items():
            assert abs(fast[k] - v) <= 0.02 * abs(v) + 1e-4, (k, v, fast[k])


def test_bad_fast_path_setting_is_a_one_line_error():
    from alice.data.recipes import parse_recipe
    from alice.errors import AliceError

    raw = {
        "stage": "reference",
        "modality": "image",
        "data": {"dataset": "digits-image"},
        "backbone": {"name": "pixels"},
        "training": {"precision": "fp8"},
    }
    with pytest.raises(AliceError, match=r"training.precision must be one of auto, fp32, bf16, got 'fp8'"):
        parse_recipe(raw, "x")


def test_16bit_dropout_masks_keep_the_rate_the_mean_and_independence():
    """``dropout_mask = "16bit"``: four 16-bit lanes per random word, each an independent draw at p."""
    from alice.core.modules import Dropout

    torch.manual_seed(0)
    drop = Dropout(0.1, mask="16bit")
    x = torch.ones(2000, 2000)
    y = drop(x)
    dropped = y == 0
    p = round(0.1 * 65536) / 65536  # 0.1000061
    sigma = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 5 * sigma
    assert abs(y.mean().item() - 1.0) < 5 * sigma / (1 - p)  # kept entries scaled by 1 / (1 - p)
    assert torch.allclose(y[~dropped], torch.full_like(y[~dropped], 1 / (1 - p)))
    # the lanes of one word (neighbouring entries) are independent: P(both dropped) = p^2
    lanes = dropped.reshape(-1, 4).float()
    for a, b in ((0, 1), (1, 2), (2, 3), (0, 3)):
        both = (lanes[:, a] * lanes[:, b]).mean().item()
        assert abs(both - p * p) < 5 * (p * p / lanes.shape[0]) ** 0.5, (a, b, both)
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)  # torch's generator: seeded, checkpointed, reproducible
    assert not torch.equal(drop(x), y)
    # compiled, two dropout layers draw two masks (forward only, and with autograd)
    two_layers = torch.compile(lambda v, w: (drop(v), drop(w)), backend="aot_eager")
    for grad in (False, True):
        a, b = two_layers(x[:64].clone().requires_grad_(grad), x[:64].clone().requires_grad_(grad))
        assert not torch.equal(a, b)
    # and the same masks as eager under the same seed: a compiled step can be checked against eager with dropout on
    from alice.core.modules import Classifier

    classifier = Classifier(10, 16, [32, 32], 0.1).train()
    classifier.set_dropout_mask("16bit")
    z = torch.randn(8, 16)
    torch.manual_seed(3)
    eager = classifier(z)
    torch.manual_seed(3)
    assert torch.allclose(torch.compile(classifier, backend="aot_eager")(z), eager, atol=1e-6)
    drop.eval()
    assert torch.equal(drop(x), x)


@pytest.mark.slow
def test_dropout_mask_setting_resolves_and_trains(digits_pixels, monkeypatch):
    import functools

    from alice.errors import AliceError
    from alice.train.stages import FastPath

    assert FastPath.resolve(TrainingSpec(), CPU).dropout_mask == "torch"  # the default stays bit-for-bit
    assert FastPath.resolve(TrainingSpec(compile="default"), CPU).dropout_mask == "16bit"
    assert FastPath.resolve(TrainingSpec(compile="default"), torch.device("cuda")).dropout_mask == "torch"
    assert FastPath.resolve(TrainingSpec(compile="default", dropout_mask="torch"), CPU).dropout_mask == "torch"
    with pytest.raises(AliceError, match=r"training.dropout_mask must be one of auto, torch, 16bit, got 'fast'"):
        FastPath.resolve(TrainingSpec(dropout_mask="fast"), CPU)
    # compiled (aot_eager: Dynamo and AOTAutograd without generating C++), the masks come from
    # the custom operator alice::keep_mask_16bit, which the graph calls as it is
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    finals = {}
    for name, settings in (
        ("torch", {"dropout_mask": "torch"}),
        ("16bit", {"dropout_mask": "16bit"}),
        ("compiled", {"compile": "default"}),
    ):
        t = TrainingSpec(steps=240, batch_size=128, rec_weight=1.0, eval_every=0, seed=1, **settings)
        M = NonLinearIntervention(10, 16, hidden=64, condition="onehot")
        _, _, C, _, history = ReferenceTrainer(digits_pixels, M, model(), t, CPU).train()
        assert {m.mask for m in C.modules() if hasattr(m, "mask")} == {"torch" if name == "torch" else "16bit"}
        first, finals[name] = history.records[0], history.records[-1]
        for loss in ("rec", "cls", "sem"):
            assert finals[name][loss] < 0.9 * first[loss], (name, loss)
    for name in ("16bit", "compiled"):
        for loss in ("rec", "cls", "sem"):  # another random stream, the same training within noise
            assert abs(finals[name][loss] - finals["torch"][loss]) <= 0.15 * finals["torch"][loss], (name, loss)
