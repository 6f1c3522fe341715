"""What checking an index file's sha256 costs when it is opened, at 100K and 1M items.

    python benchmarks/index_open.py                          # 100K and 1M random 512-d unit vectors
    python benchmarks/index_open.py --sizes 100000 --ann ivf # also the check of a FAISS index after loading

`alice search` and `alice serve` check an index against the sha256 `space.json` records for it (or
the pin given with FILE@sha256:HEX) before reading it. Each size is written as a real index file
(alice.search.write_index) in a temporary folder, read once (into the page cache), then timed:

- "sha256": hashing the whole file (alice.files.sha256_file), what a check on every open would cost;
- "first open": Index.open with the expected sha256, the hash remembered (alice.files.sha256_remembered);
- "next open": the same again: the file's stat matches what was remembered, nothing is hashed;
- "open unchecked": Index.open without a sha256 (the header, labels and texts alone);
- with --ann: "faiss check": loading the FAISS index and checking every id and link (ann.check_loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from alice.artifacts.ann import AnnSpec
from alice.files import sha256_file
from alice.search import Index, write_index


def unit(n: int, dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, dim)
    for lo in range(0, n, 100_000):
        block = torch.randn(min(100_000, n - lo), dim, generator=g)
        out[lo : lo + block.shape[0]] = torch.nn.functional.normalize(block, dim=1)
    return out


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(n: int, dim: int, folder: Path, ann: str | None) -> dict:
    path = folder / f"random-{n}.safetensors"
    meta = {"modality": "random", "split": "bench", "reference_sha256": "-", "adapter_sha256": "-"}
    write_index(path, unit(n, dim, 0), meta, overwrite=True, approximate=AnnSpec(kind=ann) if ann else None)
    sha256_file(path)  # into the page cache
    out = {"items": n, "dim": dim, "bytes": path.stat().st_size}
    digest = sha256_file(path)
    out["sha256_s"] = round(timed(lambda: sha256_file(path)), 3)
    out["first_open_s"] = round(timed(lambda: Index.open(path, digest)), 3)
    out["next_open_s"] = round(timed(lambda: Index.open(path, digest)), 4)
    out["open_unchecked_s"] = round(timed(lambda: Index.open(path)), 4)
    if ann:
        out["faiss_check_s"] = round(timed(lambda: Index.open(path).approximate()), 3)
    path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--ann", choices=["ivf", "hnsw"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ALICE_CACHE_DIR"] = str(Path(tmp) / "cache")  # remembered hashes: not the user's cache
        for n in args.sizes:
            print(json.dumps(bench(n, args.dim, Path(tmp), args.ann)), flush=True)


if __name__ == "__main__":
    main()
