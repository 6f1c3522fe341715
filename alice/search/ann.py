"""Approximate nearest neighbours with FAISS, kept inside an index file as bytes (never pickle).

Exact search reads every item per query: 267 ms at 1M x 512 on two cores, the memory bandwidth
over 2 GB. An approximate index reads a small part. ``alice index build --kind ivf|hnsw`` builds
one from the same embeddings an exact index holds and stores it in the same safetensors file, as
the bytes :func:`faiss.serialize_index` gives (a ``uint8`` tensor ``ann.faiss``), with its sha256
and settings in the file's metadata; the file stays pinned to the reference and adapter it was
built with like any index.

Two kinds, both over 8-bit scalar-quantised copies of the vectors (512 bytes per 512-d item,
a quarter of float32):

- ``ivf``: the items sorted into ``nlist`` clusters (k-means on a sample); a query scans the
  ``nprobe`` clusters nearest to it;
- ``hnsw``: a navigable small-world graph (Malkov & Yashunin 2018), ``hnsw_m`` links per node;
  a query walks it keeping ``ef_search`` candidates.

Either returns ``rerank * k`` candidates, which are re-scored exactly against the float32
embeddings (the ones exact search uses) and the best ``k`` kept: the scores are exact inner
products, only the candidate set is approximate. Building measures recall@10 against exact search
on a sample of the items and stores it in the metadata (``alice index list`` shows it).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from alice import console
from alice.config.search import STREAMED_KINDS, AnnSpec
from alice.errors import AliceError

#: the tensor holding the serialised FAISS index
ANN_TENSOR = "ann.faiss"
#: rows added to the FAISS index at once (bounds the temporary copies)
ADD_ROWS = 100_000

if TYPE_CHECKING:  # numpy and FAISS are imported when an index is built or searched
    import numpy as np


def faiss_module() -> Any:
    try:
        import faiss
    except ImportError:
        raise AliceError("approximate indexes need FAISS: pip install faiss-cpu") from None
    return faiss


def default_nlist(n: int) -> int:
    """About 4 sqrt(n) clusters, with at least 39 training items each (FAISS's own lower bound)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def factory_string(spec: AnnSpec, n: int) -> str:
    if spec.kind == "ivf":
        return f"IVF{spec.nlist or default_nlist(n)},SQ8"
    return f"HNSW{spec.hnsw_m},SQ8"


@dataclass
class BuiltAnn:
    """A serialised FAISS index and what the index file's metadata says of it."""

    blob: np.ndarray  # uint8
    settings: dict[str, Any]


def build(embeddings: np.ndarray, spec: AnnSpec) -> BuiltAnn:
    """Build the approximate index of ``embeddings`` ``[n, d]`` (float32, unit rows) and measure its recall@10."""
    import numpy as np

    spec.check()
    if spec.kind in STREAMED_KINDS:
        raise AliceError(f"a {spec.kind} index is written streamed (alice.search.streamed.write_streamed)")
    faiss = faiss_module()
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, d = x.shape
    if n == 0:
        raise AliceError("an approximate index needs at least one item")
    factory = factory_string(spec, n)
    started = time.perf_counter()
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(spec.seed)
    if spec.kind == "ivf":
        nlist = faiss.extract_index_ivf(index).nlist
        sample = x[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
    else:
        index.hnsw.efConstruction = spec.ef_construction
        sample = x[np.sort(rng.choice(n, min(n, 100_000), replace=False))]
    console.info(f"training {factory} on {len(sample):,} of {n:,} items")
    index.train(sample)
    with console.progress(f"adding {n:,} items to {factory}", n) as bar:
        for lo in range(0, n, ADD_ROWS):
            index.add(x[lo : lo + ADD_ROWS])
            bar.advance(min(ADD_ROWS, n - lo))
    seconds = time.perf_counter() - started
    blob = faiss.serialize_index(index)
    settings: dict[str, Any] = {
        "factory": factory,
        "metric": "inner_product",
        **{k: v for k, v in asdict(spec).items() if k not in ("kind", "recall_queries", "seed")},
        "nlist": faiss.extract_index_ivf(index).nlist if spec.kind == "ivf" else 0,
        "faiss_version": faiss.__version__,
        "build_seconds": round(seconds, 1),
        "sha256": hashlib.sha256(memoryview(blob)).hexdigest(),
        "bytes": int(blob.nbytes),
    }
    if spec.recall_queries:
        queries = np.sort(rng.choice(n, min(n, spec.recall_queries), replace=False))
        settings["recall_at_10"] = round(
            recall_at_k(x, queries, lambda q, k: search(index, spec.kind, q, k, lambda rows: x[rows], settings)), 4
        )
        settings["recall_queries"] = int(len(queries))
    return BuiltAnn(blob, settings)


def load(blob: np.ndarray, settings: dict[str, Any], where: str, kind: str, count: int, dim: int) -> Any:
    """The FAISS index from its bytes, after checking them against the sha256 the metadata holds, and checked
    (:func:`check_loaded`) against the ``count`` items of ``dim`` dimensions the file's embeddings hold.

    The sha256 in the metadata catches damage, not an edit: whoever rewrites the bytes can rewrite it. The index
    file as a whole is checked against ``space.json`` or a pin before this is reached
    (:func:`alice.search.query.open_index`); every index is checked after loading, whatever its provenance.
    """
    import numpy as np

    faiss = faiss_module()
    if hashlib.sha256(memoryview(np.ascontiguousarray(blob))).hexdigest() != settings.get("sha256"):
        raise AliceError(f"{where}: its FAISS index does not match the sha256 in its metadata; rebuild it")
    try:
        index = faiss.deserialize_index(np.ascontiguousarray(blob, dtype=np.uint8))
    except RuntimeError as exc:
        raise AliceError(f"{where}: its FAISS index cannot be read ({str(exc).splitlines()[0]})") from None
    problem = check_loaded(index, kind, count, dim)
    if problem:
        raise AliceError(f"{where}: its FAISS index {problem}; not an index `alice index build` wrote: rebuild it")
    return index


def check_loaded(index: Any, kind: str, count: int, dim: int) -> str:
    """What is wrong with a deserialised FAISS index ("" when nothing): it must be exactly what :func:`build` makes
    (IVF or HNSW over 8-bit scalar quantisation, inner product) of ``count`` items of ``dim`` dimensions, and every
    item id, list and graph link inside it must stay in range, so no search reads outside its arrays."""

    faiss = faiss_module()
    if index.d != dim or index.ntotal != count:
        return f"holds {index.ntotal} items of {index.d} dimensions, the file's embeddings {count} of {dim}"
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        return "does not rank by inner product"
    if kind == "ivf":
        if not isinstance(index, faiss.IndexIVFScalarQuantizer):
            return f"is {type(index).__name__}, not an IVF index over 8-bit scalar quantisation"
        quantizer, lists = faiss.downcast_index(index.quantizer), faiss.downcast_InvertedLists(index.invlists)
        if not isinstance(quantizer, faiss.IndexFlat) or quantizer.ntotal != index.nlist or quantizer.d != dim:
            return "has a cluster table that does not match its clusters"
        if type(lists) is not faiss.ArrayInvertedLists or lists.nlist != index.nlist or lists.code_size != dim:
            return "keeps its lists in another form than in memory"
        sq = index.sq
        problem = _check_lists(lists, index.nlist, count)
        if problem:
            return problem
    elif kind == "ivfpq":
        return _check_ivfpq(index, count, dim)
    elif kind == "hnsw":
        if not isinstance(index, faiss.IndexHNSW):
            return f"is {type(index).__name__}, not an HNSW index"
        storage = faiss.downcast_index(index.storage)
        if not isinstance(storage, faiss.IndexScalarQuantizer) or storage.ntotal != count or storage.d != dim:
            return "stores another number or size of vectors than its graph links"
        if storage.codes.size() != count * storage.code_size:
            return "stores fewer vector bytes than its items need"
        sq = storage.sq
        problem = _check_graph(index.hnsw, count)
        if problem:
            return problem
    else:
        return f"is of kind {kind!r}"
    if sq.qtype != faiss.ScalarQuantizer.QT_8bit or sq.trained.size() != 2 * dim or sq.code_size != dim:
        return "is not quantised to 8 bits per dimension"
    return ""


def _check_ivfpq(index: Any, count: int, dim: int) -> str:
    """What is wrong with an IVF-PQ index, optionally behind one OPQ rotation ("" when nothing)."""

    faiss = faiss_module()
    if isinstance(index, faiss.IndexPreTransform):
        if index.chain.size() != 1:
            return "transforms its queries more than once"
        rotation = faiss.downcast_VectorTransform(index.chain.at(0))
        if not isinstance(rotation, faiss.LinearTransform) or rotation.d_in != dim or rotation.d_out != dim:
            return "rotates its queries otherwise than by one OPQ matrix"  # (FAISS reads one back as LinearTransform)
        if rotation.A.size() != dim * dim or rotation.b.size() not in (0, dim) or not rotation.is_trained:
            return "has a rotation of another size than its items"
        index = faiss.downcast_index(index.index)
        if index.d != dim or index.ntotal != count:
            return f"holds {index.ntotal} items of {index.d} dimensions behind its rotation"
    if type(index) is not faiss.IndexIVFPQ or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        return f"is {type(index).__name__}, not an IVF index over product-quantised codes"
    pq = index.pq
    if pq.nbits != 8 or pq.M * pq.dsub != dim or pq.centroids.size() != pq.M * 256 * pq.dsub or not index.is_trained:
        return "has codebooks of another size than its codes"
    quantizer, lists = faiss.downcast_index(index.quantizer), faiss.downcast_InvertedLists(index.invlists)
    if not isinstance(quantizer, faiss.IndexFlat) or quantizer.ntotal != index.nlist or quantizer.d != dim:
        return "has a cluster table that does not match its clusters"
    if type(lists) is not faiss.ArrayInvertedLists or lists.nlist != index.nlist or lists.code_size != pq.M:
        return "keeps its lists in another form than in memory"
    return _check_lists(lists, index.nlist, count)


def _check_lists(lists: Any, nlist: int, count: int) -> str:
    """IVF lists that hold each of ``count`` items by an id in range, ``count`` in all ("" when so)."""
    import numpy as np

    faiss = faiss_module()
    total = 0
    for i in range(nlist):
        n = lists.list_size(i)
        ids = faiss.rev_swig_ptr(lists.get_ids(i), n) if n else np.zeros(0, dtype=np.int64)
        total += n
        if n and (ids.min() < 0 or ids.max() >= count):
            return f"names item {int(ids.max() if ids.max() >= count else ids.min())}, outside 0 to {count - 1}"
    if total != count:
        return f"lists {total} items, not {count}"
    return ""


def _check_graph(hnsw: Any, count: int) -> str:
    """An HNSW graph whose every link leads to an item, at a layer that item is on ("" when so)."""
    import numpy as np

    faiss = faiss_module()

    def view(vector: Any) -> np.ndarray:
        return faiss.rev_swig_ptr(vector.data(), vector.size()) if vector.size() else np.zeros(0, dtype=np.int64)

    levels, offsets, links = view(hnsw.levels), view(hnsw.offsets).astype(np.int64), view(hnsw.neighbors)
    cumulative = faiss.vector_to_array(hnsw.cum_nneighbor_per_level).astype(np.int64)
    if len(levels) != count or len(offsets) != count + 1 or not count:
        return "links another number of items than it holds" if count else ""
    if levels.min() < 1 or levels.max() >= len(cumulative) or offsets[0] != 0:
        return "has items on layers it has no room for"
    if not np.array_equal(np.diff(offsets), cumulative[levels]) or offsets[-1] != len(links):
        return "has link lists of other lengths than its items' layers"
    if len(links) and (links.min() < -1 or links.max() >= count):
        return f"links item {int(links.max() if links.max() >= count else links.min())}, outside 0 to {count - 1}"
    top = int(levels.max()) - 1
    if hnsw.max_level != top or not 0 <= hnsw.entry_point < count or levels[hnsw.entry_point] - 1 != top:
        return "enters its graph elsewhere than at its top layer"
    for layer in range(1, top + 1):  # layer 0 holds every item; above it, a link must lead to an item on that layer
        nodes = np.flatnonzero(levels > layer)
        width = cumulative[layer + 1] - cumulative[layer]
        targets = links[(offsets[nodes] + cumulative[layer])[:, None] + np.arange(width)]
        targets = targets[targets >= 0]
        if len(targets) and levels[targets].min() <= layer:
            return f"links to an item at layer {layer} that is not on it"
    return ""


def search(
    index: Any,
    kind: str,
    queries: np.ndarray,
    k: int,
    rows: Callable[[np.ndarray], np.ndarray],
    settings: dict[str, Any],
    nprobe: int | None = None,
    ef_search: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` by inner product ``(scores [q, k], rows [q, k])``, best first: ``rerank * k``
    candidates from the approximate index, re-scored exactly with ``rows(ids) -> [len(ids), d]``.

    Rows past the candidates found (a tiny index) are -1 with score -inf.
    """
    import numpy as np

    faiss = faiss_module()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    fetch = min(int(index.ntotal), max(k, int(settings.get("rerank", 1)) * k))
    if kind in ("ivf", "ivfpq"):
        params = faiss.SearchParametersIVF(nprobe=int(nprobe or settings.get("nprobe", 1)))
        if isinstance(index, faiss.IndexPreTransform):  # OPQ: the IVF settings go to the index behind the rotation
            params = faiss.SearchParametersPreTransform(index_params=params)
    else:
        params = faiss.SearchParametersHNSW(efSearch=max(fetch, int(ef_search or settings.get("ef_search", 16))))
    _, candidates = index.search(q, fetch, params=params)
    scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
    found = np.full((q.shape[0], k), -1, dtype=np.int64)
    for i, row in enumerate(candidates):
        ids = row[row >= 0]
        if not len(ids):
            continue
        if ids.max() >= index.ntotal:  # check_loaded refuses such an index; never index past the embeddings
            raise AliceError(f"the approximate index returned item {int(ids.max())} of {index.ntotal}; rebuild it")
        exact = rows(ids) @ q[i]
        best = np.argsort(-exact, kind="stable")[:k]
        scores[i, : len(best)], found[i, : len(best)] = exact[best], ids[best]
    return scores, found


def recall_at_k(
    embeddings: np.ndarray, query_rows: np.ndarray, approximate: Callable[[np.ndarray, int], Any], k: int = 10
) -> float:
    """Mean share of the exact top ``k`` that the approximate search finds, items of the index as queries.

    Each query is an item itself, so both result lists leave that item out (search ``k + 1``).
    """
    import numpy as np
    import torch

    from alice.core.similarity import top_k

    q = embeddings[query_rows]
    _, exact = top_k(torch.from_numpy(q), torch.from_numpy(embeddings), k + 1)
    _, approx = approximate(q, k + 1)
    hits = []
    for own, e, a in zip(query_rows.tolist(), exact.numpy(), approx):
        truth = [r for r in e.tolist() if r != own][:k]
        got = [r for r in a.tolist() if r != own and r >= 0][:k]
        hits.append(len(set(got).intersection(truth)) / max(1, len(truth)))
    return float(np.mean(hits)) if hits else 1.0
