"""The one skeleton of every built-in transformers backbone: a Hub id or a local folder, config first, weights later.

``feature_dim`` reads the model's config only (no weights); ``load`` builds the
model and its own processor once, in eval mode. A model that cannot be found
or read is a one-line error naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from alice.plugin import AliceError, Backbone

if TYPE_CHECKING:
    import torch


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class HubBackbone(Backbone):
    """A transformers model with its own processor.

    Subclasses set ``default_model`` and ``processor_class`` and implement ``extract``; options
    ``model`` (a Hub id or a local folder) and ``revision``.
    """

    #: the Hub id used when the recipe names no model
    default_model: ClassVar[str]
    #: the transformers Auto class of the processor: AutoTokenizer, AutoImageProcessor, AutoFeatureExtractor
    processor_class: ClassVar[str]

    def __init__(self, model: str | None = None, revision: str | None = None) -> None:
        self.model_id, self.revision = str(model or self.default_model), revision
        self._model = self._processor = self._config = None

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_id, "revision": self.revision}

    def config(self) -> Any:
        """The model's config (enough for ``feature_dim``) without loading its weights."""
        if self._config is None:
            from transformers import AutoConfig

            try:
                self._config = AutoConfig.from_pretrained(self.model_id, revision=self.revision)
            except (OSError, ValueError) as exc:
                raise AliceError(f"cannot load {self.modality} model {self.model_id!r}: {_first_line(exc)}") from None
        return self._config

    @property
    def feature_dim(self) -> int:
        return int(self.config().hidden_size)

    def load(self, device: torch.device) -> tuple[Any, Any]:
        """``(model in eval mode on device, its processor)``, built on first use."""
        if self._model is None:
            import transformers
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # ALICE shows its own progress
            hf_logging.set_verbosity_error()  # e.g. "pooler weights newly initialised": ALICE never uses the pooler
            try:
                self._processor = getattr(transformers, self.processor_class).from_pretrained(
                    self.model_id, revision=self.revision
                )
                self._model = transformers.AutoModel.from_pretrained(self.model_id, revision=self.revision).eval()
            except (OSError, ValueError) as exc:
                raise AliceError(f"cannot load {self.modality} model {self.model_id!r}: {_first_line(exc)}") from None
        return self._model.to(device), self._processor
