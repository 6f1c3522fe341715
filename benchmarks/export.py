"""An index exported to LanceDB: export time, query time, and how often its top 10 are ALICE's own.

    python benchmarks/export.py --items 1000000 --queries 1000 --folder big/

The items are benchmarks/ann.py's clustered 512-d data, written as an exact ALICE index file; it is
exported (``alice.search.export.export_lancedb``) and the queries asked of both: ALICE's exact search
(``Index.search(exact=True)``) and LanceDB's (``LanceIndex.search``, its full scan by inner product).
Agreement is the share of queries whose top-10 sets are the same, over every query, asked in batches of
``--batch`` (one batch is one call to each); the time per query is the median of ``--timed`` queries
asked one at a time, as a server asks them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ann import centres_for, draw  # noqa: E402

from alice.search.export import LanceIndex, export_lancedb  # noqa: E402
from alice.search.indexes import Index, write_index  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--batch", type=int, default=100, help="Queries asked of each at once for the agreement.")
    p.add_argument("--timed", type=int, default=50, help="Queries also asked one at a time, for the time per query.")
    p.add_argument("--folder", type=Path, default=Path("."))
    args = p.parse_args()
    centres = centres_for(args.items, args.dim)
    path, db = args.folder / f"export-{args.items}.safetensors", args.folder / f"export-{args.items}.lancedb"
    meta = {"modality": "synthetic", "split": "clustered", "reference_sha256": "-", "adapter_sha256": "-"}
    write_index(path, torch.from_numpy(draw(args.items, args.dim, "clustered", 0, centres)), meta, overwrite=True)
    t0 = time.perf_counter()
    export_lancedb(Index.open(path), db, overwrite=True)
    exported = time.perf_counter() - t0
    own, lance = Index.open(path).load(), LanceIndex.open_export(db)
    q = torch.from_numpy(draw(args.queries, args.dim, "clustered", 2, centres))
    same, overlap, t_batch = 0, [], {"alice": 0.0, "lancedb": 0.0}
    for lo in range(0, len(q), args.batch):
        t = time.perf_counter()
        a = own.search(q[lo : lo + args.batch], 10, exact=True)[1].tolist()
        t_batch["alice"] += time.perf_counter() - t
        t = time.perf_counter()
        b = lance.search(q[lo : lo + args.batch], 10)[1].tolist()
        t_batch["lancedb"] += time.perf_counter() - t
        same += sum(set(x) == set(y) for x, y in zip(a, b))
        overlap += [len(set(x) & set(y)) / 10 for x, y in zip(a, b)]
    t_own, t_lance = [], []
    for i in range(min(args.timed, len(q))):
        t = time.perf_counter()
        own.search(q[i : i + 1], 10, exact=True)
        t_own.append(time.perf_counter() - t)
        t = time.perf_counter()
        lance.search(q[i : i + 1], 10)
        t_lance.append(time.perf_counter() - t)
    row = {
        "items": args.items,
        "queries": len(q),
        "export_s": round(exported, 1),
        "same_top10": round(same / len(q), 4),
        "mean_overlap_at_10": round(float(np.mean(overlap)), 4),
        "alice_batched_s": round(t_batch["alice"], 1),
        "lancedb_batched_s": round(t_batch["lancedb"], 1),
        "timed": len(t_own),
        "alice_exact_p50_ms": round(1000 * float(np.median(t_own)), 1),
        "lancedb_p50_ms": round(1000 * float(np.median(t_lance)), 1),
    }
    print(json.dumps(row), flush=True)
    path.unlink()
    shutil.rmtree(db)


if __name__ == "__main__":
    main()
