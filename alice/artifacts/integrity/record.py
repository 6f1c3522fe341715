"""A whole reference space under one hash: ``space.json``, its digest, and the check every reader runs.

``space.json`` (at the top of the space) lists every file with its size and
sha256, in three sections:

- ``files``: what decides what the space computes: ``reference.safetensors``,
  ``reference.json`` and each adapter's ``adapter.safetensors`` and
  ``adapter.json``, and each adapter's training history ``history.jsonl``. The space's
  **digest** is the Merkle root (RFC 6962's tree
  hash, SHA-256) over these files' paths and sha256. The **reference digest**
  is the same root over the two reference files alone; every adapter manifest
  names it, so an adapter is bound to the reference it was trained against,
  manifest included, not only to its weights.
- ``documentation``: the model cards (``README.md``), their curve pictures (``history.png``) and ``eval.json``, which
  ``alice eval`` rewrites; hashed and checked, outside the digest, so a pinned
  digest stays valid after an evaluation.
- ``derived``: search indexes and the report, rebuilt from the space; hashed
  (``alice reference verify`` checks them), outside the digest.

A reader (:func:`inspect_space`) refuses any file the record does not name,
hidden ones included, any symbolic link, and any named file that is missing or
whose bytes changed; ``space.json`` itself is checked against its own root. A
folder without ``space.json`` is refused in one line: nothing records its files,
so it is built or published again.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alice.artifacts.format.layout import (
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    CARD,
    CURVE_FILE,
    DERIVED_FOLDERS,
    EVAL_FILE,
    HISTORY_FILE,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
    SPACE_RECORD,
)
from alice.errors import AliceError
from alice.files import sha256_file
from alice.reading import read_json

SPACE_FORMAT, SPACE_VERSION = "alice.space", 1
BEHAVIOUR, DOCUMENTATION, DERIVED = "files", "documentation", "derived"
SECTIONS = (BEHAVIOUR, DOCUMENTATION, DERIVED)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def role(rel: str) -> str | None:
    """The section of ``space.json`` a file at ``rel`` ('/'-separated) belongs to; None: no part of a space."""
    parts = rel.split("/")
    if len(parts) == 1:
        return (
            BEHAVIOUR
            if rel in (REFERENCE_WEIGHTS, REFERENCE_MANIFEST)
            else DOCUMENTATION
            if rel in (CARD, EVAL_FILE)
            else None
        )
    if parts[0] == ADAPTERS_FOLDER and len(parts) == 3:
        return (
            BEHAVIOUR
            if parts[2] in (ADAPTER_WEIGHTS, ADAPTER_MANIFEST, HISTORY_FILE)
            else DOCUMENTATION
            if parts[2] in (CARD, CURVE_FILE)
            else None
        )
    return DERIVED if parts[0] in DERIVED_FOLDERS else None


# --------------------------------------------------------------------------- the digest


def _tree_hash(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash of leaf hashes (split at the largest power of two below n)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _tree_hash(leaves[:k]) + _tree_hash(leaves[k:])).digest()


def merkle_root(hashes: dict[str, str]) -> str:
    """The root over ``{relative path: sha256}``: leaves ``SHA256(0x00 || path || 0x00 || sha256)``, by path bytes."""
    paths = sorted(hashes, key=lambda p: p.encode("utf-8"))
    leaves = [hashlib.sha256(b"\x00" + p.encode("utf-8") + b"\x00" + bytes.fromhex(hashes[p])).digest() for p in paths]
    return _tree_hash(leaves).hex()


def reference_digest_of(hashes: dict[str, str]) -> str:
    """The reference digest: the root over ``reference.safetensors`` and ``reference.json`` alone."""
    return merkle_root({k: hashes[k] for k in (REFERENCE_WEIGHTS, REFERENCE_MANIFEST) if k in hashes})


def check_digest_text(digest: str) -> str:
    """A digest as given on the command line (``sha256:`` accepted in front), lower case; refused if malformed."""
    text = digest.strip().lower().removeprefix("sha256:")
    if not _HEX64.match(text):
        raise AliceError(f"--expect-digest takes the 64 hex digits `alice reference show` prints, got {digest!r}")
    return text


# --------------------------------------------------------------------------- the record


@dataclass
class Entry:
    path: str
    size: int
    sha256: str


@dataclass
class SpaceRecord:
    """``space.json`` in memory: every file of the space by section."""

    entries: dict[str, Entry] = field(default_factory=dict)

    def hashes(self, section: str | None = BEHAVIOUR) -> dict[str, str]:
        return {p: e.sha256 for p, e in self.entries.items() if section is None or role(p) == section}

    @property
    def digest(self) -> str:
        return merkle_root(self.hashes())

    @property
    def reference_digest(self) -> str:
        return reference_digest_of(self.hashes())

    def adapter_names(self) -> list[str]:
        return sorted({p.split("/")[1] for p in self.hashes() if p.startswith(ADAPTERS_FOLDER + "/")})

    def to_json(self, sections: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": SPACE_FORMAT,
            "format_version": SPACE_VERSION,
            "digest": self.digest,
            "reference_digest": self.reference_digest,
        }
        for section in sections:
            out[section] = [
                {"path": e.path, "size": e.size, "sha256": e.sha256}
                for p, e in sorted(self.entries.items(), key=lambda kv: kv[0].encode("utf-8"))
                if role(p) == section
            ]
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> SpaceRecord:
        if not isinstance(data, dict) or data.get("format") != SPACE_FORMAT:
            raise AliceError(f"{where} is not an ALICE space record")
        if data.get("format_version") != SPACE_VERSION:
            raise AliceError(
                f"{where} has format version {data.get('format_version')!r}; this ALICE reads version {SPACE_VERSION}"
            )
        record = cls()
        for section in SECTIONS:
            items = data.get(section, [])
            if not isinstance(items, list):
                raise AliceError(f"{where}: {section!r} is not a list")
            for item in items:
                ok = isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("size"), int)
                if not ok or not isinstance(item.get("sha256"), str) or not _HEX64.match(item["sha256"]):
                    raise AliceError(f"{where}: a {section!r} entry lacks a path, size or sha256: {str(item)[:80]}")
                if role(item["path"]) != section or item["path"] in record.entries:
                    raise AliceError(f"{where} names {item['path']!r} under {section!r}, where no file of a space goes")
                record.entries[item["path"]] = Entry(item["path"], item["size"], item["sha256"])
        if data.get("digest") != record.digest or data.get("reference_digest") != record.reference_digest:
            raise AliceError(f"{where}: its digest does not match its own file list (the record was edited)")
        return record


def missing_record(path: Path) -> AliceError:
    """The one line for a folder with a reference manifest but no ``space.json``: an older ALICE wrote it."""
    return AliceError(
        f"{path} has no {SPACE_RECORD}, so nothing records its files (an older ALICE wrote it): rebuild it with "
        "`alice reference build`, or have its publisher export it again"
    )


def read_record(path: Path) -> SpaceRecord:
    """A space's ``space.json``, checked against its own root; a folder without one is refused."""
    file = Path(path) / SPACE_RECORD
    if not file.exists() and not file.is_symlink():
        raise missing_record(path)
    if file.is_symlink() or not file.is_file():
        raise AliceError(f"{file} is not a plain file")
    return SpaceRecord.from_json(read_json(file), str(file))


def record_of(folder: Path, files: dict[str, int], known: dict[str, str] | None = None) -> SpaceRecord:
    """The record of ``files`` (relative path -> size) under ``folder``; ``known`` sha256 are taken as they are."""
    known = known or {}
    return SpaceRecord(
        {
            rel: Entry(rel, size, known.get(rel) or sha256_file(Path(folder) / rel))
            for rel, size in files.items()
            if role(rel)
        }
    )


# --------------------------------------------------------------------------- checking a folder


@dataclass
class Problem:
    item: str  # path relative to the space
    detail: str


def scan(path: Path) -> tuple[dict[str, int], list[Problem]]:
    """Every plain file under ``path`` (relative path -> size, ``space.json`` left out) and every entry that is none.

    Hidden entries, symbolic links and special files are problems, wherever
    they are; the walk never follows a link.
    """
    files: dict[str, int] = {}
    problems: list[Problem] = []

    def walk(folder: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            rel = prefix + entry.name
            if entry.name.startswith("."):
                kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
                problems.append(
                    Problem(
                        rel,
                        f"is a hidden {kind}; a reference space holds none "
                        "(ALICE keeps its temporary files beside the space)",
                    )
                )
            elif entry.is_symlink():
                problems.append(Problem(rel, "is a symbolic link; a reference space holds plain files only"))
            elif entry.is_dir(follow_symlinks=False):
                before = len(files)
                walk(Path(entry.path), rel + "/")
                if (
                    len(files) == before
                    and not any(p.item.startswith(rel + "/") for p in problems)
                    and rel.split("/")[0] not in DERIVED_FOLDERS
                ):
                    problems.append(Problem(rel, "is an empty folder that no manifest names"))
            elif entry.is_file(follow_symlinks=False):
                if rel != SPACE_RECORD:
                    files[rel] = entry.stat(follow_symlinks=False).st_size
            else:
                problems.append(Problem(rel, "is not a plain file or folder"))

    walk(Path(path), "")
    return files, problems


#: said after a model card or eval.json that differs from its record: documentation may be edited, then recorded
EDITED_DOCUMENTATION = " (documentation edited by hand? `alice reference verify --rehash` records it)"


@dataclass
class Inspection:
    """What a reader found: the record, the sha256 of the files it hashed, and every problem."""

    path: Path
    record: SpaceRecord | None  # None: checked without its record (``use_record=False``, what ``--rehash`` does)
    files: dict[str, int]
    hashes: dict[str, str]  # relative path -> sha256 as found (weights, manifests, documentation; derived if asked)
    problems: list[Problem]

    @property
    def digest(self) -> str:
        return merkle_root({p: h for p, h in self.hashes.items() if role(p) == BEHAVIOUR})

    @property
    def reference_digest(self) -> str:
        return reference_digest_of(self.hashes)

    def raise_first(self) -> None:
        """One line for the first problem, weights and manifests before documentation and derived files."""
        if self.problems:
            p = min(self.problems, key=lambda q: role(q.item) != BEHAVIOUR)
            more = (
                f" (and {len(self.problems) - 1} more problem(s); `alice reference verify` lists them)"
                if len(self.problems) > 1
                else ""
            )
            raise AliceError(f"{self.path / p.item} {p.detail}{more}")

    def check_digest(self, expected: str | None) -> None:
        """Refuse a space whose digest is not ``expected`` (pip's hash-checking, for a whole space)."""
        if expected is None:
            return
        want = check_digest_text(expected)
        if self.digest != want:
            raise AliceError(
                f"{self.path} has digest {self.digest[:16]}…, not the expected {want[:16]}… (--expect-digest): "
                "it is not the space that was pinned"
            )


def inspect_space(path: Path, use_record: bool = True, hash_derived: bool = False) -> Inspection:
    """Check every file of a space against ``space.json`` (or, with ``use_record=False``, as ``--rehash`` does before
    it records the files, against the layout's names alone).

    Weights, manifests and documentation are hashed; derived files are checked
    by size only unless ``hash_derived`` (``alice reference verify``).
    """
    path = Path(path)
    files, problems = scan(path)
    record = read_record(path) if use_record else None
    hashes: dict[str, str] = {}
    for rel, size in files.items():
        kind = role(rel)
        entry = record.entries.get(rel) if record is not None else None
        if kind is None or (record is not None and entry is None):
            problems.append(
                Problem(rel, "is an unexpected file, named by no manifest" + (" (not in space.json)" if record else ""))
            )
            continue
        hint = EDITED_DOCUMENTATION if kind == DOCUMENTATION else ""
        if entry is not None and entry.size != size:
            problems.append(
                Problem(
                    rel,
                    f"has {size} bytes, space.json says {entry.size}: the file was changed after the space was written"
                    + hint,
                )
            )
            continue
        if kind == DERIVED and not hash_derived:
            continue
        hashes[rel] = sha256_file(path / rel)
        if entry is not None and hashes[rel] != entry.sha256:
            problems.append(
                Problem(
                    rel,
                    f"does not match the sha256 in space.json (expected {entry.sha256[:12]}…, "
                    f"found {hashes[rel][:12]}…): "
                    "the file was changed or damaged" + hint,
                )
            )
    if record is not None:
        flagged = {p.item for p in problems}
        problems += [
            Problem(rel, "is missing (space.json names it)")
            for rel in record.entries
            if rel not in files and rel not in flagged
        ]
    return Inspection(path, record, files, hashes, problems)
