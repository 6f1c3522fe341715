"""How an approximate search index is built and searched by default (``alice index build``, ``alice serve``)."""

from __future__ import annotations

from dataclasses import dataclass

from alice.errors import AliceError

ANN_KINDS = ("ivf", "hnsw", "ivfpq")
#: kinds whose float16 embeddings stay on disk (written streamed: :mod:`alice.search.streamed`)
STREAMED_KINDS = ("ivfpq",)
KINDS = ("exact", *ANN_KINDS)


@dataclass
class AnnSpec:
    """How an approximate index is built and searched by default (``alice index build --kind ...``)."""

    #: exact (no approximate index), ivf, hnsw or ivfpq (written streamed)
    kind: str = "exact"
    #: ivf: clusters the items are sorted into; 0 picks about 4 sqrt(n) (at most n / 39)
    nlist: int = 0
    #: ivf: clusters scanned per query (more: higher recall, slower)
    nprobe: int = 32
    #: hnsw: links per node
    hnsw_m: int = 32
    #: hnsw: candidates kept while building the graph
    ef_construction: int = 80
    #: hnsw: candidates kept while searching (more: higher recall, slower)
    ef_search: int = 128
    #: candidates fetched per result wanted, then re-scored exactly
    rerank: int = 10
    #: ivfpq: one-byte codes per item (must divide the latent size)
    pq: int = 64
    #: ivfpq: rotate the latents (OPQ) before the codes are learnt
    opq: bool = False
    #: items used as queries when the build measures recall@10 against exact search (0: none)
    recall_queries: int = 200
    #: the k-means sample and the recall queries are drawn with this seed
    seed: int = 0

    def check(self) -> None:
        if self.kind not in KINDS:
            raise AliceError(f"unknown index kind {self.kind!r} (known: {', '.join(KINDS)})")
        for name in ("nprobe", "hnsw_m", "ef_construction", "ef_search", "rerank", "pq"):
            if getattr(self, name) < 1:
                raise AliceError(f"index setting {name} must be at least 1, got {getattr(self, name)}")
        if self.nlist < 0 or self.recall_queries < 0:
            raise AliceError("index settings nlist and recall_queries cannot be negative")
