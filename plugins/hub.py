"""Loading transformers models (Hub ids or local folders) for the built-in backbones, with one-line errors."""

from __future__ import annotations

from typing import Any


def load_config(model_id: str, revision: str | None, what: str) -> Any:
    """The model's config (enough for ``feature_dim``) without loading its weights."""
    from transformers import AutoConfig

    from alice.errors import AliceError

    try:
        return AutoConfig.from_pretrained(model_id, revision=revision)
    except (OSError, ValueError) as exc:
        raise AliceError(f"cannot load {what} model {model_id!r}: {str(exc).splitlines()[0]}") from None


def load_model(model_id: str, revision: str | None, what: str, processor_class: str) -> tuple[Any, Any]:
    """``(model in eval mode, its processor)``; ``processor_class`` names a transformers Auto class
    (``AutoTokenizer``, ``AutoImageProcessor``, ``AutoFeatureExtractor``)."""
    import transformers
    from transformers.utils import logging as hf_logging

    from alice.errors import AliceError

    hf_logging.disable_progress_bar()  # ALICE shows its own progress
    hf_logging.set_verbosity_error()  # e.g. "pooler weights newly initialised": ALICE never uses the pooler
    try:
        processor = getattr(transformers, processor_class).from_pretrained(model_id, revision=revision)
        model = transformers.AutoModel.from_pretrained(model_id, revision=revision).eval()
    except (OSError, ValueError) as exc:
        raise AliceError(f"cannot load {what} model {model_id!r}: {str(exc).splitlines()[0]}") from None
    return model, processor
