"""Writing files and folders so that a crash never leaves a half-written one: the one helper every writer uses.

A file is written to a hidden temporary name beside its final place
(``.<name>.tmp-<pid>``) and renamed over it with :func:`os.replace`, which is
atomic on POSIX file systems: a reader sees the old content or the new, never
a mix. A folder (a reference space, an adapter, a checkpoint, a report) is
filled in a hidden staging folder beside its final place
(``.<name>.partial-<random>``) and then published by renames: an existing
folder is first moved aside to ``.<name>.old``, the staging folder renamed
into place, and the old one removed.

Nothing here knows what is being written; the artifact, cache and checkpoint
modules decide what goes into the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: files and folders get the permissions the user's umask gives any new file (a temporary name is private until renamed)
_UMASK = _read_umask()
FILE_MODE, FOLDER_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hidden_sibling(path: Path, suffix: str) -> Path:
    """``dir/.name<suffix>`` (a name already hidden keeps its one leading dot)."""
    name = path.name if path.name.startswith(".") else f".{path.name}"
    return path.with_name(name + suffix)


def json_text(data: Any) -> str:
    """How ALICE writes every JSON file: two-space indents, keys in insertion order, a final newline."""
    return json.dumps(data, indent=2) + "\n"


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, it replaces ``path``.

    For writers that want a file name (safetensors, tarfile); on an error the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = hidden_sibling(path, f".tmp-{os.getpid()}")
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)  # some writers (safetensors) create files private
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_file(path: Path, content: bytes | str) -> None:
    """Write ``content`` (bytes, or text as UTF-8) to ``path`` atomically."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, data: Any) -> None:
    write_file(path, json_text(data))


def write_file_if_changed(path: Path, content: bytes) -> bool:
    """Write atomically, and only if the content differs; True when the file was written."""
    try:
        if Path(path).read_bytes() == content:
            return False
    except OSError:
        pass
    write_file(path, content)
    return True


def _content(value: bytes | str | dict | list) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json_text(value).encode("utf-8")


@contextmanager
def staging_folder(final: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``final``, removed again if the block raises."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=hidden_sibling(final, ".partial-").name, dir=final.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_folder(staging: Path, final: Path) -> None:
    """Put a complete staging folder at ``final``, replacing what is there.

    Two renames: ``final`` to ``.<name>.old``, then ``staging`` to ``final``;
    the old folder is removed last. A leftover ``.old`` from an earlier,
    interrupted publish is removed first, unless ``final`` is missing (then
    that ``.old`` is the only copy, and it is kept until the new folder is in
    place).
    """
    staging, final = Path(staging), Path(final)
    os.chmod(staging, FOLDER_MODE)  # mkdtemp made it private
    old = hidden_sibling(final, ".old")
    if final.exists() and old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def write_folder(final: Path, files: dict[str, bytes | str | dict | list]) -> None:
    """Write ``files`` (relative path -> bytes, text or a JSON-able value) as the folder ``final``, atomically."""
    with staging_folder(final) as staging:
        for name, value in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_content(value))
        publish_folder(staging, final)
