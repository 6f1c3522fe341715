"""Approximate (FAISS ivf, hnsw) against exact search: time per query and recall@10, at 1M items and beyond.

    python benchmarks/ann.py                                   # 1M clustered 512-d items, ivf and hnsw
    python benchmarks/ann.py --items 1000000 3000000 --kinds ivf
    python benchmarks/ann.py --items 200000 --data uniform     # the worst case: no structure at all

Each size is written as a real index file (alice.search.indexes.write_index, FAISS index
inside), opened and held in memory as a server holds it (``Index.open(path).load()``), and asked
``--queries`` (200) single queries, one at a time:

- exact: ``index.search(q, 10, exact=True)``, the blocked scan over every item;
- approximate: ``index.search(q, 10)``: the FAISS candidates, re-scored exactly.

recall@10 is the share of the exact top 10 that the approximate search returns, averaged over
the queries. The queries are new points of the same distribution, not items of the index.

The data: ``clustered`` (default) draws each item around one of n/100 random centres on the
sphere with noise as large as the centre (cosine to its centre about 0.7): neighbourhoods exist,
as in an embedding space, but the clusters are many, small and overlapping. ``uniform`` draws
random unit vectors, where in 512 dimensions every item is nearly equally far from every query:
no index but a full scan finds "the" nearest ten, and recall says so.

Memory: the embeddings (n x 512 x 4 bytes) are held twice while the file is written, then once,
plus the FAISS index (a quarter of that). 10M items (20 GB of float32) do not fit a 24 GB
machine shared with other work; ``--items`` says what runs. ``uptime`` is printed with each row.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from alice.config.search import AnnSpec
from alice.core.similarity import top_k
from alice.search.indexes import Index, write_index

CHUNK = 250_000


def sphere(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def draw_chunks(
    n: int, dim: int, data: str, seed: int, centres: np.ndarray | None, rows: int = CHUNK
) -> Iterator[np.ndarray]:
    """``n`` unit vectors, ``rows`` at a time, the same for the same seed and ``rows`` (never all in memory)."""
    rng = np.random.default_rng(seed)
    for lo in range(0, n, rows):
        m = min(rows, n - lo)
        noise = rng.standard_normal((m, dim), dtype=np.float32)
        if data == "uniform":
            yield sphere(noise)
        else:
            yield sphere(centres[rng.integers(0, len(centres), m)] + noise / np.sqrt(dim))


def draw(n: int, dim: int, data: str, seed: int, centres: np.ndarray | None) -> np.ndarray:
    """``n`` unit vectors, made in chunks straight into one float32 array."""
    out = np.empty((n, dim), dtype=np.float32)
    for lo, chunk in zip(range(0, n, CHUNK), draw_chunks(n, dim, data, seed, centres)):
        out[lo : lo + len(chunk)] = chunk
    return out


def centres_for(n: int, dim: int) -> np.ndarray:
    """The n / 100 cluster centres of the ``clustered`` data."""
    return sphere(np.random.default_rng(1).standard_normal((max(1, n // 100), dim)).astype(np.float32))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def timed(fn, queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    rows = []
    t0 = time.perf_counter()
    for q in queries:
        rows.append(fn(torch.from_numpy(q[None]), k)[1][0].numpy())
    return (time.perf_counter() - t0) / len(queries), np.stack(rows)


def bench(n: int, dim: int, kinds: list[str], data: str, queries: int, exact_queries: int, folder: Path) -> list[dict]:
    centres = centres_for(n, dim)
    q = draw(queries, dim, data, 2, centres)
    out = []
    for kind in kinds:
        x = draw(n, dim, data, 0, centres)
        path = folder / f"{data}-{n}-{kind}.safetensors"
        meta = {"modality": "synthetic", "split": data, "reference_sha256": "-", "adapter_sha256": "-"}
        t0 = time.perf_counter()
        write_index(path, torch.from_numpy(x), meta, approximate=AnnSpec(kind=kind, recall_queries=0), overwrite=True)
        built = time.perf_counter() - t0
        del x
        gc.collect()
        index = Index.open(path).load()
        truth = top_k(torch.from_numpy(q), index._embeddings, 10)[1].numpy()  # all queries at once: the reference
        approx_s, found = timed(index.search, q, 10)
        exact_s, _ = timed(functools.partial(index.search, exact=True), q[:exact_queries], 10)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))
        settings = index.meta["ann"]
        row = {
            "items": n,
            "dim": dim,
            "data": data,
            "kind": kind,
            "factory": settings["factory"],
            "search": {"nprobe": settings["nprobe"]} if kind == "ivf" else {"ef_search": settings["ef_search"]},
            "rerank": settings["rerank"],
            "build_s": round(built, 1),
            "file_MB": round(path.stat().st_size / 2**20),
            "faiss_MB": round(settings["bytes"] / 2**20),
            "exact_ms": round(1000 * exact_s, 2),
            "approx_ms": round(1000 * approx_s, 3),
            "speedup": round(exact_s / approx_s, 1),
            "recall_at_10": round(recall, 4),
            "queries": queries,
            "threads": torch.get_num_threads(),
            "uptime": uptime(),
        }
        out.append(row)
        print(
            f"{n:>10,} {data:<9} {kind:<5} {settings['factory']:<14} build {row['build_s']:>7} s | exact "
            f"{row['exact_ms']:>8} ms/query | approximate {row['approx_ms']:>7} ms/query ({row['speedup']}x) | "
            f"recall@10 {row['recall_at_10']:.3f}  [{row['uptime']}]",
            flush=True,
        )
        del index
        path.unlink()
        gc.collect()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", nargs="+", type=int, default=[1_000_000])
    p.add_argument("--kinds", nargs="+", default=["ivf", "hnsw"])
    p.add_argument("--data", nargs="+", default=["clustered"], choices=["clustered", "uniform"])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=200, help="Queries for recall and the approximate time.")
    p.add_argument("--exact-queries", type=int, default=20, help="Of those, how many are timed exactly too.")
    p.add_argument("--folder", type=Path, default=None, help="Where the index files go (default: a temp folder).")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    print(f"before: {uptime()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="alice-ann-bench-", dir=args.folder) as tmp:
        for data in args.data:
            for n in args.items:
                results += bench(n, args.dim, args.kinds, data, args.queries, args.exact_queries, Path(tmp))
    print(f"after: {uptime()}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
