"""Latency and throughput of `alice serve` for text queries, on a real space and on synthetic large indexes.

    python benchmarks/serve.py artifacts/digits-image                           # the space's own indexes
    python benchmarks/serve.py artifacts/digits-image --items 100000 1000000    # + synthetic 100K and 1M indexes
    python benchmarks/serve.py artifacts/digits-image --items 1000000 --kinds exact ivf

It starts `alice serve` on a free localhost port (a real uvicorn process, as a user runs it), waits
until it answers, and for each index measures:

- sequential: ``--queries`` (1,000) text queries one after another over one keep-alive
  connection, latency per request as the client sees it (p50, p99) and the server's own time;
- concurrent: ``--clients`` (8) threads, each with its own connection, sending queries until
  ``--requests`` (2,000) are answered or ``--seconds`` (30) have passed: requests per second.

A synthetic index of N items holds the space's real image latents (its ``image-test`` index)
repeated N / 1000 times with a little noise, renormalised, labels copied: the latent size and
distribution of the real space, N rows. It is pinned to the space's reference and image adapter
like any index, so the server serves it; it has no previews. ``--kinds ivf`` also builds an
approximate (FAISS) copy. The queries are digit captions ("a seven next to a two"), each encoded
by the text adapter's backbone (MiniLM) on the server: the time is a whole query's, text to ranked
items. ``uptime`` is printed before and after: other work on the machine shows there.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from serve_uploads import start  # the same start as the uploads benchmark: this folder is on sys.path when run

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def captions(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b = rng.choice(WORDS, 2, replace=False)
        out.append(f"one digit: {a}" if rng.random() < 0.3 else f"a {a} next to a {b}")
    return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def synthetic_index(ref: Path, items: int, kind: str, folder: Path) -> Path:
    """N rows drawn around the space's real image latents (labels copied), pinned to its reference and adapter."""
    import torch

    from alice.config.search import AnnSpec
    from alice.search.indexes import Index, write_index

    source = Index.open(ref / "indexes" / "image-test.safetensors")
    base = torch.from_numpy(source.rows(np.arange(source.count)))
    rng = torch.Generator().manual_seed(items)
    rows = torch.arange(items) % source.count
    z = base[rows] + (0.05 / base.shape[1] ** 0.5) * torch.randn(items, base.shape[1], generator=rng)
    z = torch.nn.functional.normalize(z, dim=1)
    meta = {k: source.meta[k] for k in ("modality", "reference_sha256", "adapter_sha256", "search") if k in source.meta}
    meta.update(split=f"synthetic-{items}", dataset={"name": "synthetic", "options": {"items": items}})
    path = folder / f"synthetic-{items // 1000}k-{kind}.safetensors"
    labels = source.labels[rows] if source.labels is not None else None
    write_index(path, z, meta, labels, source.annotated, approximate=AnnSpec(kind=kind))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ref: Path, indexes: list[Path], port: int, threads: int | None) -> subprocess.Popen:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    try:
        return start(ref, port, *(arg for p in indexes for arg in ("--index", str(p))), env=env)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def ask(conn: http.client.HTTPConnection, index: str, text: str, k: int) -> tuple[float, float]:
    """One search; (client seconds, server milliseconds)."""
    body = json.dumps({"text": text, "index": index, "k": k})
    t0 = time.perf_counter()
    conn.request("POST", "/api/search", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    took = time.perf_counter() - t0
    if response.status != 200:
        raise SystemExit(f"search failed: {response.status} {data[:300]!r}")
    return took, json.loads(data)["took_ms"]


def sequential(port: int, index: str, queries: list[str], k: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for text in queries[:20]:  # warm up: caches, first-call paths
        ask(conn, index, text, k)
    client, server = [], []
    for text in queries:
        c, s = ask(conn, index, text, k)
        client.append(1000 * c)
        server.append(s)
    conn.close()
    return {
        "queries": len(queries),
        "p50_ms": round(float(np.percentile(client, 50)), 1),
        "p99_ms": round(float(np.percentile(client, 99)), 1),
        "mean_ms": round(float(np.mean(client)), 1),
        "server_p50_ms": round(float(np.percentile(server, 50)), 1),
    }


def concurrent(port: int, index: str, queries: list[str], k: int, clients: int, requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    count = [0]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        j = i
        while time.perf_counter() < stop:
            with lock:
                if count[0] >= requests:
                    break
                count[0] += 1
            took, _ = ask(conn, index, queries[j % len(queries)], k)
            j += clients
            with lock:
                latencies.append(1000 * took)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "answered": len(latencies),
        "seconds": round(wall, 1),
        "per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path)
    p.add_argument("--items", type=int, nargs="*", default=[], help="Sizes of synthetic indexes to add.")
    p.add_argument("--kinds", nargs="+", default=["exact"], help="Kinds of each synthetic index: exact, ivf, hnsw.")
    p.add_argument("--index", nargs="*", default=None, help="Which of the space's own indexes (default: all).")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the server (default: as it is).")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    ref = args.reference.resolve()
    print(f"before: {uptime()}", flush=True)
    queries = captions(args.queries)
    results = []
    with tempfile.TemporaryDirectory(prefix="alice-serve-bench-") as tmp:
        extra = []
        for n in args.items:
            for kind in args.kinds:
                t0 = time.perf_counter()
                extra.append(synthetic_index(ref, n, kind, Path(tmp)))
                print(f"wrote {extra[-1].name} in {time.perf_counter() - t0:.0f} s", flush=True)
        port = free_port()
        t0 = time.perf_counter()
        server = start_server(ref, extra, port, args.threads)
        started = time.perf_counter() - t0
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/space")
            served = json.loads(conn.getresponse().read())["indexes"]
            names = [
                i["name"]
                for i in served
                if args.index is None
                or i["name"] in args.index
                or i["name"] in {e.name.removesuffix(".safetensors") for e in extra}
            ]
            for name in names:
                facts = next(i for i in served if i["name"] == name)
                row = {"index": name, "items": facts["items"], "kind": facts["kind"], "uptime": uptime()}
                row["sequential"] = sequential(port, name, queries, args.k)
                row["concurrent"] = concurrent(port, name, queries, args.k, args.clients, args.requests, args.seconds)
                results.append(row)
                s, c = row["sequential"], row["concurrent"]
                print(
                    f"{name:<26} {facts['items']:>10,} {facts['kind']:<6} sequential p50 {s['p50_ms']:>6} ms "
                    f"p99 {s['p99_ms']:>6} ms (server p50 {s['server_p50_ms']} ms) | {c['clients']} clients "
                    f"{c['per_second']:>6} req/s p50 {c['p50_ms']} ms p99 {c['p99_ms']} ms  [{row['uptime']}]",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"after: {uptime()}  (server start: {started:.1f} s)")
    if args.json:
        print(json.dumps({"server_start_s": round(started, 1), "results": results}, indent=2))


if __name__ == "__main__":
    main()
