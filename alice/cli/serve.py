"""``alice serve``: the search API and page over one space (FastAPI on uvicorn, imported when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Device
from alice.serve.spec import ServeSpec

LOCAL = ("127.0.0.1", "localhost", "::1")


def serve_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    host: str = typer.Option(ServeSpec.host, "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(ServeSpec.port, "--port", help="Port to listen on."),
    index: Optional[list[Path]] = typer.Option(
        None,
        "--index",
        help="An index file to serve besides <reference>/indexes/ (repeatable); FILE@sha256:HEX pins the file to "
        "the sha256 `alice index build` printed.",
    ),
    max_upload_mb: float = typer.Option(
        ServeSpec.max_upload_bytes / 2**20, "--max-upload-mb", help="Largest upload accepted, in MiB."
    ),
    max_k: int = typer.Option(ServeSpec.max_k, "--max-k", min=1, help="Most results one search returns."),
    access_log: bool = typer.Option(False, "--access-log", help="Print one line per request."),
    device: Optional[str] = Device,
) -> None:
    """Serve a space: a JSON search API and a web page, the space, backbones and indexes loaded once."""
    import uvicorn

    from alice.serve.app import create_app
    from alice.serve.state import Served

    spec = ServeSpec(
        host=host,
        port=port,
        indexes=list(index or []),
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_k=max_k,
        device=device or ServeSpec.device,
    )
    if host not in LOCAL:
        console.warn(f"listening on {host}: anyone who can reach this machine can query the space (no authentication)")
    served = Served.load(path, spec)
    app = create_app(spec=spec, served=served)
    names = ", ".join(f"{n} ({i.count:,} {i.modality}, {i.kind})" for n, i in served.indexes.items()) or "none"
    console.info(f"serving {served.space.path} at http://{host}:{port}/ (API: /api/..., schema: /openapi.json)")
    console.info(f"indexes: {names}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=access_log)
