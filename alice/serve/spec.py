"""How ``alice serve`` runs: the defaults, in a module that imports nothing heavy (``alice --help`` stays quick)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from alice.errors import AliceError
from alice.plugin.limits import InputLimits

#: the environment variable that holds the server's bearer token (or give a file with --token-file)
TOKEN_VARIABLE = "ALICE_SERVE_TOKEN"
#: the shortest token accepted: a guessable one protects nothing
MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost): no one else can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


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
    #: the largest image (pixels) and sound (seconds, samples) an upload may hold, read from its header
    limits: InputLimits = field(default_factory=InputLimits)
    #: the most results one search returns
    max_k: int = 100
    #: where the networks run: cpu, cuda, auto
    device: str = "cpu"
    #: how long a request waits for its turn at the models (or at decoding an upload) before a 503
    busy_after_s: float = 30.0
    #: the bearer token every request but ``/api/health`` and the page must carry (None: none is asked)
    token: str | None = field(default=None, repr=False)
    #: serve beyond the loopback without a token (``--open``): anyone who can reach the machine may query
    open: bool = False

    def check(self) -> None:
        """Refuse a token too short to guess, and a server beyond the loopback without one unless it is ``open``."""
        if self.token is not None and len(self.token) < MIN_TOKEN:
            raise AliceError(f"the server's token has {len(self.token)} characters; give one of at least {MIN_TOKEN}")
        if not is_loopback(self.host) and self.token is None and not self.open:
            raise AliceError(
                f"--host {self.host} serves beyond this machine: set a token ({TOKEN_VARIABLE}, or --token-file FILE) "
                "that every request must carry, or pass --open to serve anyone who can reach it"
            )


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: the first line of ``token_file``, else ``$ALICE_SERVE_TOKEN``, else None (no token)."""
    if token_file is not None:
        try:
            lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AliceError(f"cannot read the token file {token_file}: {exc}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise AliceError(f"the token file {token_file} is empty; write the token on its first line")
        return token
    return os.environ.get(TOKEN_VARIABLE, "").strip() or None
