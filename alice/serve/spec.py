"""How ``alice serve`` runs: the defaults, in a module that imports nothing heavy (``alice --help`` stays quick)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServeSpec:
    """How ``alice serve`` runs; the CLI takes its defaults from here."""

    #: the address to listen on: localhost only by default
    host: str = "127.0.0.1"
    port: int = 8000
    #: index files served besides the ones in ``<reference>/indexes/`` (refused at start if they do not fit)
    indexes: list[Path] = field(default_factory=list)
    #: the largest upload accepted, in bytes
    max_upload_bytes: int = 10 * 2**20
    #: the most results one search returns
    max_k: int = 100
    #: where the networks run: cpu, cuda, auto
    device: str = "cpu"
