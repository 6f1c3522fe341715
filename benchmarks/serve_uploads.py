"""What an upload costs a real `alice serve`: the answer, the time, and the server's peak memory above idle.

    python benchmarks/serve_uploads.py artifacts/digits-image
    python benchmarks/serve_uploads.py artifacts/digits-image --sizes 20000x20000 12000x12000 7000x7000

It starts `alice serve` on a free localhost port (a real uvicorn process), waits until it
answers, and for each size writes a grey PNG of zeros (a few hundred kilobytes however large,
written a row at a time: the image is never held here), uploads it to ``/api/classify/file``
and prints the status and line of the answer, the time, and the server's peak resident memory
above its idle size: the kernel's high-water mark (``VmHWM`` in ``/proc/PID/status``), reset to
the current size before each upload (``5`` written to ``/proc/PID/clear_refs``), so each figure is
that upload's alone. The default sizes are the two of the report this measures (a 20000 x 20000
PNG of 389 KB, a 12000 x 12000 one of 140 KB) and one just under the server's ``--max-pixels``.
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

# --------------------------------------------------------------------------- files


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def grey_png(path: Path, width: int, height: int) -> Path:
    """An 8-bit grey PNG of zeros, compressed a row at a time (never held whole); returns ``path``."""
    row = b"\x00" * (width + 1)  # filter byte, then the row's pixels
    packer = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        pending = b""
        for _ in range(height):
            pending += packer.compress(row)
            if len(pending) > 1 << 16:
                f.write(_chunk(b"IDAT", pending))
                pending = b""
        f.write(_chunk(b"IDAT", pending + packer.flush()) + _chunk(b"IEND", b""))
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` but whose data is a few bytes: what a reader must refuse from
    its header alone (decoding it would fail, late); returns ``path``."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _chunk(b"IEND", b""))
    return path


# --------------------------------------------------------------------------- the server and its memory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(ref: Path, port: int, *args: str, env: dict[str, str] | None = None, wait: float = 900) -> subprocess.Popen:
    """`python -m alice serve REF --port PORT ARGS...`, once it answers ``/api/health``."""
    command = [sys.executable, "-m", "alice", "serve", str(ref), "--port", str(port), *args]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + wait
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"alice serve exited: {server.stderr.read()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"alice serve did not answer within {wait:.0f} s")


def memory(pid: int) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (its peak) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak(pid: int) -> int:
    """Set the process's peak memory to its size now (``5`` to ``clear_refs``); returns that size."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return memory(pid)["VmRSS"]


def upload(port: int, path: Path, route: str = "/api/classify/file", token: str | None = None) -> tuple[int, dict]:
    """POST one file as multipart form data; ``(status, JSON answer)``."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", route, body, headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def measure(server: subprocess.Popen, port: int, path: Path, token: str | None = None) -> dict:
    """One upload: status, its answer's line (or labels), seconds, peak and kept memory above idle (bytes)."""
    idle = reset_peak(server.pid)
    t0 = time.perf_counter()
    status, answer = upload(port, path, token=token)
    took = time.perf_counter() - t0
    after = memory(server.pid)
    line = answer.get("error") or f"labels: {', '.join(answer.get('query', {}).get('labels', [])) or 'none'}"
    return {
        "status": status,
        "line": line,
        "seconds": round(took, 2),
        "peak_above_idle": after["VmHWM"] - idle,
        "kept_after": after["VmRSS"] - idle,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path)
    p.add_argument("--sizes", nargs="+", default=None, help="WIDTHxHEIGHT of each PNG (default: see above).")
    p.add_argument("--max-pixels", type=int, default=None, help="The server's --max-pixels (default: its own).")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    sizes = args.sizes
    if sizes is None:  # the report's two sizes, and a square just under the cap
        from alice.plugin import InputLimits

        cap = args.max_pixels or InputLimits.max_pixels
        side = int(cap**0.5)
        sizes = ["20000x20000", "12000x12000", f"{side}x{cap // side}"]
    extra = ["--max-pixels", str(args.max_pixels)] if args.max_pixels else []
    port = free_port()
    t0 = time.perf_counter()
    server = start(args.reference.resolve(), port, *extra)
    print(
        f"alice serve {args.reference} {' '.join(extra)}: up in {time.perf_counter() - t0:.1f} s, idle "
        f"{memory(server.pid)['VmRSS'] / 2**20:,.0f} MiB",
        flush=True,
    )
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="alice-uploads-") as tmp:
            for size in sizes:
                width, height = (int(x) for x in size.lower().split("x"))
                path = grey_png(Path(tmp) / f"grey-{width}x{height}.png", width, height)
                row = {"size": size, "pixels": width * height, "file_bytes": path.stat().st_size}
                row.update(measure(server, port, path))
                results.append(row)
                path.unlink()
                if not args.json:
                    print(
                        f"{size:>12} ({row['pixels']:>11,} px, {row['file_bytes'] / 1024:>6,.0f} KB): {row['status']} "
                        f"in {row['seconds']:6.2f} s, peak {row['peak_above_idle'] / 2**20:7,.0f} MiB above idle, "
                        f"kept {row['kept_after'] / 2**20:5,.0f} MiB | {row['line']}",
                        flush=True,
                    )
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if not Path("/proc/self/status").exists():
        raise SystemExit("this benchmark reads /proc (Linux)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
