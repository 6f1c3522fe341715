"""A streamed ``ivfpq`` index past memory: 10M clustered 512-d items on one machine, built and searched.

    /usr/bin/time -v python benchmarks/streamed.py --items 10000000 --folder big/
    python benchmarks/streamed.py --items 1000000 --nlist 820 1265 --opq    # choosing the index at 1M
    python benchmarks/streamed.py --assign-rate 100000 --nlist 12649         # the cluster assignment's GFLOP/s

The items are benchmarks/ann.py's ``clustered`` data (n/100 centres on the sphere, noise as large as
the centre), drawn chunk by chunk from a seed (``draw_chunks``): they are never all in memory. They
stream into :func:`alice.search.streamed.write_streamed` (float16 rows on disk, an IVF-PQ index of
one-byte codes in memory), and, on the way, past an exact scan for ``--queries`` (200) new points
of the same distribution: the running top 10 of each query over every chunk is the truth that
recall@10 is measured against.

Then the file is opened as a server opens it (its sha256 checked against the one the build gave,
``Index.open(path, sha256=...)``) and the queries are asked one at a time, single-threaded (FAISS,
torch and BLAS at one thread): p50 and p99 of the time per query, recall@10, for each ``--nprobe``.
Memory is the process's peak resident set: run it under ``/usr/bin/time -v``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ann import centres_for, draw, draw_chunks  # noqa: E402  (benchmarks/ann.py: the same data)

from alice.config.search import AnnSpec  # noqa: E402
from alice.files import sha256_file  # noqa: E402
from alice.search.ann import faiss_module  # noqa: E402
from alice.search.indexes import Index  # noqa: E402
from alice.search.streamed import write_streamed  # noqa: E402


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def peak_mb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


class Truth:
    """The exact top 10 of each query over the chunks as they pass (a streamed scan)."""

    def __init__(self, queries: np.ndarray, k: int = 10) -> None:
        self.q, self.k, self.seen = queries, k, 0
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype=np.int64)

    def watch(self, chunks):
        for chunk in chunks:
            s = self.q @ chunk.T
            best = np.argpartition(-s, self.k - 1, axis=1)[:, : self.k]
            s = np.concatenate([self.scores, np.take_along_axis(s, best, 1)], axis=1)
            i = np.concatenate([self.ids, best + self.seen], axis=1)
            keep = np.argsort(-s, axis=1)[:, : self.k]
            self.scores, self.ids = np.take_along_axis(s, keep, 1), np.take_along_axis(i, keep, 1)
            self.seen += len(chunk)
            yield chunk


def assign_rate(rows: int, nlist: int, dim: int) -> None:
    """What the build's cluster assignment runs at: ``rows`` items to their nearest of ``nlist`` lists (FAISS's flat
    inner-product search, every thread), 2 * rows * nlist * dim flops, best of three."""
    faiss = faiss_module()
    rng = np.random.default_rng(0)
    lists = faiss.IndexFlatIP(dim)
    lists.add(rng.standard_normal((nlist, dim), dtype=np.float32))
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    best = min(_timed(lambda: lists.search(x, 1)) for _ in range(3))
    flops = 2 * rows * nlist * dim
    rate = round(flops / best / 1e9, 1)
    print(json.dumps({"rows": rows, "nlist": nlist, "seconds": round(best, 2), "GFLOP_s": rate}))
    print(f"after: {uptime()}")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=10_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument(
        "--nlist", type=int, nargs="+", default=[0], help="Lists of the IVF index (0: ALICE's default, 4 sqrt(n))."
    )
    p.add_argument("--pq", type=int, default=64)
    p.add_argument("--opq", action="store_true", help="Also build each with an OPQ rotation.")
    p.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--rerank", type=int, nargs="+", default=[10, 20])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--chunk", type=int, default=8_192, help="Rows drawn and written at once (bounds the memory).")
    p.add_argument("--build-queries", type=int, default=0, help="Items the build itself measures recall with.")
    p.add_argument("--folder", type=Path, default=Path("."), help="Where the index file goes (removed after).")
    p.add_argument("--keep", action="store_true", help="Keep the index file.")
    p.add_argument(
        "--assign-rate",
        type=int,
        default=0,
        metavar="ROWS",
        help="Only time the cluster assignment: ROWS items against --nlist lists (flat, inner product), in GFLOP/s.",
    )
    args = p.parse_args()
    faiss = faiss_module()
    print(f"before: {uptime()}", flush=True)
    if args.assign_rate:
        assign_rate(args.assign_rate, args.nlist[0] or 12_649, args.dim)
        return
    centres = centres_for(args.items, args.dim)
    q = draw(args.queries, args.dim, "clustered", 2, centres)
    rows = []
    for nlist in args.nlist:
        for opq in [False, True] if args.opq else [False]:
            path = args.folder / f"streamed-{args.items}-{nlist}{'-opq' if opq else ''}.safetensors"
            spec = AnnSpec(
                kind="ivfpq",
                nlist=nlist,
                pq=args.pq,
                opq=opq,
                nprobe=args.nprobe[0],
                rerank=20,
                recall_queries=args.build_queries,
            )
            meta = {"modality": "synthetic", "split": "clustered", "reference_sha256": "-", "adapter_sha256": "-"}
            truth = Truth(q)
            t0 = time.perf_counter()
            write_streamed(
                path,
                truth.watch(draw_chunks(args.items, args.dim, "clustered", 0, centres, args.chunk)),
                args.items,
                meta,
                spec,
                overwrite=True,
            )
            build = time.perf_counter() - t0
            print(f"built {path.name} in {build:.0f} s, peak so far {peak_mb()} MB [{uptime()}]", flush=True)
            t0 = time.perf_counter()
            digest = sha256_file(path)
            hashed = time.perf_counter() - t0
            t0 = time.perf_counter()
            index = Index.open(path, sha256=digest, source="the build")
            index.approximate()
            opened = time.perf_counter() - t0
            faiss.omp_set_num_threads(1)
            import torch

            torch.set_num_threads(1)
            qt = torch.from_numpy(q)
            for rerank in args.rerank:
                index.meta["ann"]["rerank"] = rerank
                for nprobe in args.nprobe:
                    times, found = [], []
                    for i in range(len(q)):
                        t = time.perf_counter()
                        _, r = index.search(qt[i : i + 1], 10, nprobe=nprobe)
                        times.append(time.perf_counter() - t)
                        found.append(r[0].numpy())
                    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth.ids)]))
                    row = {
                        "items": args.items,
                        "factory": index.meta["ann"]["factory"],
                        "nprobe": nprobe,
                        "rerank": rerank,
                        "build_s": round(build),
                        "sha256_s": round(hashed, 1),
                        "open_s": round(opened, 1),
                        "file_GB": round(path.stat().st_size / 1e9, 2),
                        "faiss_MB": round(index.meta["ann"]["bytes"] / 2**20),
                        "p50_ms": round(1000 * float(np.percentile(times, 50)), 2),
                        "p99_ms": round(1000 * float(np.percentile(times, 99)), 2),
                        "recall_at_10": round(recall, 4),
                        "build_recall_at_10": index.meta["ann"].get("recall_at_10"),
                        "peak_MB": peak_mb(),
                        "uptime": uptime(),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            faiss.omp_set_num_threads(2)
            torch.set_num_threads(2)
            del index
            if not args.keep:
                path.unlink()
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()
