"""The search index file: one adapter's latents, pinned to the reference and adapter they came from.

An index is one safetensors file, by default ``<reference>/indexes/<adapter>-<split>.safetensors``:

- ``embeddings``: ``[n, latent_dim]`` float32, the items' latents E_m(x) on the unit sphere;
- ``labels``: ``[n, classes]`` uint8, the items' labels in the reference vocabulary (optional);
- ``annotated``: ``[classes]`` uint8, the classes that modality annotates;
- ``texts.utf8`` / ``texts.offsets``: the items' text, when the inputs are texts (captions);
- ``files.utf8`` / ``files.offsets``: the items' files, when the inputs are file paths (an image folder),
  which a server or a report shows as the picture or sound they are;
- ``pair_ids.utf8`` / ``pair_ids.offsets``: the scene each item shows, when the data set names one;

and one metadata entry, ``alice``, a JSON object naming the reference and adapter it was built
with (their sha256), the data set, the split and the count. Searching with another reference or
a retrained adapter is refused: the latents would not be comparable.

Search is exact by default (:func:`alice.core.similarity.top_k`): the index is read in blocks of
rows (memory-mapped by safetensors), so a 1M x 512 index is searched without ever holding a
1M-column similarity matrix or a second copy of the index. ``benchmarks/search.py`` measures the
time per query. An index built with ``kind="ivf"`` or ``"hnsw"`` also holds an approximate FAISS
index (``ann.faiss``, see :mod:`alice.search.ann`), which ``search`` uses unless asked for exact
results. The header alone (no tensor) is read and checked by
:class:`alice.search.header.IndexHeader`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from alice._version import __version__
from alice.artifacts.format.layout import INDEX_FOLDER
from alice.config.search import KINDS, STREAMED_KINDS, AnnSpec
from alice.core.similarity import BLOCK_ROWS, top_k
from alice.errors import AliceError
from alice.files import atomic_file, sha256_remembered
from alice.search import ann
from alice.search.header import INDEX_FORMAT, INDEX_VERSION, IndexHeader


def default_index_path(reference_path: Path, modality: str, split: str) -> Path:
    return Path(reference_path) / INDEX_FOLDER / f"{modality}-{split}.safetensors"


#: how an index file is pinned to its sha256 on the command line (Docker's image@sha256:... pin)
PIN = "@sha256:"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def split_pin(target: str | Path) -> tuple[Path, str | None]:
    """``FILE@sha256:HEX`` -> ``(FILE, HEX)``: an index pinned to the sha256 `alice index build` printed; a plain
    path -> ``(path, None)``."""
    text = str(target)
    if PIN not in text:
        return Path(text), None
    path, _, digest = text.rpartition(PIN)
    digest = digest.strip().lower()
    if not path or not _HEX64.match(digest):
        raise AliceError(f"a pinned index is FILE{PIN}<the 64 hex digits `alice index build` printed>, got {text!r}")
    return Path(path), digest


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
class Index(IndexHeader):
    """An index file opened for search; the embeddings stay on disk until a block is read."""

    labels: torch.Tensor | None = None  # [n, classes] uint8
    annotated: torch.Tensor | None = None  # [classes] bool
    texts: list[str] | None = None
    files: list[str] | None = None
    pair_ids: list[str] | None = None
    _embeddings: torch.Tensor | None = field(default=None, repr=False)
    _ann: Any = field(default=None, repr=False)  # the FAISS index, read on first approximate search

    @classmethod
    def open(cls, path: str | Path, sha256: str | None = None, source: str = "its pin") -> Index:
        """Read the header, labels and strings; refuse a file that is not an ALICE index.

        ``sha256``: the file's expected sha256 (from ``source``: ``space.json``, a pin), checked before any of its
        bytes is read (remembered per version of the file: :func:`alice.files.sha256_remembered`).
        """
        if sha256 is not None and Path(path).is_file():
            found = sha256_remembered(Path(path))
            if found != sha256:
                raise AliceError(
                    f"{path} does not match the sha256 in {source} (expected {sha256[:12]}…, found {found[:12]}…): "
                    "the index was changed or damaged; rebuild it"
                )
        header = IndexHeader.read(path)
        path = header.path
        try:
            with safe_open(str(path), framework="pt") as f:
                keys = set(f.keys())
                labels = f.get_tensor("labels") if "labels" in keys else None
                annotated = f.get_tensor("annotated").bool() if "annotated" in keys else None
                texts, files, pair_ids = (
                    unpack_strings(f.get_tensor(f"{name}.utf8"), f.get_tensor(f"{name}.offsets"))
                    if f"{name}.utf8" in keys
                    else None
                    for name in ("texts", "files", "pair_ids")
                )
        except Exception as exc:  # a truncated or foreign file: safetensors says what is wrong
            raise AliceError(
                f"{path} is not a readable index: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        if header.kind not in KINDS:
            raise AliceError(
                f"{path} holds an index of kind {header.kind!r}, which this ALICE does not know; upgrade alice"
            )
        if header.kind != "exact" and ann.ANN_TENSOR not in keys:
            raise AliceError(f"{path} says it holds a {header.kind} index but has no {ann.ANN_TENSOR!r}; rebuild it")
        fields = {name: getattr(header, name) for name in IndexHeader.__dataclass_fields__}
        return cls(**fields, labels=labels, annotated=annotated, texts=texts, files=files, pair_ids=pair_ids)

    def blocks(self, rows: int = BLOCK_ROWS) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first row, embeddings[first : first + rows])``, read from the memory-mapped file."""
        if self._embeddings is not None:
            for lo in range(0, self.count, rows):
                yield lo, self._embeddings[lo : lo + rows]
            return
        with safe_open(str(self.path), framework="pt") as f:
            sl = f.get_slice("embeddings")
            for lo in range(0, self.count, rows):
                yield lo, sl[lo : min(lo + rows, self.count)].float()  # float16 rows (kind ivfpq) scored as float32

    def load(self) -> Index:
        """Hold the embeddings (and an approximate index) in memory, for many queries in one process; returns self.

        An index written streamed (kind ivfpq) keeps its embeddings on disk: only its FAISS index is loaded.
        """
        if self.kind not in STREAMED_KINDS:
            with safe_open(str(self.path), framework="pt") as f:
                self._embeddings = f.get_tensor("embeddings")
        self.approximate()
        return self

    def approximate(self) -> Any:
        """The FAISS index (None for an exact index), read and checked against its sha256 on first use."""
        if self.kind == "exact":
            return None
        if self._ann is None:
            with safe_open(str(self.path), framework="numpy") as f:
                blob = f.get_tensor(ann.ANN_TENSOR)
            self._ann = ann.load(blob, self.meta.get("ann", {}), str(self.path), self.kind, self.count, self.dim)
        return self._ann

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The embeddings of some rows ``[len(ids), d]``: from memory, or read from the file where they lie."""
        if self._embeddings is not None:
            return self._embeddings.numpy()[ids]
        if self.embeddings_offset is None:  # not float32 or float16 on disk (never written so): read it whole
            with safe_open(str(self.path), framework="pt") as f:
                return f.get_tensor("embeddings").float().numpy()[ids]
        dtype = np.float16 if self.embeddings_dtype == "F16" else np.float32
        mapped = np.memmap(
            self.path, dtype=dtype, mode="r", offset=self.embeddings_offset, shape=(self.count, self.dim)
        )
        return np.asarray(mapped[np.asarray(ids)], dtype=np.float32)

    def search(
        self,
        queries: torch.Tensor,
        k: int = 10,
        block_rows: int = BLOCK_ROWS,
        exact: bool = False,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The top ``k`` items by inner product ``(scores [q, k], rows [q, k])``, best first (see :func:`top_k`).

        An approximate index (``kind`` ivf or hnsw) answers through FAISS unless ``exact``;
        ``nprobe`` (ivf) and ``ef_search`` (hnsw) override the settings it was built with.
        """
        if queries.shape[-1] != self.dim:
            raise AliceError(f"queries have {queries.shape[-1]} dimensions, index {self.path} holds {self.dim}")
        if exact or self.kind == "exact":
            return top_k(queries, self.blocks(block_rows), k)
        q = queries.detach().to("cpu", torch.float32).reshape(-1, self.dim).numpy()
        scores, rows = ann.search(
            self.approximate(), self.kind, q, min(k, self.count), self.rows, self.meta.get("ann", {}), nprobe, ef_search
        )
        keep = rows >= 0  # a tiny index may give fewer candidates than k: drop the empty places
        width = int(keep.sum(axis=1).min()) if len(keep) else 0
        return torch.from_numpy(scores[:, :width]), torch.from_numpy(rows[:, :width])

    def label_names(self, row: int, vocabulary: Sequence[str]) -> list[str]:
        if self.labels is None:
            return []
        return [vocabulary[c] for c in torch.nonzero(self.labels[row]).flatten().tolist()]


def index_extras(
    labels: torch.Tensor | None = None,
    annotated: np.ndarray | torch.Tensor | None = None,
    texts: Sequence[str] | None = None,
    pair_ids: Sequence[str] | None = None,
    files: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """The tensors an index file holds beside its embeddings: labels, the annotated classes, and the strings."""
    tensors: dict[str, torch.Tensor] = {}
    if labels is not None:
        tensors["labels"] = (torch.as_tensor(labels).detach().cpu() > 0.5).to(torch.uint8).contiguous()
    if annotated is not None:
        tensors["annotated"] = torch.as_tensor(np.asarray(annotated, dtype=bool)).to(torch.uint8)
    for name, strings in (("texts", texts), ("files", files), ("pair_ids", pair_ids)):
        if strings is not None:
            tensors[f"{name}.utf8"], tensors[f"{name}.offsets"] = pack_strings([str(s) for s in strings])
    return tensors


def write_index(
    path: Path,
    embeddings: torch.Tensor,
    meta: dict[str, Any],
    labels: torch.Tensor | None = None,
    annotated: np.ndarray | torch.Tensor | None = None,
    texts: Sequence[str] | None = None,
    pair_ids: Sequence[str] | None = None,
    overwrite: bool = False,
    approximate: AnnSpec | None = None,
    files: Sequence[str] | None = None,
) -> Path:
    """Write an index file atomically: a partial file beside it, renamed into place when complete.

    ``approximate`` (kind ivf or hnsw) also builds a FAISS index of the embeddings into the file.
    ``texts`` are the items' texts, ``files`` the paths of the files they were read from (one or neither).
    """
    path = Path(path)
    if path.is_dir():
        raise AliceError(f"{path} is a folder; give the index a file name (….safetensors)")
    if path.exists() and not overwrite:
        raise AliceError(f"{path} already exists; pass --overwrite to replace it")
    spec = approximate or AnnSpec()
    spec.check()
    tensors: dict[str, torch.Tensor] = {"embeddings": embeddings.detach().to("cpu", torch.float32).contiguous()}
    tensors.update(index_extras(labels, annotated, texts, pair_ids, files))
    header = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_VERSION,
        "alice_version": __version__,
        **meta,
        "count": int(embeddings.shape[0]),
        "latent_dim": int(embeddings.shape[1]),
    }
    if spec.kind != "exact":
        built = ann.build(tensors["embeddings"].numpy(), spec)
        tensors[ann.ANN_TENSOR] = torch.from_numpy(built.blob)
        header.update(kind=spec.kind, ann=built.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "index") as tmp:
        save_file(tensors, str(tmp), metadata={"alice": json.dumps(header, sort_keys=True)})
    return path
