"""One archive file to hand a reference space and its adapters to someone else.

``export`` writes ``<name>.alice.tar.gz`` holding one top folder with the
safetensors, JSON and model-card files of a verified reference. ``import``
reads such an archive without trusting it: every member must be a plain file
or folder, inside that one top folder, named ``*.safetensors``, ``*.json`` or
``README.md``; anything else (links, devices, absolute paths, ``..``, other
file types) refuses the whole archive. Members are copied into a hidden
folder beside the target, verified (hashes, adapters against the reference),
and only then renamed into place.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

from alice.artifacts.layout import CARD, DERIVED_FOLDERS
from alice.artifacts.store import refuse_existing
from alice.artifacts.verify import verify_reference
from alice.errors import AliceError
from alice.files import atomic_file, publish_folder, staging_folder

ALLOWED_SUFFIXES = (".safetensors", ".json")
ALLOWED_NAMES = (CARD,)
MAX_MEMBERS = 10_000


def _allowed_file(name: str) -> bool:
    return name.endswith(ALLOWED_SUFFIXES) or name in ALLOWED_NAMES


def export_reference(path: Path, archive: Path, overwrite: bool = False) -> Path:
    path = Path(path)
    # a stale search index does not block an export: derived folders are left out of the archive
    problems = [f for f in verify_reference(path) if not f.ok and f.item.split("/")[0] not in DERIVED_FOLDERS]
    if problems:
        raise AliceError(f"refusing to export {path}: {problems[0].item}: {problems[0].detail}")
    archive = Path(archive)
    refuse_existing(archive, overwrite)
    archive.parent.mkdir(parents=True, exist_ok=True)
    top = path.resolve().name
    with atomic_file(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path)
            if any(p.startswith(".") for p in rel.parts) or f.is_symlink() or rel.parts[0] in DERIVED_FOLDERS:
                continue  # hidden partial writes, links, and derived files (search indexes, the report)
            if f.is_file() and _allowed_file(f.name):
                tar.add(f, arcname=str(PurePosixPath(top, *rel.parts)), recursive=False)
    return archive


def _checked_members(tar: tarfile.TarFile, archive: Path) -> tuple[str, list[tarfile.TarInfo]]:
    members = tar.getmembers()
    if len(members) > MAX_MEMBERS:
        raise AliceError(f"{archive}: more than {MAX_MEMBERS} entries; not an ALICE archive")
    tops = set()
    for m in members:
        p = PurePosixPath(m.name)
        if p.is_absolute() or m.name.startswith(("/", "\\")) or ".." in p.parts or "\\" in m.name:
            raise AliceError(f"{archive}: entry {m.name!r} would land outside the target folder")
        if m.issym() or m.islnk():
            raise AliceError(f"{archive}: entry {m.name!r} is a link; archives may hold plain files only")
        if not (m.isfile() or m.isdir()):
            raise AliceError(f"{archive}: entry {m.name!r} is not a plain file or folder")
        if any(part.startswith(".") for part in p.parts):
            raise AliceError(f"{archive}: entry {m.name!r} is hidden; not part of an artifact")
        if m.isfile() and not _allowed_file(p.name):
            raise AliceError(f"{archive}: entry {m.name!r} is not safetensors, JSON or README.md")
        tops.add(p.parts[0])
    if len(tops) != 1:
        raise AliceError(f"{archive}: expected one top folder, found {len(tops)}")
    return tops.pop(), members


def import_reference(archive: Path, into: Path, overwrite: bool = False) -> Path:
    archive, into = Path(archive), Path(into)
    if not archive.is_file():
        raise AliceError(f"archive {archive} does not exist")
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise AliceError(f"{archive} is not a readable archive ({exc})") from None
    with tar:
        try:
            top, members = _checked_members(tar, archive)
        except tarfile.TarError as exc:
            raise AliceError(f"{archive} is damaged ({exc})") from None
        final = into / top
        refuse_existing(final, overwrite)
        try:
            with staging_folder(final) as staging:
                for m in members:
                    rel = PurePosixPath(*PurePosixPath(m.name).parts[1:])
                    target = staging / rel
                    if m.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(m)
                    if src is None:
                        raise AliceError(f"{archive}: entry {m.name!r} cannot be read")
                    with src, open(target, "xb") as dst:  # "x": a duplicate entry cannot overwrite an earlier one
                        shutil.copyfileobj(src, dst)
                problems = [f for f in verify_reference(staging) if not f.ok]
                if problems:
                    raise AliceError(f"{archive}: {problems[0].item}: {problems[0].detail}")
                publish_folder(staging, final)
        except tarfile.TarError as exc:
            raise AliceError(f"{archive} is damaged ({exc})") from None
        except FileExistsError:
            raise AliceError(f"{archive}: the same entry appears twice") from None
    return final
