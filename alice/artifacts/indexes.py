"""The search index file: one modality's latents, pinned to the reference and adapter they came from.

An index is one safetensors file, by default ``<reference>/indexes/<modality>-<split>.safetensors``:

- ``embeddings``: ``[n, latent_dim]`` float32, the items' latents E_m(x) on the unit sphere;
- ``labels``: ``[n, classes]`` uint8, the items' labels in the reference vocabulary (optional);
- ``annotated``: ``[classes]`` uint8, the classes that modality annotates;
- ``texts.utf8`` / ``texts.offsets``: the items' text, when the inputs are strings (captions);
- ``pair_ids.utf8`` / ``pair_ids.offsets``: the scene each item shows, when the data set names one;

and one metadata entry, ``alice``, a JSON object naming the reference and adapter it was built
with (their sha256), the data set, the split and the count. Searching with another reference or
a retrained adapter is refused: the latents would not be comparable.

Search is exact (:func:`alice.core.similarity.top_k`): the index is read in blocks of rows
(memory-mapped by safetensors), so a 1M x 512 index is searched without ever holding a 1M-column
similarity matrix or a second copy of the index. ``benchmarks/search.py`` measures the time per query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from alice._version import __version__
from alice.artifacts.layout import INDEX_FOLDER
from alice.core.similarity import BLOCK_ROWS, top_k
from alice.errors import AliceError
from alice.files import atomic_file

INDEX_FORMAT, INDEX_VERSION = "alice.index", 1


def default_index_path(reference_path: Path, modality: str, split: str) -> Path:
    return Path(reference_path) / INDEX_FOLDER / f"{modality}-{split}.safetensors"


# --------------------------------------------------------------------------- strings as tensors


def pack_strings(items: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """UTF-8 bytes of all strings end to end, and ``n + 1`` offsets into them."""
    encoded = [s.encode("utf-8") for s in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return torch.from_numpy(blob), torch.from_numpy(offsets)


def unpack_strings(blob: torch.Tensor, offsets: torch.Tensor) -> list[str]:
    raw, off = blob.numpy().tobytes(), offsets.tolist()
    return [raw[off[i] : off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]


# --------------------------------------------------------------------------- the index


@dataclass
class Index:
    """An index file opened for search; the embeddings stay on disk until a block is read."""

    path: Path
    meta: dict[str, Any]
    count: int
    dim: int
    labels: torch.Tensor | None = None  # [n, classes] uint8
    annotated: torch.Tensor | None = None  # [classes] bool
    texts: list[str] | None = None
    pair_ids: list[str] | None = None
    _embeddings: torch.Tensor | None = field(default=None, repr=False)

    @property
    def modality(self) -> str:
        return str(self.meta.get("modality", "?"))

    @classmethod
    def open(cls, path: str | Path) -> Index:
        """Read the header, labels and strings; refuse a file that is not an ALICE index."""
        path = Path(path)
        if not path.is_file():
            raise AliceError(f"no index at {path}; build one with `alice index build`")
        try:
            with safe_open(str(path), framework="pt") as f:
                raw = (f.metadata() or {}).get("alice")
                keys = set(f.keys())
                if raw is None or "embeddings" not in keys:
                    raise AliceError(f"{path} is not an ALICE index (no 'alice' metadata or no embeddings)")
                shape = f.get_slice("embeddings").get_shape()
                labels = f.get_tensor("labels") if "labels" in keys else None
                annotated = f.get_tensor("annotated").bool() if "annotated" in keys else None
                texts = (
                    unpack_strings(f.get_tensor("texts.utf8"), f.get_tensor("texts.offsets"))
                    if "texts.utf8" in keys
                    else None
                )
                pair_ids = (
                    unpack_strings(f.get_tensor("pair_ids.utf8"), f.get_tensor("pair_ids.offsets"))
                    if "pair_ids.utf8" in keys
                    else None
                )
        except AliceError:
            raise
        except Exception as exc:  # a truncated or foreign file: safetensors says what is wrong
            raise AliceError(
                f"{path} is not a readable index: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError:
            raise AliceError(f"{path}: its 'alice' metadata is not JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise AliceError(
                f"{path} is not an ALICE index (format {meta.get('format') if isinstance(meta, dict) else meta!r})"
            )
        missing = [key for key in ("modality", "reference_sha256", "adapter_sha256") if not meta.get(key)]
        if missing:
            raise AliceError(f"{path}: its metadata names no {missing[0]}; rebuild it with `alice index build`")
        if int(meta.get("format_version", 0)) > INDEX_VERSION:
            raise AliceError(
                f"{path} is index format {meta.get('format_version')}, newer than this ALICE reads "
                f"({INDEX_VERSION}); upgrade alice"
            )
        if len(shape) != 2:
            raise AliceError(f"{path}: embeddings must be [n, d], got shape {shape}")
        n, d = int(shape[0]), int(shape[1])
        for name, value in (("labels", labels), ("texts", texts), ("pair_ids", pair_ids)):
            if value is not None and len(value) != n:
                raise AliceError(f"{path}: {name} has {len(value)} rows for {n} embeddings")
        return cls(path, meta, n, d, labels, annotated, texts, pair_ids)

    def check_against(
        self, reference_sha256: str, adapter_sha256: str | None = None, classes: int | None = None
    ) -> None:
        """Refuse an index built with another reference space, another version of its adapter, or other labels."""
        built = str(self.meta.get("reference_sha256", ""))
        if built != reference_sha256:
            raise AliceError(
                f"index {self.path} was built against reference {built[:12] or '?'}…, not this one "
                f"({reference_sha256[:12]}…); rebuild it"
            )
        if adapter_sha256 is not None and self.meta.get("adapter_sha256") != adapter_sha256:
            raise AliceError(
                f"index {self.path} was built with another {self.modality!r} adapter than the one in this reference; "
                "rebuild it"
            )
        if classes is not None:
            for name, width in (
                ("labels", None if self.labels is None else self.labels.shape[1]),
                ("annotated", None if self.annotated is None else self.annotated.shape[0]),
            ):
                if width is not None and width != classes:
                    raise AliceError(
                        f"index {self.path}: {name} cover {width} classes, the reference vocabulary has {classes}"
                    )

    def blocks(self, rows: int = BLOCK_ROWS) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first row, embeddings[first : first + rows])``, read from the memory-mapped file."""
        if self._embeddings is not None:
            for lo in range(0, self.count, rows):
                yield lo, self._embeddings[lo : lo + rows]
            return
        with safe_open(str(self.path), framework="pt") as f:
            sl = f.get_slice("embeddings")
            for lo in range(0, self.count, rows):
                yield lo, sl[lo : min(lo + rows, self.count)]

    def load(self) -> Index:
        """Hold the embeddings in memory (for many queries in one process); returns self."""
        with safe_open(str(self.path), framework="pt") as f:
            self._embeddings = f.get_tensor("embeddings")
        return self

    def search(
        self, queries: torch.Tensor, k: int = 10, block_rows: int = BLOCK_ROWS
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """See :func:`top_k`."""
        if queries.shape[-1] != self.dim:
            raise AliceError(f"queries have {queries.shape[-1]} dimensions, index {self.path} holds {self.dim}")
        return top_k(queries, self.blocks(block_rows), k)

    def label_names(self, row: int, vocabulary: Sequence[str]) -> list[str]:
        if self.labels is None:
            return []
        return [vocabulary[c] for c in torch.nonzero(self.labels[row]).flatten().tolist()]


def write_index(
    path: Path,
    embeddings: torch.Tensor,
    meta: dict[str, Any],
    labels: torch.Tensor | None = None,
    annotated: np.ndarray | torch.Tensor | None = None,
    texts: Sequence[str] | None = None,
    pair_ids: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an index file atomically: a partial file beside it, renamed into place when complete."""
    path = Path(path)
    if path.is_dir():
        raise AliceError(f"{path} is a folder; give the index a file name (….safetensors)")
    if path.exists() and not overwrite:
        raise AliceError(f"{path} already exists; pass --overwrite to replace it")
    tensors: dict[str, torch.Tensor] = {"embeddings": embeddings.detach().to("cpu", torch.float32).contiguous()}
    if labels is not None:
        tensors["labels"] = (torch.as_tensor(labels).detach().cpu() > 0.5).to(torch.uint8).contiguous()
    if annotated is not None:
        tensors["annotated"] = torch.as_tensor(np.asarray(annotated, dtype=bool)).to(torch.uint8)
    for name, strings in (("texts", texts), ("pair_ids", pair_ids)):
        if strings is not None:
            tensors[f"{name}.utf8"], tensors[f"{name}.offsets"] = pack_strings([str(s) for s in strings])
    header = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_VERSION,
        "alice_version": __version__,
        **meta,
        "count": int(embeddings.shape[0]),
        "latent_dim": int(embeddings.shape[1]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"alice": json.dumps(header, sort_keys=True)})
    return path
