"""Named recipes shipped with ALICE (one TOML file each, plain data)."""

from pathlib import Path


def folder() -> Path:
    return Path(__file__).parent
