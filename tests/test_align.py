"""Paired fine-tuning: the losses against hand-computed values, and runs that improve retrieval."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from cli_helpers import ok, refused

from alice.evaluation.contrastive import (
    Pairs,
    clip_loss,
    cyclip_loss,
    draw_pairs,
    held_out_losses,
    improves,
    split_holdout,
    train_pairs,
)


def _lse(*xs):
    return math.log(sum(math.exp(x) for x in xs))


def test_clip_loss_by_hand():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zb = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # similarities [[1, 0.6], [0, 0.8]] at temperature 1 (log scale 0)
    rows = ((_lse(1, 0.6) - 1) + (_lse(0, 0.8) - 0.8)) / 2
    cols = ((_lse(1, 0) - 1) + (_lse(0.6, 0.8) - 0.8)) / 2
    assert clip_loss(za, zb, torch.tensor(0.0)).item() == pytest.approx((rows + cols) / 2, abs=1e-6)
    # a learned scale multiplies the similarities
    s = math.log(10.0)
    rows10 = ((_lse(10, 6) - 10) + (_lse(0, 8) - 8)) / 2
    cols10 = ((_lse(10, 0) - 10) + (_lse(6, 8) - 8)) / 2
    assert clip_loss(za, zb, torch.tensor(s)).item() == pytest.approx((rows10 + cols10) / 2, abs=1e-5)


def test_cyclip_loss_by_hand():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zb = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # in-modal: A A^T = I, B B^T = [[1, .6], [.6, 1]] -> sum of squared differences 2 * 0.36, over N = 2: 0.36
    # cross-modal: A B^T = [[1, .6], [0, .8]] vs its transpose -> 2 * 0.36 / 2 = 0.36
    expected = clip_loss(za, zb, torch.tensor(0.0)).item() + 0.25 * 0.36 + 0.25 * 0.36
    assert cyclip_loss(za, zb, torch.tensor(0.0)).item() == pytest.approx(expected, abs=1e-6)
    # identical embeddings: both consistency terms vanish
    assert cyclip_loss(za, za, torch.tensor(0.0)).item() == pytest.approx(clip_loss(za, za, torch.tensor(0.0)).item())


def test_pairs_are_distinct_scenes_with_matching_ids():
    pa = [f"s{i}" for i in range(50)]
    pb = [f"s{i // 2}" for i in range(100)]  # two captions per scene
    ia, ib = draw_pairs(pa, pb, 20, seed=0)
    assert len(set(ia.tolist())) == 20
    assert all(pa[i] == pb[j] for i, j in zip(ia, ib))
    with pytest.raises(ValueError, match="paired split has 50"):
        draw_pairs(pa, pb, 51, seed=0)


def test_held_out_pairs_are_a_seeded_share_apart_from_the_training_ones():
    pairs = Pairs(torch.arange(10.0)[:, None], -torch.arange(10.0)[:, None])
    train, held = split_holdout(pairs, 0.2, seed=3)
    assert held.a.shape[0] == 2 and train.a.shape[0] == 8
    assert torch.equal(train.b, -train.a) and torch.equal(held.b, -held.a)  # pairs stay pairs
    assert sorted(torch.cat([train.a, held.a]).flatten().tolist()) == list(range(10))
    assert torch.equal(split_holdout(pairs, 0.2, seed=3)[1].a, held.a)
    assert split_holdout(pairs, 0.0, seed=3) == (pairs, None)
    with pytest.raises(ValueError, match="too few"):
        split_holdout(Pairs(pairs.a[:2], pairs.b[:2]), 0.2, seed=0)


def test_a_step_is_kept_only_when_the_held_out_pairs_tell_its_gain_from_noise():
    kept = torch.full((100,), 2.0)
    noisy = kept + torch.tensor([-1.0, 0.9] * 50)  # the mean falls by 0.05, the pairs' changes scatter by 0.95
    steady = kept - 0.05  # the same fall on every pair
    assert not improves(noisy, kept, margin=2.0)
    assert improves(noisy, kept, margin=0.0)  # margin 0: any fall of the mean, as the plain lowest loss
    assert improves(steady, kept, margin=2.0)
    assert not improves(kept + 0.01, kept, margin=0.0)


def test_held_out_losses_are_the_pairs_shares_of_the_symmetric_loss():
    from alice.core.modules import Encoder

    torch.manual_seed(0)
    held = Pairs(torch.randn(8, 4), torch.randn(8, 4))
    a, b = Encoder(4, 3, [8]), Encoder(4, 3, [8])
    per_pair = held_out_losses(a, b, held)
    assert per_pair.shape == (8,)
    with torch.no_grad():
        whole = clip_loss(a(held.a), b(held.b), torch.tensor(math.log(1 / 0.07)))
    assert per_pair.mean().item() == pytest.approx(whole.item(), abs=1e-5)


def test_training_that_only_adds_noise_keeps_the_start_under_the_margin():
    # held-out pairs unrelated to the training ones: what the steps learn does not carry over, so any fall of
    # their loss is chance, and with a margin the start stays; without one, a lucky step can replace it
    from alice.config.evaluation import PairedSpec
    from alice.core.modules import Encoder

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    train = Pairs(x, x + 0.1 * torch.randn(256, 8))
    held = Pairs(torch.randn(64, 8), torch.randn(64, 8))
    kept = {}
    for margin in (0.0, 2.0):
        torch.manual_seed(1)
        ea, eb = Encoder(8, 4, [16]), Encoder(8, 4, [16])
        spec = PairedSpec(steps=400, batch_size=64, seed=0, patience=0, margin=margin)
        kept[margin] = train_pairs(ea, eb, train, "clip", 1e-2, spec, held)
    assert kept[2.0]["best_step"] == 0
    curve = kept[0.0]["held_out_curve"]
    assert kept[0.0]["best_step"] == curve.index(min(curve)) * 50 > 0  # margin 0: the lowest loss, a lucky step


@pytest.fixture(scope="module")
def paired(tiny_reference):
    from alice.artifacts.loaded import ReferenceSpace
    from alice.evaluation.paired import load_for_pairing

    ref = ReferenceSpace.load(tiny_reference)
    cpu = torch.device("cpu")
    return load_for_pairing(ref, "image", cpu), load_for_pairing(ref, "text", cpu)


@pytest.mark.slow
def test_clip_from_scratch_improves_retrieval_over_its_start(paired):
    from alice.config.evaluation import PairedSpec
    from alice.evaluation.paired import fine_tune, make_encoders, retrieval_both_ways

    a, b = paired
    start = retrieval_both_ways(*make_encoders("clip", a, b, seed=0), a, b)
    ea, eb, run = fine_tune("clip", a, b, 1000, PairedSpec(steps=300, lr=1e-3, batch_size=128, seed=0))
    after = retrieval_both_ways(ea, eb, a, b)
    assert "best_step" not in run  # from scratch every pair trains: nothing is held out
    assert run["loss_curve"][-1] < run["loss_curve"][0]
    assert after["text -> image"]["R@10"] > start["text -> image"]["R@10"] + 0.05


@pytest.mark.slow
def test_alice_then_cyclip_improves_retrieval_over_alice_alone(paired):
    from alice.config.evaluation import PairedSpec
    from alice.evaluation.paired import fine_tune, retrieval_both_ways

    a, b = paired
    before = retrieval_both_ways(a.adapter.encoder, b.adapter.encoder, a, b)
    ea, eb, _ = fine_tune("alice+cyclip", a, b, 1000, PairedSpec(steps=300, lr=1e-1, batch_size=128, seed=0))
    after = retrieval_both_ways(ea, eb, a, b)
    assert after["text -> image"]["R@10"] > before["text -> image"]["R@10"]
    assert not any(
        p.grad is not None for p in a.adapter.encoder.parameters()
    )  # the loaded adapter was copied, not trained


@pytest.mark.slow  # the paired space: a minute of training before it
def test_early_stopping_keeps_the_start_when_tuning_only_hurts(paired):
    from alice.config.evaluation import PairedSpec
    from alice.evaluation.paired import fine_tune, retrieval_both_ways

    a, b = paired
    start = retrieval_both_ways(a.adapter.search_encoder(), b.adapter.search_encoder(), a, b)
    # a learning rate far too high: every step leaves the held-out pairs worse off than the start
    spec = PairedSpec(steps=100, lr=300.0, batch_size=128, seed=0, holdout=0.2, patience=0)
    ea, eb, run = fine_tune("alice+clip", a, b, 500, spec)
    assert run["best_step"] == 0
    assert run["held_out"] == 100
    assert len(run["held_out_curve"]) == 3
    assert min(run["held_out_curve"][1:]) > run["held_out_curve"][0]
    assert retrieval_both_ways(ea, eb, a, b) == start
    # without held-out pairs the same run keeps its last step, and that is worse
    _, _, last = fine_tune("alice+clip", a, b, 500, PairedSpec(steps=100, lr=300.0, batch_size=128, holdout=0.0))
    assert "best_step" not in last
    assert len(last["loss_curve"]) == 2


@pytest.mark.slow  # the paired space: a minute of training before it
def test_early_stopping_stops_once_the_held_out_loss_stalls(paired):
    from alice.config.evaluation import PairedSpec
    from alice.evaluation.paired import fine_tune

    a, b = paired
    _, _, run = fine_tune("alice+clip", a, b, 500, PairedSpec(steps=1000, lr=300.0, batch_size=128, patience=100))
    assert run["best_step"] == 0
    assert len(run["loss_curve"]) == 2  # checked at 50 and 100, then stopped
    # the run's history: a point every 1000 // 250 = 4 steps and at each check, which carries the held-out loss
    points = run["points"]
    assert [p["step"] for p in points if "val_loss" in p] == [50, 100]
    assert [p["val_loss"] for p in points if "val_loss" in p] == run["held_out_curve"][1:]
    assert points[-1]["step"] == 100 and {"loss", "lr", "temperature"} <= set(points[0])
    assert [p["step"] for p in points[:3]] == [4, 8, 12]


@pytest.mark.slow
def test_align_command_writes_a_derived_reference_that_eval_labels(tiny_reference, tmp_path):
    from alice.files import sha256_file

    out = tmp_path / "aligned"
    ok("align", "clip", tiny_reference, "--pairs", "200", "--steps", "50", "--out", out)
    assert sha256_file(out / "reference.safetensors") == sha256_file(tiny_reference / "reference.safetensors")
    m = json.loads((out / "adapters" / "text" / "adapter.json").read_text())
    assert m["alignment"]["method"] == "alice+clip"
    assert m["alignment"]["pairs"] == 200
    assert m["alignment"]["lr"] == pytest.approx(1e-4)
    assert m["alignment"]["holdout"] == 0.2
    assert m["alignment"]["held_out"] == 40
    assert m["alignment"]["margin"] == 2.0
    assert 0 <= m["alignment"]["best_step"] <= 50
    refused("too few", "align", "clip", tiny_reference, "--pairs", "2", "--out", tmp_path / "two")
    assert not (tmp_path / "two").exists()
    ok("align", "clip", tiny_reference, "--pairs", "2", "--holdout", "0", "--steps", "5", "--out", tmp_path / "two")
    m = json.loads((tmp_path / "two" / "adapters" / "image" / "adapter.json").read_text())
    assert m["alignment"]["holdout"] == 0
    assert "best_step" not in m["alignment"]
    r = ok("eval", out, "--seeds", "1", "--json", "--baselines", "--pairs", "100", "--pair-steps", "20")
    report = json.loads(r.out)
    methods = {(row["method"], row["pairs"]) for row in report["retrieval"]}
    assert methods == {
        ("no training", 0),
        ("ALICE then CLIP", 200),
        ("CLIP", 100),
        ("CyCLIP", 100),
        ("ALICE then CLIP", 100),
    }
    assert [row["query"] for row in report["retrieval"]][:6] == ["image"] * 5 + ["text"]  # grouped by direction
    assert report["baselines"]["post-training"]["modality"] == "image"
    refused("--pairs 999999", "eval", out, "--pairs", "999999")


@pytest.mark.slow
def test_a_tuned_encoder_gets_its_decoder_fitted_again(tiny_reference, tmp_path):
    """Interventions are read through C_ref(E(D(M_ref(z)))): once pairs move E, D alone is fitted to it again."""
    from alice.artifacts.format.history import read as read_history
    from alice.artifacts.loaded import ReferenceSpace
    from alice.core.modules import state_digest
    from alice.train.stages import validation_figures

    # a high rate and no held-out pairs: the last step is kept, and both encoders have moved
    tuned = ("align", "clip", tiny_reference, "--pairs", "300", "--holdout", "0", "--steps", "40", "--lr", "0.1")
    ok(*tuned, "--decoder-steps", "0", "--out", tmp_path / "kept")
    ok(*tuned, "--decoder-steps", "60", "--out", tmp_path / "fitted")
    start, kept, fitted = (ReferenceSpace.load(p) for p in (tiny_reference, tmp_path / "kept", tmp_path / "fitted"))
    cpu = torch.device("cpu")
    for name in ("image", "text"):
        s, k, f = (space.load_adapter(name) for space in (start, kept, fitted))
        assert state_digest(k.encoder) == state_digest(f.encoder) != state_digest(s.encoder)  # E as tuned
        assert state_digest(k.decoder) == state_digest(s.decoder) != state_digest(f.decoder)
        assert k.manifest.alignment["decoder"] is None
        record = f.manifest.alignment["decoder"]
        assert record["steps"] == 60
        jobs = read_history(tmp_path / "fitted" / "adapters" / name / "history.jsonl")
        assert [j.settings["job"] for j in jobs[-2:]] == ["align", "decoder fit"]
        assert jobs[-1].points[-1]["step"] == 60
        assert jobs[-1].headline() == "val_sem"  # what the card's curve shows, checked ten times
        assert jobs[-1].series("val_sem")[0] == [6 * i for i in range(1, 11)]
        # the cycle through the tuned encoder reads the edits better with the decoder fitted to it
        data = f.load_data(("val",), cpu)
        modules = (start.classifier, start.intervention)
        old = validation_figures(data, f.encoder, k.decoder, *modules, seed=0)
        new = validation_figures(data, f.encoder, f.decoder, *modules, seed=0)
        assert new["val_sem"] < old["val_sem"]
        assert new["val_sem"] == pytest.approx(record["val_sem"], rel=1e-4)
    # from scratch the decoders are kept (C_ref does not read a fresh encoder), and asking for a fit is refused
    ok(*tuned, "--scratch", "--out", tmp_path / "scratch")
    a = ReferenceSpace.load(tmp_path / "scratch").load_adapter("text")
    assert a.manifest.alignment["decoder"] is None
    assert state_digest(a.decoder) == state_digest(start.load_adapter("text").decoder)
    assert read_history(tmp_path / "scratch" / "adapters" / "text" / "history.jsonl")[-1].settings["job"] == "align"
    refused("--scratch keeps the old ones", *tuned, "--scratch", "--decoder-steps", "5", "--out", tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow  # the paired space: a minute of training before it
def test_a_decoder_is_fitted_to_the_encoder_inside_a_search_transform(paired, tiny_reference):
    """An adapter that centres its search latents is tuned inside the transform; the fit reads the encoder in it."""
    from alice.artifacts.loaded import ReferenceSpace
    from alice.core.alignment import SearchEncoder
    from alice.core.modules import state_digest
    from alice.evaluation.paired import decoder_data, fit_decoder

    side, cpu = paired[1], torch.device("cpu")
    reference = ReferenceSpace.load(tiny_reference)
    moved = copy.deepcopy(side.adapter.encoder)
    with torch.no_grad():
        moved.net[-1].bias.add_(0.1)
    wrapped = SearchEncoder(moved, torch.zeros(side.adapter.latent_dim), None)
    frozen = (moved, reference.classifier, reference.intervention)
    flags = [[p.requires_grad for p in m.parameters()] for m in frozen]
    digests = state_digest(*frozen), state_digest(side.adapter.decoder)
    fit = fit_decoder(reference, side, decoder_data(side, cpu), wrapped, 5, cpu)
    assert fit is not None and fit.steps == 5
    assert state_digest(fit.decoder) != digests[1] == state_digest(side.adapter.decoder)  # the old one left as it was
    assert state_digest(*frozen) == digests[0]
    assert [[p.requires_grad for p in m.parameters()] for m in frozen] == flags  # put back after the fit
    # an encoder that did not move keeps its decoder
    assert fit_decoder(reference, side, decoder_data(side, cpu), side.adapter.search_encoder(), 5, cpu) is None


@pytest.mark.slow
def test_post_training_baseline_scores_concept_algebra(tiny_reference):
    from alice.artifacts.loaded import ReferenceSpace
    from alice.evaluation.baselines import post_training_baseline

    result = post_training_baseline(ReferenceSpace.load(tiny_reference), torch.device("cpu"), seeds=2)
    assert result["classification"]["auroc"] > 0.75
    assert result["interventions"]["changed"] > 0.5  # the edits move the plain classifier's predictions


@pytest.mark.slow
def test_sweep_command_writes_json_and_plot(tiny_reference, tmp_path):
    ok(
        "sweep",
        "pairs",
        tiny_reference,
        "--pairs",
        "50",
        "--pairs",
        "200",
        "--seeds",
        "2",
        "--steps",
        "30",
        "--holdout",
        "0.5",
        "--out",
        tmp_path,
    )
    report = json.loads((tmp_path / "sweep.json").read_text())
    assert {(s["method"], s["pairs"]) for s in report["summary"]} >= {
        ("clip", 50),
        ("alice+clip", 200),
        ("ALICE only", 0),
        ("no training", 0),
        ("label-set ceiling", 0),
    }
    assert report["settings"]["holdout_from_alice"] == 0.5
    assert {(r["method"], r["pairs"], r.get("held_out")) for r in report["rows"] if r["pairs"]} == {
        ("clip", 50, None),
        ("clip", 200, None),
        ("alice+clip", 50, 25),
        ("alice+clip", 200, 100),
    }
    ceiling = next(s for s in report["summary"] if s["method"] == "label-set ceiling")
    assert ceiling["label_exact"] == 1.0 and ceiling["R@10"] >= ceiling["R@1"] > 0
    assert all(s["seeds"] == 2 for s in report["summary"] if s["pairs"])
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused("asked for 999999 pairs", "sweep", "pairs", tiny_reference, "--pairs", "999999", "--out", tmp_path / "no")
    assert not (tmp_path / "no").exists()
    refused(
        "two different modalities",
        "align",
        "clip",
        tiny_reference,
        "--pairs",
        "10",
        "--modality",
        "text",
        "--modality",
        "text",
        "--out",
        tmp_path / "same",
    )
