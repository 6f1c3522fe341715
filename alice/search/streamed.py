"""Streamed index builds: past one machine's memory, latents arrive in chunks and never sit in memory together.

An ``ivfpq`` index is the same safetensors file as every index (:mod:`alice.search.indexes`), written
as the latents stream in:

- ``embeddings`` ``[n, d]`` are float16 (half of float32), written chunk by chunk straight to the file after
  a header of fixed size, which is filled in last (safetensors allows a header padded with spaces);
- ``ann.faiss`` is an IVF-PQ FAISS index (optionally behind an OPQ rotation): each item kept as ``pq``
  one-byte codes (64 bytes for a 512-d item, a sixteenth of float32), sorted into ``nlist`` clusters.

The build takes two passes over the file it is writing, never over the source: the first writes the
float16 rows and keeps a uniform sample of them (random keys, the smallest kept) on which the clusters
and codebooks are trained; the second reads the rows back in chunks (plain reads, not a memory map, so
they stay in the page cache and out of the process) and adds them to the FAISS index, while scoring
the recall queries (a sample of the items) exactly against every chunk. Memory: the sample, one chunk,
and the codes (``n * (pq + 8)`` bytes), whatever ``n`` is.

A query reads ``rerank * k`` candidates from the codes and re-scores them exactly against their float16
rows, read from the file where they lie (a memory map of those rows only): scores are exact inner
products of the stored rows, only the candidate set is approximate. ``benchmarks/streamed.py``
measures it at 10M items.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from alice import console
from alice._version import __version__
from alice.config.search import AnnSpec
from alice.errors import AliceError
from alice.files import atomic_file
from alice.search import ann
from alice.search.header import INDEX_FORMAT, INDEX_VERSION

#: bytes kept for the safetensors header before the data (a multiple of 8: the rows start aligned)
HEADER_BYTES = 1 << 16
#: rows read back from the file at once while the FAISS index is filled
READ_ROWS = 8_192
#: items per cluster that train the clusters and codebooks (FAISS wants 39 to 256), and at least this many in all
TRAIN_PER_LIST, TRAIN_AT_LEAST = 64, 65_536


def factory_string(spec: AnnSpec, dim: int, count: int) -> str:
    """``IVF<nlist>,PQ<pq>``, behind ``OPQ<pq>`` when asked."""
    nlist = spec.nlist or ann.default_nlist(count)
    return f"{f'OPQ{spec.pq},' if spec.opq else ''}IVF{nlist},PQ{spec.pq}"


class _Sample:
    """A uniform sample without replacement of the rows seen, ``size`` at most: each row gets a random key, the
    rows of the smallest keys are kept. The sample is one array filled in place: a chunk costs a copy of the
    rows it brings in, never of the sample."""

    def __init__(self, size: int, dim: int, seed: int) -> None:
        self.size, self.rng, self.filled = size, np.random.default_rng(seed), 0
        self._rows = np.empty((size, dim), dtype=np.float32)
        self._keys = np.empty(size)
        self._ids = np.empty(size, dtype=np.int64)

    @property
    def rows(self) -> np.ndarray:
        return self._rows[: self.filled]

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.filled]

    def smallest(self, k: int) -> np.ndarray:
        """Slots of the ``k`` smallest keys: a uniform sample of the items too (the recall queries)."""
        keys = self._keys[: self.filled]
        return np.sort(np.argpartition(keys, k - 1)[:k]) if 0 < k < self.filled else np.arange(min(k, self.filled))

    def add(self, first: int, chunk: np.ndarray) -> None:
        keys = self.rng.random(len(chunk))
        free = min(self.size - self.filled, len(chunk))  # empty slots take the first rows as they come
        if free:
            end = self.filled + free
            self._rows[self.filled : end], self._keys[self.filled : end] = chunk[:free], keys[:free]
            self._ids[self.filled : end] = np.arange(first, first + free)
            self.filled = end
        if free == len(chunk):
            return
        rest = np.arange(free, len(chunk))
        rest = rest[keys[rest] < self._keys.max()]  # only rows whose key beats the largest kept can enter
        if not len(rest):
            return
        both = np.concatenate([self._keys, keys[rest]])
        keep = np.argpartition(both, self.size - 1)[: self.size]
        entering = rest[keep[keep >= self.size] - self.size]
        leaving = np.setdiff1d(np.arange(self.size), keep[keep < self.size], assume_unique=True)
        self._rows[leaving], self._keys[leaving] = chunk[entering], keys[entering]
        self._ids[leaving] = first + entering


def _tensor_bytes(array: np.ndarray) -> tuple[str, bytes]:
    codes = {np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64", np.dtype(np.float32): "F32"}
    return codes[array.dtype], np.ascontiguousarray(array).tobytes()


def write_streamed(
    path: Path,
    chunks: Iterable[np.ndarray],
    count: int,
    meta: dict[str, Any],
    spec: AnnSpec,
    extra: dict[str, np.ndarray] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an ``ivfpq`` index file of ``count`` latents that ``chunks`` yields (float arrays ``[rows, d]``, unit
    rows), atomically: nothing is left at ``path`` unless the whole file was written.

    ``extra``: the small tensors an index file may hold beside its embeddings (``labels``, ``annotated``,
    ``texts.utf8``/``texts.offsets``, ...), as uint8 or int64 arrays. ``meta``: the ``alice`` metadata (modality,
    split, the reference and adapter sha256 the latents came from).
    """
    spec.check()
    if spec.kind != "ivfpq":
        raise AliceError(f"a streamed index is of kind ivfpq, not {spec.kind!r}")
    if count < 1:
        raise AliceError("an approximate index needs at least one item")
    path = Path(path)
    if path.is_dir():
        raise AliceError(f"{path} is a folder; give the index a file name (….safetensors)")
    if path.exists() and not overwrite:
        raise AliceError(f"{path} already exists; pass --overwrite to replace it")
    faiss = ann.faiss_module()
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with atomic_file(path, "index") as tmp, open(tmp, "w+b") as f:
        f.write(b"\0" * HEADER_BYTES)
        nlist = spec.nlist or ann.default_nlist(count)
        dim, written = _write_rows(f, chunks, count, min(count, max(TRAIN_PER_LIST * nlist, TRAIN_AT_LEAST)), spec)
        factory = factory_string(spec, dim.dim, count)
        if spec.pq < 1 or dim.dim % spec.pq:
            raise AliceError(f"--pq {spec.pq} must divide the latent size {dim.dim} (e.g. {dim.dim // 8})")
        index = faiss.index_factory(dim.dim, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        # 64 items per codebook entry train the codes as well as FAISS's default 256 (the candidates are re-scored
        # exactly), at a quarter of the cost: small k-means is slow per flop
        ivf.pq.cp.max_points_per_centroid = TRAIN_PER_LIST
        ivf.do_polysemous_training = False  # minutes of annealing for Hamming filtering, which search does not use
        if len(dim.sample.rows) < nlist:
            raise AliceError(f"{count} items cannot fill {nlist} clusters; pass a smaller --nlist")
        console.info(f"training {factory} on {len(dim.sample.rows):,} of {count:,} items")
        index.train(dim.sample.rows)
        pick = dim.sample.smallest(spec.recall_queries)
        queries, own = dim.sample.rows[pick], dim.sample.ids[pick]
        dim.sample = None  # the codes are trained: the sample's memory goes back before the items are added
        truth = _Running(len(queries), 11)
        with console.progress(f"adding {count:,} items to {factory}", count) as bar:
            for lo, rows in read_rows(f, HEADER_BYTES, count, dim.dim):
                index.add(rows)
                if len(queries):
                    truth.update(queries @ rows.T, lo)
                bar.advance(len(rows))
        seconds = time.perf_counter() - started
        blob = faiss.serialize_index(index)
        settings: dict[str, Any] = {
            "factory": factory,
            "metric": "inner_product",
            "nlist": nlist,
            "nprobe": spec.nprobe,
            "pq": spec.pq,
            "opq": spec.opq,
            "rerank": spec.rerank,
            "store": "float16",
            "faiss_version": faiss.__version__,
            "build_seconds": round(seconds, 1),
            "sha256": hashlib.sha256(memoryview(blob)).hexdigest(),
            "bytes": int(blob.nbytes),
        }
        if len(queries):
            mapped = np.memmap(f, dtype=np.float16, mode="r", offset=HEADER_BYTES, shape=(count, dim.dim))
            _, found = ann.search(index, "ivfpq", queries, 11, lambda ids: mapped[ids].astype(np.float32), settings)
            hits = []
            for me, exact, got in zip(own.tolist(), truth.ids, found):
                want = [r for r in exact.tolist() if r != me][:10]
                hits.append(len(set(want) & {r for r in got.tolist() if r != me}) / max(1, len(want)))
            del mapped
            settings["recall_at_10"] = round(float(np.mean(hits)), 4)
            settings["recall_queries"] = len(queries)
        header = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_VERSION,
            "alice_version": __version__,
            **meta,
            "count": int(count),
            "latent_dim": int(dim.dim),
            "kind": "ivfpq",
            "ann": settings,
        }
        tensors = {"embeddings": {"dtype": "F16", "shape": [count, dim.dim], "data_offsets": [0, written]}}
        end = written
        f.seek(HEADER_BYTES + written)
        for name, array in {**(extra or {}), ann.ANN_TENSOR: blob}.items():
            array = np.asarray(array)  # torch tensors (alice.search.indexes.index_extras) too
            dtype, raw = _tensor_bytes(array)
            f.write(raw)
            tensors[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [end, end + len(raw)]}
            end += len(raw)
        del blob
        tensors["__metadata__"] = {"alice": json.dumps(header, sort_keys=True)}  # type: ignore[assignment]
        text = json.dumps(tensors, separators=(",", ":")).encode("utf-8")
        if len(text) > HEADER_BYTES - 8:
            raise AliceError(f"the index's header needs {len(text)} bytes, more than the {HEADER_BYTES - 8} kept")
        f.seek(0)
        f.write(len(text + b" " * (HEADER_BYTES - 8 - len(text))).to_bytes(8, "little"))
        f.write(text + b" " * (HEADER_BYTES - 8 - len(text)))
        f.flush()
    return path


class _Rows:
    """What the first pass learnt: the latent size and the training sample."""

    def __init__(self) -> None:
        self.dim = 0
        self.sample: _Sample | None = None


def _write_rows(f: Any, chunks: Iterable[np.ndarray], count: int, train: int, spec: AnnSpec) -> tuple[Any, int]:
    """Write the rows as float16 after the header, keeping a training sample; ``(facts, bytes written)``."""
    facts = _Rows()
    seen = 0
    with console.progress(f"writing {count:,} latents", count) as bar:
        for chunk in chunks:
            chunk = np.asarray(chunk)
            if chunk.ndim != 2 or not len(chunk):
                raise AliceError(f"latents come as [rows, dimensions] chunks, got shape {list(chunk.shape)}")
            if facts.sample is None:
                facts.dim = int(chunk.shape[1])
                facts.sample = _Sample(train, facts.dim, spec.seed)
            if chunk.shape[1] != facts.dim:
                raise AliceError(f"latents of {chunk.shape[1]} dimensions after ones of {facts.dim}")
            if seen + len(chunk) > count:
                raise AliceError(f"the latents number more than the {count:,} announced")
            if not np.isfinite(chunk).all():
                raise AliceError(f"latents {seen} to {seen + len(chunk) - 1} hold NaN or infinite values")
            f.write(np.ascontiguousarray(chunk, dtype=np.float16).tobytes())
            facts.sample.add(seen, chunk)
            seen += len(chunk)
            bar.advance(len(chunk))
    if seen != count:
        raise AliceError(f"the latents number {seen:,}, not the {count:,} announced")
    return facts, seen * facts.dim * 2


def read_rows(f: Any, offset: int, count: int, dim: int, rows: int = READ_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, float32 rows)`` of a float16 ``[count, dim]`` block of an open file, by plain reads."""
    for lo in range(0, count, rows):
        m = min(rows, count - lo)
        f.seek(offset + lo * dim * 2)
        raw = f.read(m * dim * 2)
        if len(raw) != m * dim * 2:
            raise AliceError(f"{getattr(f, 'name', 'the index')} ends inside its embeddings")
        yield lo, np.frombuffer(raw, dtype=np.float16).reshape(m, dim).astype(np.float32)


class _Running:
    """The best ``k`` (score, row) per query over chunks scored one after another: an exact streamed scan."""

    def __init__(self, queries: int, k: int) -> None:
        self.k = k
        self.scores = np.full((queries, 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((queries, 0), dtype=np.int64)

    def update(self, scores: np.ndarray, first: int) -> None:
        if scores.shape[1] > self.k:  # the chunk's own best k first: the merge then sorts 2k per query
            best = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
            scores, ids = np.take_along_axis(scores, best, 1), best + first
        else:
            ids = np.broadcast_to(np.arange(first, first + scores.shape[1]), scores.shape)
        s = np.concatenate([self.scores, scores], axis=1)
        i = np.concatenate([self.ids, ids], axis=1)
        keep = np.argsort(-s, axis=1, kind="stable")[:, : self.k]
        self.scores, self.ids = np.take_along_axis(s, keep, 1), np.take_along_axis(i, keep, 1)
