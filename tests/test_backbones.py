"""Backbones: the real loading code, on small random-config models and the offline weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

CPU = torch.device("cpu")


def test_bert_backbone_cls_features_from_a_local_folder(tiny_bert):
    from alice_plugins.text.backbones import BertBackbone

    b = BertBackbone(model=str(tiny_bert))
    assert b.feature_dim == 32
    f = b.extract(["a 3 next to a seven", "two"], CPU)
    assert f.shape == (2, 32)
    assert not torch.allclose(f[0], f[1])
    mean = BertBackbone(model=str(tiny_bert), pooling="mean").extract(["a 3 next to a seven", "two"], CPU)
    assert not torch.allclose(mean, f)


def test_vit_backbone_cls_features_from_a_local_folder(tiny_vit):
    from alice_plugins.image.backbones import ViTBackbone

    b = ViTBackbone(model=str(tiny_vit))
    images = [np.random.default_rng(i).random((20, 20)).astype(np.float32) for i in range(3)]
    f = b.extract(images, CPU)
    assert b.feature_dim == 32
    assert f.shape == (3, 32)
    assert torch.isfinite(f).all()


def test_missing_model_is_a_clear_error(tmp_path):
    from alice.errors import AliceError
    from alice_plugins.text.backbones import BertBackbone

    with pytest.raises(AliceError, match="cannot load text model"):
        _ = BertBackbone(model=str(tmp_path / "nowhere")).feature_dim


def test_minilm_gives_sentence_embeddings_that_know_digits():
    from alice_plugins.text.backbones import MiniLMBackbone

    f = torch.nn.functional.normalize(MiniLMBackbone().extract(["a seven", "a 7", "a two"], CPU), dim=-1)
    assert f.shape == (3, 384)
    assert f[0] @ f[1] > f[0] @ f[2]  # "seven" is nearer "7" than "two"


def test_mobilenet_v2_loads_imagenet_weights_strictly():
    from alice_plugins.image.backbones import MobileNetV2Backbone

    b = MobileNetV2Backbone(size=64)
    images = [np.random.default_rng(i).random((20, 20, 3)).astype(np.float32) for i in range(2)]
    f = b.extract(images, CPU)
    assert f.shape == (2, 1280)
    assert (f >= 0).all()
    assert f.abs().sum() > 0
