"""Time per query of `alice search`'s exact blocked search, at 100K and 1M items.

    python benchmarks/search.py                      # 100K and 1M random 512-d unit vectors
    python benchmarks/search.py --sizes 1000000 --queries 20

Each size is written as a real index file (alice.search.indexes.write_index) in a temporary folder, then:

- "open + search": what one `alice search` does after encoding its query: open the file, read
  the embeddings block by block (memory-mapped by safetensors) and keep a running top-k;
- "in memory": the index held in memory (Index.load), one query at a time, as a Python user
  serving many queries would.

The file is read once before timing, so both figures are with the file in the page cache
(a first read from a cold disk adds the disk's read time for 2 GB at 1M x 512).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from alice.search.indexes import Index, write_index


def unit(n: int, dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, dim)
    for lo in range(0, n, 100_000):  # in chunks: no second full-size temporary
        block = torch.randn(min(100_000, n - lo), dim, generator=g)
        out[lo : lo + block.shape[0]] = torch.nn.functional.normalize(block, dim=1)
    return out


def bench(n: int, dim: int, k: int, queries: int, folder: Path) -> dict:
    path = folder / f"random-{n}.safetensors"
    t0 = time.perf_counter()
    write_index(
        path,
        unit(n, dim, 0),
        {"modality": "random", "split": "bench", "reference_sha256": "-", "adapter_sha256": "-"},
        overwrite=True,
    )
    written = time.perf_counter() - t0
    q = unit(queries, dim, 1)
    Index.open(path).search(q[:1], k)  # warm: the file into the page cache
    t0 = time.perf_counter()
    for i in range(queries):
        Index.open(path).search(q[i : i + 1], k)
    cold = (time.perf_counter() - t0) / queries
    index = Index.open(path).load()
    index.search(q[:1], k)
    t0 = time.perf_counter()
    for i in range(queries):
        scores, rows = index.search(q[i : i + 1], k)
    warm = (time.perf_counter() - t0) / queries
    # exactness: the blocked top-k equals one full matrix product's
    full = (q[-1:] @ index._embeddings.T).topk(k)
    assert torch.equal(rows, full.indices) or torch.allclose(scores, full.values), (
        "blocked search disagrees with the full product"
    )
    result = {
        "items": n,
        "dim": dim,
        "k": k,
        "index_MB": round(path.stat().st_size / 2**20, 1),
        "open_and_search_ms": round(1000 * cold, 1),
        "in_memory_ms": round(1000 * warm, 1),
        "write_s": round(written, 1),
        "threads": torch.get_num_threads(),
    }
    path.unlink()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="alice-search-bench-") as tmp:
        results = [bench(n, args.dim, args.k, args.queries, Path(tmp)) for n in args.sizes]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'items':>10} {'dim':>4} {'index MB':>9} {'open+search ms/query':>21} {'in memory ms/query':>19}")
    for r in results:
        print(
            f"{r['items']:>10,} {r['dim']:>4} {r['index_MB']:>9} {r['open_and_search_ms']:>21} {r['in_memory_ms']:>19}"
        )


if __name__ == "__main__":
    main()
