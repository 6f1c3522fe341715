"""Recipes are checked field by field; the digits data keep training and test apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alice.data.recipes import list_recipes, load_recipe, parse_recipe
from alice.errors import AliceError


def test_builtin_recipes_parse_and_pair_up():
    names = {r.name: r for r in list_recipes()}
    assert names["digits-image"].stage == "reference" and names["digits-text"].stage == "modality"
    assert names["digits-image"].family == names["digits-text"].family == "digits"


def test_recipe_overrides_and_defaults():
    r = load_recipe("digits-image", ["training.steps=7", "model.latent_dim=16", "intervention.hidden=32"])
    assert r.training.steps == 7 and r.model.latent_dim == 16 and r.intervention.settings["hidden"] == 32
    assert r.backbone.options == {"size": 20} and r.intervention.prompt_backbone.name == "minilm"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"stage": "reference", "modality": "image", "data": {"dataset": "x"}}, "missing required field 'backbone'"),
        (
            {"stage": "sideways", "modality": "image", "data": {"dataset": "x"}, "backbone": {"name": "y"}},
            "stage must be one of",
        ),
        (
            {
                "stage": "reference",
                "modality": "image",
                "data": {"dataset": "x"},
                "backbone": {"name": "y"},
                "training": {"lr": "fast"},
            },
            "training.lr must be float",
        ),
        (
            {
                "stage": "reference",
                "modality": "image",
                "data": {"dataset": "x"},
                "backbone": {"name": "y"},
                "training": {"stepz": 3},
            },
            "unknown field 'training.stepz'",
        ),
        (
            {
                "stage": "reference",
                "modality": "image",
                "data": {"dataset": "x"},
                "backbone": {"name": "y"},
                "training": {"steps": 0},
            },
            "training.steps must be positive",
        ),
        (
            {"stage": "reference", "modality": "image", "data": "digits", "backbone": {"name": "y"}},
            "data must be a table",
        ),
    ],
)
def test_bad_recipes_name_the_field(raw, message):
    with pytest.raises(AliceError, match=message):
        parse_recipe(raw, "bad")


def test_digits_splits_are_disjoint_draws_and_test_is_paired():
    from alice_plugins.digits.datasets import DigitsImage, DigitsText

    img, txt = DigitsImage(train=500, val=50, test=80), DigitsText(train=500, val=50, test=80)
    ti, tt = img.split("train"), txt.split("train")
    assert ti.pair_ids is None and tt.pair_ids is None  # nothing links training items across modalities
    assert not np.array_equal(ti.labels[:100], tt.labels[:100])
    ei, et = img.split("test"), txt.split("test")
    assert len(et.inputs) == 2 * len(ei.inputs)
    by_scene = dict(zip(ei.pair_ids, ei.labels.tolist()))
    assert all(by_scene[p] == y for p, y in zip(et.pair_ids, et.labels.tolist()))
    assert ei.labels.sum(1).min() >= 1 and ei.labels.sum(1).max() <= 4
    assert ei.inputs[0].shape == (20, 20) and 0.0 <= ei.inputs[0].min() and ei.inputs[0].max() <= 1.0
    # a caption names its digits as words or numerals
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for text, y in zip(et.inputs[:20], et.labels[:20]):
        for c in np.flatnonzero(y):
            assert words[c] in text.lower() or str(c) in text


def test_digits_test_scenes_use_writers_absent_from_training():
    from alice_plugins.digits import scenes

    images, _ = scenes._digits()
    train = scenes.digit_pool("train")
    test = scenes.digit_pool("test")
    train_set = {d.tobytes() for c in train.values() for d in c}
    assert not any(d.tobytes() in train_set for c in test.values() for d in c)
    assert sum(len(v) for v in train.values()) == int(0.7 * len(images))


def test_feature_cache_extracts_once(tmp_path, monkeypatch):
    from alice.data.features import extract_features
    from alice.plugin import Backbone

    calls = []

    class Counting(Backbone):
        name, modality = "counting", "text"

        @property
        def feature_dim(self):
            return 2

        def extract(self, inputs, device):
            calls.append(len(inputs))
            return torch.ones(len(inputs), 2)

    monkeypatch.setenv("ALICE_CACHE_DIR", str(tmp_path))
    kw = dict(dataset_identity={"name": "d"}, split="train", device=torch.device("cpu"), batch_size=4, shard_size=8)
    a = extract_features(Counting(), list("abcdefghijk"), **kw)
    b = extract_features(Counting(), list("abcdefghijk"), **kw)
    assert a.shape == (11, 2) and torch.equal(a, b) and sum(calls) == 11
    assert len(list(tmp_path.rglob("shard-*.safetensors"))) == 2


def test_a_probe_sample_is_extracted_once_for_the_probe_and_the_build(tmp_path, monkeypatch):
    """The probe's sample (rows 1, 4, 9 of 11) goes into the split's cache folder; a second probe reads it, and the
    whole split's extraction extracts only the other 8 rows, giving what a plain extraction gives."""
    from alice.data.features import extract_features, extract_sample
    from alice.plugin import Backbone

    seen: list[str] = []

    class Letters(Backbone):
        name, modality = "letters", "text"

        @property
        def feature_dim(self):
            return 2

        def extract(self, inputs, device):
            seen.extend(inputs)
            return torch.tensor([[ord(c), 2.0 * ord(c)] for c in inputs])

    monkeypatch.setenv("ALICE_CACHE_DIR", str(tmp_path))
    inputs = list("abcdefghijk")
    kw = dict(dataset_identity={"name": "d"}, split="train", device=torch.device("cpu"))
    sample, cached = extract_sample(Letters(), inputs, [9, 1, 4], **kw)
    assert sample[:, 0].tolist() == [ord("j"), ord("b"), ord("e")] and not cached and seen == ["b", "e", "j"]
    again, cached = extract_sample(Letters(), inputs, [1, 9], **kw)
    assert cached and torch.equal(again, sample[[1, 0]]) and len(seen) == 3
    full = extract_features(Letters(), inputs, batch_size=4, shard_size=8, **kw)
    assert sorted(seen[3:]) == sorted(set(inputs) - {"b", "e", "j"})  # the sample's rows are not extracted again
    assert full[:, 0].tolist() == [float(ord(c)) for c in inputs]
    _, cached = extract_sample(Letters(), inputs, [0, 10], **kw)
    assert cached and len(seen) == 11  # the finished split serves a later probe
