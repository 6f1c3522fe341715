"""Metrics against hand-computed values, and the tiny reference beating chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alice.artifacts.loaded import ReferenceSpace
from alice.config.evaluation import EvalSpec
from alice.core.metrics import (
    balanced_accuracy,
    classification_metrics,
    intervention_scores,
    label_retrieval,
    label_set_ceiling,
    recall_at_k,
    recall_at_k_blocks,
    youden_thresholds,
)
from alice.evaluation.run import ALICE, NO_TRAINING, evaluate


def test_balanced_accuracy_by_hand():
    pred = np.array([1, 1, 0, 0, 1.0])
    target = np.array([1, 0, 0, 0, 1.0])
    assert balanced_accuracy(pred, target) == pytest.approx((1.0 + 2 / 3) / 2)


def test_youden_threshold_separates_a_separable_class():
    probs = np.array([[0.1], [0.2], [0.7], [0.9]])
    labels = np.array([[0], [0], [1], [1.0]])
    thr = youden_thresholds(probs, labels, np.array([True]))
    assert 0.2 < thr[0] <= 0.7
    m = classification_metrics(probs, labels, thr, np.array([True]))
    assert m["auroc"] == 1.0
    assert m["balanced_accuracy"] == 1.0


def test_label_retrieval_exact_and_superset_by_hand():
    # queries 0,1,2 retrieve gallery items 0,1,2 (identity latents)
    z = torch.eye(3)
    yq = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1.0]])
    yg = np.array([[1, 0, 0], [1, 1, 1], [0, 1, 0.0]])
    r = label_retrieval(z, yq, z, yg, np.array([True, True, True]))
    assert r["label_exact"] == pytest.approx(1 / 3)
    assert r["label_superset"] == pytest.approx(2 / 3)


def test_recall_at_k_counts_any_item_of_the_scene():
    zq = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zg = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1]])
    r = recall_at_k(zq, ["a", "b"], zg, ["b", "c", "a"], ks=(1, 2))
    # query a: top1 = gallery 1 (scene c), top2 adds gallery 2 (scene a); query b: top1 gallery 0 (b)
    assert r == {"R@1": 0.5, "R@2": 1.0}
    blocks = recall_at_k_blocks(zq, ["a", "b"], zg, ["b", "c", "a"], block_scenes=1, ks=(1,))
    assert blocks["R@1"] == 1.0  # each block holds one scene only


def test_label_set_ceiling_by_hand():
    # classes 0 and 1 annotated, class 2 not (ignored): scenes s1, s2, s3 read as {0}, s4 as {1}
    yg = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 1], [0, 1, 0.0]])
    pg = ["s1", "s2", "s3", "s4"]
    # s1: 3 gallery items share {0}, one of them its scene; s4: alone with {1}; s5: no gallery item with {0, 1};
    # s2 asked as {1}: the items with {1} hold none of its scene
    yq = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0.0]])
    r = label_set_ceiling(yq, ["s1", "s4", "s5", "s2"], yg, pg, np.array([True, True, False]), ks=(1, 2, 5))
    assert r["R@1"] == pytest.approx((1 / 3 + 1) / 4)
    assert r["R@2"] == pytest.approx((1 - (2 / 3) * (1 / 2) + 1) / 4)  # 1 - C(2, 2) / C(3, 2) for s1
    assert r["R@5"] == pytest.approx(2 / 4)  # k beyond the group: certain where the scene is in it


def test_intervention_scores_only_count_entries_right_before():
    labels = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
    edited = np.array([[0, 1, 0], [1, 0, 0]], dtype=bool)
    before = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)  # sample 0, class 2 wrong before
    after = np.array([[0, 1, 1], [0, 0, 0]], dtype=bool)
    changed = np.array([[1, 1, 0], [1, 1, 0]], dtype=bool)
    s = intervention_scores(before, after, labels, edited, changed, np.ones_like(labels))
    assert s["changed"] == pytest.approx(3 / 4)  # sample 1 class 0 missed
    assert s["entries_unchanged"] == 1
    assert s["unchanged"] == 1.0


@pytest.mark.slow
def test_tiny_reference_beats_chance_without_pairs(tiny_reference):
    report = evaluate(ReferenceSpace.load(tiny_reference), EvalSpec(device="cpu", seeds=2))
    assert report["modalities"]["image"]["classification"]["auroc"] > 0.8
    rows = {(r["query"], r["gallery"], r["method"]): r for r in report["retrieval"]}
    alice_row, chance_row = rows[("text", "image", ALICE)], rows[("text", "image", NO_TRAINING)]
    assert alice_row["gallery_size"] == 300
    assert alice_row["label_exact"] > 3 * max(chance_row["label_exact"], 0.01)
    assert alice_row["R@10"] > chance_row["R@10"]
    ic = report["modalities"]["image"]["interventions_cycle"]
    assert ic["changed"] > 0.5
    assert ic["unchanged"] > 0.7
    # counterfactual search: edited queries find the edited label set far more often than plain search
    cf = {(r["query"], r["gallery"]): r for r in report["counterfactual"]}
    assert set(cf) == {("image", "text"), ("text", "image")}
    for row in cf.values():
        assert row["queries"] > 250
        assert row["seeds"] == 2
        # the bar this search must clear, met even by this tiny space (about 14x and 9x here): at least 5x plain search
        assert row["counterfactual_exact"] >= 5 * max(row["plain_exact"], 0.01), row
        assert row["counterfactual_swap"] > 2 * row["plain_swap"], row


@pytest.fixture(scope="module")
def third_adapter(tiny_reference, tmp_path_factory):
    """Evaluations of a copy of the tiny space (image, text), before and after a second text adapter.

    The new adapter reads the text adapter's own data set (``--name captions``): it sorts before
    both others, so an evaluation that seeded by adapter order would draw other baselines.
    """
    import shutil

    from alice.data.recipes import load_recipe
    from alice.train.jobs import add_modality

    ref = tmp_path_factory.mktemp("third") / "ref"
    shutil.copytree(tiny_reference, ref)
    spec = EvalSpec(device="cpu", seeds=1)
    before = evaluate(ReferenceSpace.load(ref), spec)
    add_modality(ref, load_recipe("tiny-text", ["training.steps=20"]), name="captions")
    after = evaluate(ReferenceSpace.load(ref), spec)
    return before, after


def _rows(report, method):
    return {(r["query"], r["gallery"]): r for r in report["retrieval"] if r["method"] == method}


@pytest.mark.slow
def test_no_training_rows_of_a_pair_stay_when_an_adapter_is_added(third_adapter):
    before, after = third_adapter
    old, new = _rows(before, NO_TRAINING), _rows(after, NO_TRAINING)
    assert set(old) == {("image", "text"), ("text", "image")}
    for pair in old:
        assert new[pair] == old[pair], pair  # every figure of the row, to the last digit
    assert ("captions", "image") in new
    # the seed is the pair's own: the same in either order, another for another pair or evaluation seed
    from alice.evaluation.run import baseline_seed

    assert baseline_seed("text", "image", 0) == baseline_seed("image", "text", 0)
    assert len({baseline_seed("text", "image", 0), baseline_seed("captions", "image", 0)}) == 2
    assert baseline_seed("text", "image", 0) != baseline_seed("text", "image", 1)


@pytest.mark.slow
def test_two_adapters_of_one_data_set_are_no_cross_modal_pair(third_adapter):
    from alice.evaluation.tables import counterfactual_table, retrieval_table

    _, after = third_adapter
    assert after["within_data_set"] == [
        {"a": "captions", "b": "text", "dataset": "digits-text", "left_out": "Tables 2 and 3"}
    ]
    pairs = {(r["query"], r["gallery"]) for r in after["retrieval"]}
    assert pairs == {(q, g) for q in ("captions", "image", "text") for g in ("captions", "image", "text")} - {
        ("captions", "captions"),
        ("image", "image"),
        ("text", "text"),
        ("captions", "text"),
        ("text", "captions"),
    }
    assert {(r["query"], r["gallery"]) for r in after["counterfactual"]} == pairs
    for table in (retrieval_table(after), counterfactual_table(after)):
        assert "left out, as each reads the same data set as the other (no cross-modal pair): captions and text" in (
            table.note
        )
        assert not any("captions → text" in str(row[0]) or "text → captions" in str(row[0]) for row in table.rows)
    # Table 4 keeps the pair: where two encoders put the same inputs is still worth knowing
    assert any({r["a"], r["b"]} == {"captions", "text"} for r in after["gap"])
