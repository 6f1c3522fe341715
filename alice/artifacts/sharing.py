"""One archive file to hand a reference space and its adapters to someone else.

``export`` writes ``<name>.alice.tar.gz`` holding one top folder with the
weights, manifests, documentation and ``space.json`` of a verified space
(derived folders, indexes and the report, stay out). ``import`` reads an
archive without trusting it:

- every entry must be a plain file or folder, named ``*.safetensors``,
  ``*.json`` or ``README.md``, at a place a space holds such a file; links,
  devices, sparse files, absolute paths, ``..``, hidden names, a file used as
  a folder, or the same entry twice refuse the whole archive;
- the archive may hold one top folder (what ``export`` writes) or the space's
  files at its top (``tar -C space -czf x.tar.gz .``; the folder is then named
  after the archive);
- limits on the number of entries, each entry's size, the total unpacked size
  and the unpacked size per byte of archive (:class:`ImportLimits`) are checked
  against every header before anything is written, and the bytes actually
  written are counted against them again;
- entries are copied (never ``extractall``) into a hidden folder beside the
  target, the result verified like ``alice reference verify`` does (and
  against ``--expect-digest``), and only then renamed into place.
"""

from __future__ import annotations

import gzip
import io
import lzma
import re
import shutil
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from alice.artifacts.format.layout import (
    CARD,
    CURVE_FILE,
    DERIVED_FOLDERS,
    HISTORY_FILE,
    REFERENCE_MANIFEST,
    SPACE_RECORD,
)
from alice.artifacts.integrity.record import (
    DERIVED,
    SpaceRecord,
    check_digest_text,
    inspect_space,
    read_record,
    role,
)
from alice.artifacts.integrity.verify import first_problem, verify_space
from alice.artifacts.publish import refuse_existing
from alice.config.limits import IMPORT_LIMITS, ImportLimits
from alice.errors import AliceError
from alice.files import (
    atomic_file,
    folder_lock,
    json_text,
    make_folder,
    publish_folder,
    refuse_to_replace,
    staging_folder,
)
from alice.reading import size_text

ALLOWED_SUFFIXES = (".safetensors", ".json")
ALLOWED_NAMES = (CARD, HISTORY_FILE, CURVE_FILE)
ARCHIVE_SUFFIXES = (".alice.tar.gz", ".tar.gz", ".tgz", ".tar")
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: what reading a broken archive raises, besides tarfile's own errors
DAMAGED = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


def _allowed_file(name: str) -> bool:
    return name.endswith(ALLOWED_SUFFIXES) or name in ALLOWED_NAMES


# --------------------------------------------------------------------------- export


def is_archive(path: Path) -> bool:
    """An archive `alice reference export` could have written: a tar whose entries lead to a ``reference.json``."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for n, m in enumerate(tar):
                parts = PurePosixPath(m.name).parts
                if (
                    n > IMPORT_LIMITS.entries
                    or not (m.isfile() or m.isdir())
                    or not (not parts or _allowed_file(parts[-1]) or m.isdir())
                ):
                    return False
                if parts and parts[-1] == REFERENCE_MANIFEST and len(parts) <= 2:
                    return True
    except (tarfile.TarError, OSError, EOFError):
        return False
    return False


def export_reference(path: Path, archive: Path, overwrite: bool = False) -> tuple[Path, str]:
    """Write a verified space as one archive; returns it and the space's digest."""
    path = Path(path)
    findings, inspection = verify_space(path)
    problem = first_problem(findings, derived=False)  # a stale search index does not block an export: it stays out
    if problem is not None or inspection is None:
        raise AliceError(
            f"refusing to export {path}: {problem.item}: {problem.detail}" if problem else f"refusing to export {path}"
        )
    archive = Path(archive)
    refuse_to_replace(archive, overwrite, "archive", is_archive, folder=False)
    make_folder(archive.parent)
    top = path.resolve().name
    members = sorted((rel for rel in inspection.files if role(rel) not in (None, DERIVED)), key=lambda r: r.encode())
    record = SpaceRecord({rel: e for rel, e in inspection.record.entries.items() if role(rel) != DERIVED})
    text = json_text(record.to_json()).encode("utf-8")
    with atomic_file(archive, "export") as tmp, tarfile.open(tmp, "w:gz") as tar:
        for rel in members:
            tar.add(path / rel, arcname=str(PurePosixPath(top, rel)), recursive=False)
        info = tarfile.TarInfo(str(PurePosixPath(top, SPACE_RECORD)))
        info.size, info.mtime, info.mode = len(text), int(time.time()), 0o644
        tar.addfile(info, io.BytesIO(text))
    return archive, record.digest


# --------------------------------------------------------------------------- import


@dataclass
class _Member:
    rel: PurePosixPath  # inside the space
    info: tarfile.TarInfo


def _checked_members(tar: tarfile.TarFile, archive: Path, limits: ImportLimits) -> tuple[str, list[_Member]]:
    """Every header checked, one by one: a bad one refuses the archive before the data behind it is read."""
    packed = archive.stat().st_size
    seen: list[tuple[tuple[str, ...], tarfile.TarInfo]] = []
    total = 0
    for m in tar:
        if len(seen) >= limits.entries:
            raise AliceError(f"{archive}: more than {limits.entries:,} entries (--max-entries); not an ALICE archive")
        p = PurePosixPath(m.name)
        if any(ord(c) < 32 or ord(c) == 127 for c in m.name):
            raise AliceError(f"{archive}: entry {m.name!r} has a control character in its name; not an ALICE archive")
        if p.is_absolute() or m.name.startswith(("/", "\\")) or ".." in p.parts or "\\" in m.name:
            raise AliceError(f"{archive}: entry {m.name!r} would land outside the target folder")
        if m.issym() or m.islnk():
            raise AliceError(f"{archive}: entry {m.name!r} is a link; archives may hold plain files only")
        if m.issparse():
            raise AliceError(f"{archive}: entry {m.name!r} is a sparse file; archives may hold plain files only")
        if not (m.isfile() or m.isdir()):
            raise AliceError(f"{archive}: entry {m.name!r} is not a plain file or folder")
        if any(part.startswith(".") for part in p.parts):
            raise AliceError(f"{archive}: entry {m.name!r} is hidden; not part of an artifact")
        if m.isfile():
            if m.size > limits.entry_size:
                raise AliceError(
                    f"{archive}: entry {m.name!r} declares {size_text(m.size)}, over the limit of "
                    f"{size_text(limits.entry_size)} per entry (--max-entry-size)"
                )
            total += m.size
            if total > limits.total_size:
                raise AliceError(
                    f"{archive}: its entries unpack to more than {size_text(limits.total_size)} (--max-size)"
                )
            if total > limits.ratio * packed + (1 << 20):
                raise AliceError(
                    f"{archive}: its entries unpack to more than {size_text(total)} from {size_text(packed)} of "
                    f"archive, over {limits.ratio}x (--max-ratio); not an ALICE archive"
                )
        if p.parts:  # "." itself, as `tar -C space -czf x.tar.gz .` writes it, holds nothing to check
            seen.append((p.parts, m))
    return _placed(seen, archive)


def _placed(seen: list[tuple[tuple[str, ...], tarfile.TarInfo]], archive: Path) -> tuple[str, list[_Member]]:
    """The folder name and each entry's place in it: under one top folder, or at the top (a flat archive)."""
    if not seen:
        raise AliceError(f"{archive} is empty")
    flat = any(parts == (REFERENCE_MANIFEST,) for parts, m in seen if m.isfile())
    if flat:
        top = next((archive.name[: -len(s)] for s in ARCHIVE_SUFFIXES if archive.name.endswith(s)), archive.stem)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", top):
            raise AliceError(
                f"{archive}: its files sit at its top, and its name gives no folder name; rename it (space.tar.gz)"
            )
        placed = [_Member(PurePosixPath(*parts), m) for parts, m in seen]
    else:
        tops = {parts[0] for parts, _ in seen}
        if len(tops) != 1:
            raise AliceError(f"{archive}: expected one top folder, found {len(tops)}")
        top = tops.pop()
        placed = [_Member(PurePosixPath(*parts[1:]), m) for parts, m in seen if len(parts) > 1]
    # derived folders (indexes/, report/) of a space packed by hand are left out: the recipient rebuilds them
    placed = [x for x in placed if role(str(x.rel)) != DERIVED and x.rel.parts[0] not in DERIVED_FOLDERS]
    files = [str(x.rel) for x in placed if x.info.isfile()]
    if len(set(files)) != len(files):
        raise AliceError(f"{archive}: the same entry appears twice")
    as_file = set(files)
    for x in placed:
        parents = {str(q) for q in x.rel.parents if str(q) != "."}
        clash = sorted(parents & as_file) or (sorted({str(x.rel)} & as_file) if x.info.isdir() else [])
        if clash:
            raise AliceError(f"{archive}: entry {x.info.name!r} lies inside {clash[0]!r}, which is a file")
        rel = str(x.rel)
        if x.info.isfile() and not _allowed_file(x.rel.name):
            raise AliceError(f"{archive}: entry {x.info.name!r} is not safetensors, JSON or README.md")
        if x.info.isfile() and rel != SPACE_RECORD and role(rel) is None:
            raise AliceError(f"{archive}: entry {x.info.name!r} is no part of a reference space")
    return top, placed


def _copy(src, dst, limit: int, archive: Path, name: str) -> int:
    """Copy one entry, counting: more bytes than its header declared refuses it (a lying header)."""
    written = 0
    while block := src.read(1 << 20):
        written += len(block)
        if written > limit:
            raise AliceError(f"{archive}: entry {name!r} holds more than its header declares")
        dst.write(block)
    return written


def _free_space(folder: Path) -> int:
    probe = Path(folder).absolute()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def import_reference(
    archive: Path, into: Path, overwrite: bool = False, limits: ImportLimits = IMPORT_LIMITS, digest: str | None = None
) -> tuple[Path, str]:
    """Unpack, verify and put in place a space from an archive; returns its folder and digest."""
    archive, into = Path(archive), Path(into)
    if archive.is_dir():
        raise AliceError(f"{archive} is a folder, not an archive; give the .alice.tar.gz file")
    if not archive.is_file():
        raise AliceError(f"archive {archive} does not exist")
    if into.exists() and not into.is_dir():
        raise AliceError(f"--into {into} is a file; give the folder to unpack the space into")
    if digest is not None:
        digest = check_digest_text(digest)
    with open(archive, "rb") as f:
        if f.read(4) in ZIP_MAGIC:
            raise AliceError(
                f"{archive} is a zip archive; ALICE imports the .tar.gz that `alice reference export` writes"
            )
    try:
        tar = tarfile.open(archive, "r:*")
    except (*DAMAGED, OSError) as exc:
        raise AliceError(
            f"{archive} is not a readable archive ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    with tar:
        try:
            top, members = _checked_members(tar, archive, limits)
            final = into / top
            refuse_existing(final, overwrite)
            need = sum(x.info.size for x in members if x.info.isfile())
            if need > _free_space(into):
                raise AliceError(
                    f"{archive} unpacks to {size_text(need)}; {into} has {size_text(_free_space(into))} free"
                )
            make_folder(into)
            with folder_lock(into), staging_folder(final) as staging:
                _unpack(tar, members, staging, archive, limits)
                if not (staging / SPACE_RECORD).exists():
                    raise AliceError(
                        f"{archive} holds no {SPACE_RECORD} (an older ALICE exported it): have its publisher export "
                        "it again"
                    )
                _drop_derived(staging)
                problem = first_problem(verify_space(staging)[0])
                if problem is not None:  # named as it would be once in place, not by the hidden staging folder
                    detail = problem.detail.replace(str(staging), str(final))
                    raise AliceError(f"{archive}: {problem.item}: {detail}")
                found = inspect_space(staging).digest
                if digest is not None and found != digest:
                    raise AliceError(
                        f"{archive} holds a space of digest {found[:16]}…, not the expected {digest[:16]}… "
                        "(--expect-digest); nothing was imported"
                    )
                publish_folder(staging, final, "space")
        except DAMAGED as exc:
            raise AliceError(
                f"{archive} is damaged ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
    return final, found


def _drop_derived(staging: Path) -> None:
    """A record that names derived files (a space packed by hand) keeps only what was unpacked."""
    record = read_record(staging)
    if any(role(rel) == DERIVED for rel in record.entries):
        kept = SpaceRecord({rel: e for rel, e in record.entries.items() if role(rel) != DERIVED})
        (staging / SPACE_RECORD).write_text(json_text(kept.to_json()), encoding="utf-8")


def _unpack(tar: tarfile.TarFile, members: list[_Member], staging: Path, archive: Path, limits: ImportLimits) -> None:
    total = 0
    for x in members:
        target = staging / x.rel
        if x.info.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(x.info)
        if src is None:
            raise AliceError(f"{archive}: entry {x.info.name!r} cannot be read")
        with src, open(target, "xb") as dst:
            total += _copy(src, dst, min(x.info.size, limits.entry_size), archive, x.info.name)
        if total > limits.total_size:
            raise AliceError(f"{archive}: its entries unpack to more than {size_text(limits.total_size)} (--max-size)")
