"""What ``alice reference import`` accepts before it unpacks anything, its defaults written once."""

from __future__ import annotations

from dataclasses import dataclass

from alice.reading import GiB


@dataclass
class ImportLimits:
    """What ``alice reference import`` accepts before it unpacks anything; each is an option of that command.

    Generous for real spaces: trained weights hardly compress (about 1.1x with gzip), while a gzip bomb unpacks
    about 1000 bytes per byte of archive.
    """

    entries: int = 10_000  # --max-entries
    entry_size: int = 16 * GiB  # --max-entry-size: one file, unpacked
    total_size: int = 64 * GiB  # --max-size: all files, unpacked
    ratio: int = 100  # --max-ratio: unpacked bytes per byte of archive


IMPORT_LIMITS = ImportLimits()
