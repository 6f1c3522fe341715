"""Transformers backbones, shared by the built-in plugins: the ``hf`` backbone and its presets (``vit``, ``bert``,
``minilm``, ``wav2vec2``).

:class:`HubBackbone` is the skeleton: a Hub id or a local folder, config first, weights later.
``feature_dim`` reads the model's config only (no weights); ``load`` builds the model and its own
processor once, in eval mode. A model that cannot be found or read is a one-line error naming it.
Nothing a model folder holds is executed: every ``from_pretrained`` passes ``trust_remote_code=False``
(a model whose architecture is code of its own is refused), and weights are read from safetensors
only (``use_safetensors=True``): a folder holding a pickled ``pytorch_model.bin`` is refused with
what to do, never unpickled.

:class:`HFBackbone` (registered as ``hf``) reads whatever its model reads: text through the model's
tokenizer, images through its image processor, audio through its feature extractor. Which one is
the model's word (the input its architecture takes; a model with both a text and an image tower,
CLIP or SigLIP, needs the option ``modality``), and so are ``reads``, ``file_suffixes``,
``reads_text`` and ``preview``. ``pooling`` turns the last hidden state into one vector: ``cls``
(the first token), ``mean`` (over the tokens or audio frames that are not padding), ``pooler``
(the model's pooler output) or ``features`` (the model's own embedding function,
``get_image_features`` / ``get_text_features``: CLIP's projected embeddings).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from alice.plugin import AliceError, Backbone, InputLimits
from alice_plugins.media import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    are_sounds,
    are_texts,
    image_preview,
    image_side,
    read_media,
    sound_preview,
    waveforms,
)

if TYPE_CHECKING:
    import torch

KINDS = ("text", "image", "audio")
#: further data set modalities a backbone of each kind reads
ALSO_READS = {"audio": ("speech",)}
POOLINGS = ("auto", "cls", "mean", "pooler", "features")
#: the processor each kind needs, and the sub-model of a model with several towers (CLIP's vision_model)
PROCESSORS = {"text": "AutoTokenizer", "image": "AutoImageProcessor", "audio": "AutoFeatureExtractor"}
TOWERS = {"text": "text_model", "image": "vision_model", "audio": "audio_model"}
SUB_CONFIGS = {"text": "text_config", "image": "vision_config", "audio": "audio_config"}
#: the model's main input, as transformers names it, -> the kind of input it is
MAIN_INPUTS = {"input_ids": "text", "pixel_values": "image", "input_values": "audio", "input_features": "audio"}


#: whether a few inputs are of each kind (what the probe of ``alice recipe init`` offers a model folder)
READS_SAMPLE = {"text": are_texts, "image": lambda sample: image_side(sample) is not None, "audio": are_sounds}


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


#: what every ``from_pretrained`` here is given: no code from the model's folder or repository is ever run
NO_REMOTE_CODE: dict[str, Any] = {"trust_remote_code": False}
#: the endings of pickled weights (torch.save), which ALICE never loads
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def pickled_weights(model_id: str) -> str | None:
    """The pickled weights file a local model folder holds in place of safetensors (None: none, or not a folder)."""
    import os

    if not os.path.isdir(model_id) or any(n.endswith(".safetensors") for n in os.listdir(model_id)):
        return None
    return next((n for n in sorted(os.listdir(model_id)) if n.endswith(PICKLE_SUFFIXES)), None)


def load_refusal(what: str, model_id: str, exc: BaseException) -> AliceError:
    """The one line for a model that cannot be loaded; one that asks to run code of its own says so."""
    if "custom code" in str(exc) or "trust_remote_code" in str(exc):
        return AliceError(
            f"cannot load {what} model {model_id!r}: it needs code of its own, and ALICE never runs a model's code "
            "(trust_remote_code is off): choose a model whose architecture transformers itself implements"
        )
    return AliceError(f"cannot load {what} model {model_id!r}: {_first_line(exc)}")


def pickle_refusal(what: str, model_id: str, found: str) -> AliceError:
    return AliceError(
        f"cannot load {what} model {model_id!r}: it holds its weights as a pickle ({found}), which ALICE never loads "
        "(unpickling can run code); convert it to safetensors on a machine that trusts the file "
        "(load it there and call model.save_pretrained(folder, safe_serialization=True))"
    )


def _accepted(function: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``batch`` that ``function`` names as parameters (a BERT tokenizer's
    token_type_ids are not CLIP's business)."""
    names = inspect.signature(function).parameters
    return {k: v for k, v in batch.items() if k in names}


class HubBackbone(Backbone):
    """A transformers model with its own processor.

    Subclasses set ``default_model`` and ``processor_class`` and implement ``extract``; options
    ``model`` (a Hub id or a local folder) and ``revision``.
    """

    #: the Hub id used when the recipe names no model (None: the option ``model`` is required)
    default_model: ClassVar[str | None] = None
    #: the transformers Auto class of the processor: AutoTokenizer, AutoImageProcessor, AutoFeatureExtractor
    processor_class: ClassVar[str]

    def __init__(self, model: str | None = None, revision: str | None = None) -> None:
        if model is None and self.default_model is None:
            raise ValueError("option model is required: a Hugging Face Hub id or a local folder")
        self.model_id, self.revision = str(model or self.default_model), revision
        self._model = self._processor = self._config = None

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_id, "revision": self.revision}

    def _what(self) -> str:
        return self.modality if self.modality in KINDS else "transformers"

    def config(self) -> Any:
        """The model's config (enough for ``feature_dim``) without loading its weights."""
        if self._config is None:
            from transformers import AutoConfig

            try:
                self._config = AutoConfig.from_pretrained(self.model_id, revision=self.revision, **NO_REMOTE_CODE)
            except (OSError, ValueError) as exc:
                raise load_refusal(self._what(), self.model_id, exc) from None
        return self._config

    @property
    def feature_dim(self) -> int:
        return int(self.config().hidden_size)

    def _load_processor(self) -> Any:
        import transformers

        return getattr(transformers, self.processor_class).from_pretrained(
            self.model_id, revision=self.revision, **NO_REMOTE_CODE
        )

    def load(self, device: torch.device) -> tuple[Any, Any]:
        """``(model in eval mode on device, its processor)``, built on first use."""
        if self._model is None:
            import transformers
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # ALICE shows its own progress
            hf_logging.set_verbosity_error()  # e.g. "pooler weights newly initialised": unused unless pooling = pooler
            found = pickled_weights(self.model_id)
            if found is not None:
                raise pickle_refusal(self._what(), self.model_id, found)
            try:
                self._processor = self._load_processor()
                self._model = transformers.AutoModel.from_pretrained(
                    self.model_id, revision=self.revision, use_safetensors=True, **NO_REMOTE_CODE
                ).eval()
            except Exception as exc:  # OSError, ValueError, a damaged safetensors file: the model cannot be read
                raise load_refusal(self._what(), self.model_id, exc) from None
        return self._model.to(device), self._processor


class HFBackbone(HubBackbone):
    """Any transformers model with its own processor (``hf``): options ``model`` (a Hub id or a local
    folder), ``pooling``, ``modality`` (which input of a model with several: text, image or audio),
    ``max_length`` (text) and ``revision``. ``pooling = "auto"`` takes the model's own embedding
    function when it has one (CLIP, SigLIP), else ``mean`` for audio and ``cls`` otherwise."""

    name = "hf"
    modality = "any"  # the instance's is its model's: see kind()
    description = "any transformers model with its own processor (text, images or audio); pooling cls, mean, pooler"
    batch_size = 32

    def __init__(
        self,
        model: str | None = None,
        pooling: str = "auto",
        modality: str | None = None,
        max_length: int = 128,
        revision: str | None = None,
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"option pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if modality is not None and modality not in KINDS:
            raise ValueError(f"option modality must be one of {', '.join(KINDS)}, got {modality!r}")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
            raise ValueError(f"option max_length must be an integer of at least 2, got {max_length!r}")
        super().__init__(model, revision)
        self._kind, self._pooling, self.max_length = modality, pooling, max_length

    # ------------------------------------------------------------------ what the model reads, from its config

    def _model_class(self) -> type | None:
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        try:
            return MODEL_MAPPING[type(self.config())]
        except (KeyError, ValueError):
            return None

    def kind(self) -> str:
        """text, image or audio: the option ``modality``, else what the model's architecture takes."""
        if self._kind is None:
            cls = self._model_class()
            towers = [k for k in KINDS if cls is not None and hasattr(cls, f"get_{k}_features")]
            if len(towers) > 1:
                words = {"text": "text", "image": "images", "audio": "audio"}
                raise AliceError(
                    f"model {self.model_id!r} reads {' and '.join(words[t] for t in towers)}: set the backbone option "
                    f"modality to {' or '.join(repr(t) for t in towers)}"
                )
            kind = towers[0] if towers else MAIN_INPUTS.get(getattr(cls, "main_input_name", ""))
            if kind is None:
                raise AliceError(
                    f"cannot tell whether model {self.model_id!r} reads text, images or audio: set the backbone "
                    "option modality"
                )
            self._kind = kind
            self.modality = kind
        return self._kind

    def pooling(self) -> str:
        """cls, mean, pooler or features: the option, or for ``auto`` the model's own features when it has them."""
        if self._pooling in ("auto", "features"):
            cls = self._model_class()
            own = cls is not None and hasattr(cls, f"get_{self.kind()}_features")
            if self._pooling == "features" and not own:
                raise AliceError(
                    f"model {self.model_id!r} has no get_{self.kind()}_features; choose pooling cls, mean or pooler"
                )
            self._pooling = "features" if own else "mean" if self.kind() == "audio" else "cls"
        return self._pooling

    def reads(self, modality: str) -> bool:
        kind = self.kind()
        return modality == kind or modality in ALSO_READS.get(kind, ())

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Each model folder given whose model reads this modality (from its config: no weights), and whose kind
        of input the sample is. A sentence-transformers folder is left to ``sentence-transformers`` when that is
        installed: its own modules (pooling, normalising) read it as it was trained to be used."""
        import importlib.util
        from pathlib import Path

        own = importlib.util.find_spec("sentence_transformers") is not None
        out = []
        for folder in models:
            path = Path(folder)
            if not (path / "config.json").is_file() or (own and (path / "modules.json").is_file()):
                continue
            try:
                backbone = cls(model=str(folder))
                if backbone.reads(modality) and READS_SAMPLE[backbone.kind()](sample):
                    out.append({"model": str(folder)})
            except (AliceError, ValueError):  # not a model transformers knows: not a candidate
                continue
        return out

    @property
    def file_suffixes(self) -> tuple[str, ...]:
        return {"image": IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES}.get(self.kind(), ())

    @property
    def reads_text(self) -> bool:
        return self.kind() == "text"

    @property
    def processor_class(self) -> str:
        return PROCESSORS[self.kind()]

    def read_file(self, path: Path, limits: InputLimits) -> Any:
        return read_media(path, self.kind(), limits)

    def preview(self, item: Any) -> Any:
        kind = self.kind()
        return image_preview(item) if kind == "image" else sound_preview(item) if kind == "audio" else str(item)

    def identity(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "model": self.model_id,
            "revision": self.revision,
            "modality": self.kind(),
            "pooling": self.pooling(),
        }
        return out | ({"max_length": self.max_length} if self.kind() == "text" else {})

    @property
    def feature_dim(self) -> int:
        config = self.config()
        if self.pooling() == "features" and getattr(config, "projection_dim", None):
            return int(config.projection_dim)
        sub = getattr(config, SUB_CONFIGS[self.kind()], None)
        size = getattr(sub if sub is not None else config, "hidden_size", None)
        if size is None:
            raise AliceError(f"model {self.model_id!r}: its config names no hidden_size; choose another pooling")
        return int(size)

    def _load_processor(self) -> Any:
        try:
            return super()._load_processor()
        except (OSError, ValueError, TypeError):  # a processor stored as one AutoProcessor bundle
            import transformers

            bundle = transformers.AutoProcessor.from_pretrained(self.model_id, revision=self.revision, **NO_REMOTE_CODE)
            part = {"text": "tokenizer", "image": "image_processor", "audio": "feature_extractor"}[self.kind()]
            return getattr(bundle, part, bundle)

    # ------------------------------------------------------------------ features

    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        import torch

        kind = self.kind()
        with torch.no_grad():
            if kind == "text":
                return self._text(inputs, device)
            if kind == "image":
                return self._images(inputs, device)
            return self._audio(inputs, device)

    def _tower(self, model: Any) -> Any:
        """The sub-model that reads this kind (CLIP's ``vision_model``), or the model itself."""
        return getattr(model, TOWERS[self.kind()], model) if self.pooling() != "features" else model

    def _run(self, model: Any, batch: dict[str, Any], device: torch.device) -> Any:
        import torch

        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            if self.pooling() == "features":
                function = getattr(model, f"get_{self.kind()}_features")
                out = function(**_accepted(function, batch))
                return out if isinstance(out, torch.Tensor) else out.pooler_output
            tower = self._tower(model)
            return tower(**_accepted(tower.forward, batch))

    def _pooled(self, out: Any, mask: torch.Tensor | None) -> torch.Tensor:
        """One vector per input from the model's output; ``mask`` [n, tokens] marks what is not padding."""
        import torch

        if isinstance(out, torch.Tensor):  # the model's own features
            return out.float()
        pooling = self.pooling()
        if pooling == "pooler":
            if getattr(out, "pooler_output", None) is None:
                raise AliceError(f"model {self.model_id!r} has no pooler output; choose pooling cls or mean")
            return out.pooler_output.float()
        hidden = out.last_hidden_state.float()
        if pooling == "cls":
            return hidden[:, 0]
        if mask is None:
            return hidden.mean(1)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def _text(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        texts = [str(t) for t in inputs]
        if any(not t.strip() for t in texts):
            raise AliceError("empty text given to the text backbone")
        model, tokenizer = self.load(device)
        batch = tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(
            device
        )
        return self._pooled(self._run(model, dict(batch), device), batch.get("attention_mask"))

    def _images(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        model, processor = self.load(device)
        images = [image_preview(i) for i in inputs]
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        return self._pooled(self._run(model, {"pixel_values": pixels}, device), None)

    def _audio(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        import torch

        model, processor = self.load(device)
        rate = int(processor.sampling_rate)
        waves = waveforms(inputs, rate)
        if not getattr(processor, "return_attention_mask", False):
            # models trained without an attention mask (wav2vec2-base) must not see padding: one clip at a time
            return torch.cat([self._clips(model, processor, [w], rate, device) for w in waves])
        return self._clips(model, processor, waves, rate, device)

    def _clips(self, model: Any, processor: Any, waves: list, rate: int, device: torch.device) -> torch.Tensor:
        import torch

        batch = processor(waves, sampling_rate=rate, padding=True, return_attention_mask=True, return_tensors="pt").to(
            device
        )
        tower = self._tower(model)
        main = next(
            (k for k in (tower.main_input_name, "input_values", "input_features") if k in batch), "input_values"
        )
        masked = len(waves) > 1 and "attention_mask" in batch
        args = {main: batch[main]} | ({"attention_mask": batch["attention_mask"]} if masked else {})
        out = self._run(model, args, device)
        if isinstance(out, torch.Tensor) or self.pooling() != "mean" or "attention_mask" not in batch:
            return self._pooled(out, None)
        hidden = out.last_hidden_state
        # the attention mask is per sample; the hidden states are per frame of the convolutional front end
        lengths = batch["attention_mask"].sum(1)
        if hasattr(tower, "_get_feat_extract_output_lengths"):
            lengths = tower._get_feat_extract_output_lengths(lengths)
        frames = lengths.clamp(min=1, max=hidden.shape[1])
        mask = torch.arange(hidden.shape[1], device=device)[None, :] < frames[:, None]
        return self._pooled(out, mask)
