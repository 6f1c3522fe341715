"""``sentence-transformers``: any sentence-transformers model, by Hub name or local folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alice.plugin import AliceError, Backbone
from alice_plugins.hub import load_refusal, pickle_refusal, pickled_weights
from alice_plugins.media import are_texts

if TYPE_CHECKING:
    import torch


def cached_sentence_models() -> list[str]:
    """The snapshot folders of the sentence-transformers models in the local Hugging Face cache."""
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return []
    out = []
    for repo in sorted(Path(HF_HUB_CACHE).glob("models--*")):
        ref = repo / "refs" / "main"
        snapshots = sorted((repo / "snapshots").glob("*"))
        snapshot = repo / "snapshots" / ref.read_text().strip() if ref.is_file() else (snapshots or [repo])[-1]
        if (snapshot / "modules.json").is_file():
            out.append(str(snapshot))
    return out


class SentenceTransformersBackbone(Backbone):
    """A sentence-transformers model: its own modules (transformer, pooling, and any dense or normalise layer)
    turn a text into one vector. ``model`` is a Hub name or a local folder (the offline MiniLM package's
    folder is one); ``normalize`` scales every vector to length 1 (on top of any Normalize module)."""

    name = "sentence-transformers"
    modality = "text"
    reads_text = True
    description = "any sentence-transformers model (Hub name or local folder)"
    batch_size = 64

    def __init__(self, model: str | None = None, normalize: bool = False, revision: str | None = None) -> None:
        if not model or not isinstance(model, str):
            raise ValueError("option model is required: a sentence-transformers Hub name or a local folder")
        if not isinstance(normalize, bool):
            raise ValueError(f"option normalize must be true or false, got {normalize!r}")
        self.model_id, self.normalize, self.revision = model, normalize, revision
        self._model = None

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_id, "normalize": self.normalize, "revision": self.revision}

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Texts: each sentence-transformers folder given, and each sentence-transformers model already in the
        local Hugging Face cache (its snapshot folder: nothing is downloaded)."""
        import importlib.util

        if (
            modality != cls.modality
            or not are_texts(sample)
            or importlib.util.find_spec("sentence_transformers") is None
        ):
            return []
        folders = [str(m) for m in models if (Path(m) / "modules.json").is_file()]
        return [{"model": f} for f in dict.fromkeys(folders + cached_sentence_models())]

    def load(self) -> Any:
        if self._model is None:
            import logging

            from sentence_transformers import SentenceTransformer

            logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
            found = pickled_weights(self.model_id)
            if found is not None:
                raise pickle_refusal("sentence-transformers", self.model_id, found)
            try:
                self._model = SentenceTransformer(
                    self.model_id,
                    device="cpu",
                    revision=self.revision,
                    trust_remote_code=False,  # no code from the model's folder or repository is run
                    model_kwargs={"use_safetensors": True},
                ).eval()
            except Exception as exc:  # OSError, ValueError, HTTP errors: the model cannot be found or read
                raise load_refusal("sentence-transformers", self.model_id, exc) from None
        return self._model

    @property
    def feature_dim(self) -> int:
        model = self.load()
        dim = getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)()
        if not dim:
            raise AliceError(f"sentence-transformers model {self.model_id!r} does not say its embedding size")
        return int(dim)

    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        import torch

        texts = [str(t) for t in inputs]
        if any(not t.strip() for t in texts):
            raise AliceError("empty text given to the text backbone")
        model = self.load().to(device)
        with torch.no_grad():
            out = model.encode(
                texts,
                batch_size=len(texts),
                convert_to_tensor=True,
                normalize_embeddings=self.normalize,
                show_progress_bar=False,
                device=str(device),
            )
        return out.float()
