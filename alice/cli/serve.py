"""``alice serve``: the search API and page over one space (FastAPI on uvicorn, imported when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Device
from alice.config.serve import TOKEN_VARIABLE, ServeSpec, is_loopback, read_token
from alice.plugin.limits import InputLimits


def serve_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    host: str = typer.Option(
        ServeSpec.host, "--host", help="Address to listen on (default: this machine only; else a token, or --open)."
    ),
    port: int = typer.Option(ServeSpec.port, "--port", help="Port to listen on."),
    index: Optional[list[Path]] = typer.Option(
        None,
        "--index",
        help="An index file to serve besides <reference>/indexes/ (repeatable); FILE@sha256:HEX pins the file to "
        "the sha256 `alice index build` printed; a folder `alice index export` wrote is served under its name.",
    ),
    max_upload_mb: float = typer.Option(
        ServeSpec.max_upload_bytes / 2**20, "--max-upload-mb", help="Largest upload accepted, in MiB."
    ),
    max_pixels: int = typer.Option(
        InputLimits.max_pixels, "--max-pixels", min=1, help="Most pixels an uploaded image may have (from its header)."
    ),
    max_seconds: float = typer.Option(
        InputLimits.max_seconds, "--max-seconds", min=0.001, help="Longest an uploaded sound may last, in seconds."
    ),
    max_k: int = typer.Option(ServeSpec.max_k, "--max-k", min=1, help="Most results one search returns."),
    token_file: Optional[Path] = typer.Option(
        None,
        "--token-file",
        help=f"A file whose first line is the token every request must carry (default: ${TOKEN_VARIABLE}, if set).",
    ),
    open_: bool = typer.Option(
        False, "--open", help="Serve beyond this machine without a token: anyone who can reach it may query."
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Print one line per request."),
    device: Optional[str] = Device,
) -> None:
    """Serve a space: a JSON search API and a web page, the space, backbones and indexes loaded once."""
    spec = ServeSpec(
        host=host,
        port=port,
        indexes=list(index or []),
        max_upload_bytes=int(max_upload_mb * 2**20),
        limits=InputLimits(max_pixels=max_pixels, max_seconds=max_seconds),
        max_k=max_k,
        device=device or ServeSpec.device,
        token=read_token(token_file),
        open=open_,
    )
    spec.check()  # before anything loads: beyond the loopback, a token or --open
    import uvicorn

    from alice.serve.app import create_app
    from alice.serve.state import Served

    if not is_loopback(host) and spec.token is None:
        console.warn(f"listening on {host} with --open: anyone who can reach this machine can query the space")
    served = Served.load(path, spec)
    app = create_app(spec=spec, served=served)
    names = ", ".join(f"{n} ({i.count:,} {i.modality}, {i.kind})" for n, i in served.indexes.items()) or "none"
    guarded = "; every request but /api/health must carry the token" if spec.token else ""
    console.info(f"serving {served.space.path} at http://{host}:{port}/ (API: /api/..., schema: /openapi.json)")
    console.info(f"uploads: at most {max_upload_mb:g} MiB, {max_pixels:,} pixels, {max_seconds:g} s{guarded}")
    console.info(f"indexes: {names}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=access_log)
