"""Writing files and folders so that a crash at any instant loses nothing: the one helper every writer uses.

A file is written to a hidden temporary name beside its final place
(``.<name>.tmp-<pid>``) and renamed over it with :func:`os.replace`, which is
atomic on POSIX file systems: a reader sees the old content or the new, never
a mix. A folder (a reference space, a checkpoint, a report) is filled in a
hidden staging folder beside its final place (``.<name>.partial-<pid>-<random>``)
and then published by renames: an existing folder is first moved aside to
``.<name>.old-<pid>``, the staging folder renamed into place, and the old one
removed. A folder that is thrown away is first renamed to
``.<name>.removed-<pid>``, so it disappears at once, never half.

Every hidden name carries the id of the process that made it. A process killed
at any step leaves only such names, and :func:`recover` (run by the next writer
of that path, and by the next reader of a reference space) puts things right:
a ``.old`` whose folder is missing (killed between the two renames) is renamed
back into place; every other leftover of a process that is no longer running
is removed. Leftovers of a running process are never touched.

Tests kill writers at each of these steps: ``ALICE_CRASH_AT=<writer>:<n>``
makes the process SIGKILL itself at the n-th step (counted from 0) of that
writer, and ``ALICE_CRASH_LOG=<file>`` lists every step a run passes through.
Both are read in :func:`crash_point` only; unset, they cost nothing.

Nothing here knows what is being written; the artifact, cache and checkpoint
modules decide what goes into the files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from alice.errors import AliceError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: files and folders get the permissions the user's umask gives any new file (a temporary name is private until renamed)
_UMASK = _read_umask()
FILE_MODE, FOLDER_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK

CRASH_AT, CRASH_LOG = "ALICE_CRASH_AT", "ALICE_CRASH_LOG"
_steps: dict[str, int] = {}


def crash_point(writer: str, what: str) -> None:
    """One step of a writer (a rename or a removal) after which a crash must be survivable.

    Under ``ALICE_CRASH_AT=<writer>:<n>`` the process kills itself (SIGKILL: no
    clean-up runs) at the n-th step of that writer; ``ALICE_CRASH_LOG`` names a
    file that gets one line per step passed. For the fault-injection tests.
    """
    at, log = os.environ.get(CRASH_AT), os.environ.get(CRASH_LOG)
    if not at and not log:
        return
    n = _steps.get(writer, 0)
    _steps[writer] = n + 1
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{writer}:{n} {what}\n")
    if at == f"{writer}:{n}":
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_root() -> Path:
    """ALICE's cache folder (``ALICE_CACHE_DIR``, default ``~/.cache/alice``): features, remembered hashes."""
    return Path(os.environ.get("ALICE_CACHE_DIR") or Path.home() / ".cache" / "alice")


#: where :func:`sha256_remembered` keeps what it hashed, and how many files it remembers
HASHES_FILE, HASHES_KEPT = "sha256.json", 1000


def sha256_remembered(path: Path) -> str:
    """A large file's sha256, hashed once per version of the file: remembered in the cache folder under its device,
    inode, size, modification and change times in nanoseconds.

    Any write to the file, or a file renamed in its place, changes its change time (ctime) or its inode, and no
    user can set a change time back, so a remembered hash is never taken for a file whose bytes changed (on file
    systems that keep ctime to the nanosecond; on ones of coarser clocks, a write within one tick of the hashing
    would go unseen). Search indexes are checked with it: 2 GB at 1M x 512 take seconds to hash.
    """
    path = Path(path).absolute()
    st = path.stat()
    stamp = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    store = cache_root() / HASHES_FILE
    try:
        known = read_json(store)
    except AliceError:
        known = {}
    known = known if isinstance(known, dict) else {}
    entry = known.get(str(path))
    if isinstance(entry, dict) and entry.get("stat") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(path)
    if path.stat().st_ctime_ns != st.st_ctime_ns:  # written while it was hashed: nothing to remember
        return digest
    known.pop(str(path), None)
    known[str(path)] = {"stat": stamp, "sha256": digest}
    try:
        make_folder(store.parent)
        write_json(store, dict(list(known.items())[-HASHES_KEPT:]), "hashes")
    except (AliceError, OSError):
        pass  # a read-only cache folder: the next open hashes again
    return digest


# --------------------------------------------------------------------------- reading what others wrote

#: the deepest nesting of lists and tables (JSON objects) in a JSON or TOML file ALICE reads; its own nest 5 at most
MAX_NESTING = 64
#: the largest JSON file read whole (a manifest, space.json, eval.json): ALICE's own are kilobytes to a few MiB
MAX_JSON_BYTES = 64 * 2**20
#: the largest TOML text read (a recipe, a --set value): ALICE's own recipes are a few KiB
MAX_TOML_BYTES = 4 * 2**20


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and dicts nest in ``value`` more than ``limit`` deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep(where: str, limit: int) -> AliceError:
    return AliceError(f"{where} nests lists or tables more than {limit} levels deep; ALICE reads no such file")


def parse_json(text: str | bytes, where: str, limit: int = MAX_NESTING, hint: str = "") -> Any:
    """JSON that someone else wrote, as Python values; one line naming ``where`` (and ending with ``hint``) if it is
    not JSON, or nests deeper than ``limit``. Every JSON file, header and line ALICE reads goes through here
    (:func:`read_json` for files)."""
    try:
        value = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except RecursionError:
        raise _too_deep(where, limit) from None
    except json.JSONDecodeError as exc:
        at = f": line {exc.lineno} column {exc.colno}" if exc.lineno > 1 or "\n" in exc.doc.rstrip() else ""
        raise AliceError(f"{where} is not valid JSON ({exc.msg}{at}){hint}") from None
    except ValueError as exc:  # not UTF-8; an integer of more digits than Python converts
        raise AliceError(f"{where} is not valid JSON ({str(exc).splitlines()[0]}){hint}") from None
    if _deeper_than(value, limit):
        raise _too_deep(where, limit)
    return value


def read_json(path: Path, where: str | None = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file, read whole only when it is no larger than ``max_bytes`` (see :func:`parse_json`)."""
    where = where or str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise AliceError(f"cannot read {where}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise AliceError(f"{where} is larger than {size_text(max_bytes)}; ALICE reads no such file")
    return parse_json(raw, where)


def parse_toml(text: str | bytes, where: str, limit: int = MAX_NESTING) -> dict[str, Any]:
    """TOML that someone else wrote (a recipe, a ``--set`` value), bounded in size and nesting like :func:`parse_json`.

    A syntax error is :class:`tomllib.TOMLDecodeError` and bytes that are not UTF-8 :class:`UnicodeDecodeError`,
    for the caller to word (a recipe names the line or byte; a ``--set`` value that is no TOML is a bare string).
    """
    if len(text) > MAX_TOML_BYTES:
        raise AliceError(f"{where} is larger than {size_text(MAX_TOML_BYTES)}; ALICE reads no such file")
    text = text.decode("utf-8") if isinstance(text, bytes) else text  # not UTF-8: the caller words it
    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise _too_deep(where, limit) from None
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as exc:  # an integer of more digits than Python converts
        raise AliceError(f"{where} is not valid TOML ({str(exc).splitlines()[0]})") from None
    if _deeper_than(value, limit):
        raise _too_deep(where, limit)
    return value


def hidden_sibling(path: Path, suffix: str) -> Path:
    """``dir/.name<suffix>`` (a name already hidden keeps its one leading dot)."""
    name = path.name if path.name.startswith(".") else f".{path.name}"
    return path.with_name(name + suffix)


def json_text(data: Any) -> str:
    """How ALICE writes every JSON file: two-space indents, keys in insertion order, a final newline."""
    return json.dumps(data, indent=2) + "\n"


# --------------------------------------------------------------------------- leftovers and recovery


def _leftover(final: Path, kind: str) -> Path:
    """``.<name>.<kind>-<pid>`` beside ``final``: a hidden name this process owns."""
    return hidden_sibling(final, f".{kind}-{os.getpid()}")


def _alive(pid: int | None) -> bool:
    if pid is None:  # written by an ALICE that put no process id in its names: long gone
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _leftovers(final: Path) -> list[tuple[str, int | None, Path]]:
    """(kind, pid, path) of every hidden name a writer of ``final`` may have left beside it."""
    base = final.name if final.name.startswith(".") else f".{final.name}"
    pattern = re.compile(re.escape(base) + r"\.(tmp|partial|old|removed)(?:-(\d+))?(?:-\w+|\w*)?$")
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return []
    out = []
    for entry in entries:
        m = pattern.match(entry.name)
        if m:
            kind, pid = m.group(1), m.group(2)
            if kind == "partial" and pid is not None and not re.match(rf"{re.escape(base)}\.partial-\d+-", entry.name):
                pid = None  # an older ALICE's random suffix that happens to be digits
            out.append((kind, int(pid) if pid else None, Path(entry.path)))
    return out


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def recover(final: Path) -> list[str]:
    """Put right what a killed writer of ``final`` left; returns what was done (one phrase each).

    A ``.old`` folder whose ``final`` is missing is the previous artifact of a
    writer killed between its two renames: it is renamed back. Every other
    leftover of a process that is no longer running is removed. Problems (a
    read-only folder, say) are left for the writer to report.
    """
    final = Path(final)
    done = []
    dead = [(k, p) for k, pid, p in _leftovers(final) if not _alive(pid)]
    for kind, path in sorted(dead, key=lambda kp: kp[0] != "old"):  # olds first: one may have to go back
        try:
            if kind == "old" and not final.exists() and not final.is_symlink():
                os.rename(path, final)
                done.append(f"restored {final} from an interrupted replacement")
            else:
                _delete(path)
                done.append(f"removed {path.name}")
        except OSError:
            continue
    return done


@contextmanager
def no_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT, SIGTERM) until the block ends: a few renames are never split by one."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, OSError, ValueError):  # no POSIX signal masks here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# --------------------------------------------------------------------------- files


@contextmanager
def atomic_file(path: Path, writer: str = "file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, it replaces ``path``.

    For writers that want a file name (safetensors, tarfile); on an error the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    recover(path)
    tmp = _leftover(path, "tmp")
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)  # some writers (safetensors) create files private
        crash_point(writer, f"{path.name}: temporary file written")
        with no_interrupts():
            os.replace(tmp, path)
        crash_point(writer, f"{path.name}: renamed into place")
    finally:
        tmp.unlink(missing_ok=True)


def write_file(path: Path, content: bytes | str, writer: str = "file") -> None:
    """Write ``content`` (bytes, or text as UTF-8) to ``path`` atomically."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_file(path, writer) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, data: Any, writer: str = "file") -> None:
    write_file(path, json_text(data), writer)


def content_bytes(value: bytes | str | dict | list) -> bytes:
    """A file's bytes from bytes, text (UTF-8) or a JSON-able value (written as :func:`json_text`)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json_text(value).encode("utf-8")


# --------------------------------------------------------------------------- folders


@contextmanager
def staging_folder(final: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``final``, removed again if the block raises."""
    final = Path(final)
    make_folder(final.parent)
    recover(final)
    prefix = _leftover(final, "partial").name + "-"
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_folder(staging: Path, final: Path, writer: str = "folder") -> None:
    """Put a complete staging folder at ``final``, replacing what is there.

    Two renames: ``final`` to ``.<name>.old-<pid>``, then ``staging`` to
    ``final``; the old folder is removed last. Between the renames there is no
    folder at ``final``: a process killed there leaves the ``.old``, which
    :func:`recover` renames back. Ctrl-C waits until both renames are done.
    """
    staging, final = Path(staging), Path(final)
    os.chmod(staging, FOLDER_MODE)  # mkdtemp made it private
    old = _leftover(final, "old")
    crash_point(writer, f"{final.name}: staged")
    with no_interrupts():
        moved = final.exists()
        if moved:
            os.rename(final, old)
            crash_point(writer, f"{final.name}: old moved aside")
        os.rename(staging, final)
        crash_point(writer, f"{final.name}: new in place")
    if moved:
        _remove_tree(old, writer)


def _remove_tree(path: Path, writer: str) -> None:
    """Delete a folder no one reads any more (a crash half-way is cleaned up by :func:`recover`)."""
    first = next((p for p in sorted(path.rglob("*")) if p.is_file() or p.is_symlink()), None)
    if first is not None:
        first.unlink()
        crash_point(writer, f"{path.name}: one file removed")
    shutil.rmtree(path, ignore_errors=True)
    crash_point(writer, f"{path.name}: removed")


def remove_folder(path: Path, writer: str = "folder") -> None:
    """Remove a folder so that it is gone at once: renamed to ``.<name>.removed-<pid>`` first, then deleted."""
    path = Path(path)
    if not path.exists():
        return
    gone = _leftover(path, "removed")
    with no_interrupts():
        os.rename(path, gone)
    crash_point(writer, f"{path.name}: moved out of the way")
    _remove_tree(gone, writer)


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (flock on the folder itself) while the block runs.

    Writers of a reference space lock the folder that holds it, so two
    processes never publish versions of one space at the same moment. The lock
    goes with the process: a killed writer holds nothing.
    """
    try:
        import fcntl
    except ImportError:  # no flock here: writers run unserialised
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- sizes and limits

GiB = 1 << 30


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


def size_text(n: int) -> str:
    """``17179869184`` -> ``16.0 GiB``."""
    for unit, scale in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", GiB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def memory_bytes(available: bool = True) -> int:
    """This machine's memory: what is available for new allocations now (``MemAvailable``), or all of it."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if available:
        with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return min(total, int(line.split()[1]) * 1024)
    return total


def parse_size(text: str) -> int:
    """``"16G"``, ``"512MiB"``, ``"1000000"``: a size in bytes (K, M, G, T are powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", str(text).lower())
    if not m:
        raise AliceError(f"a size is a number of bytes with an optional K, M, G or T (e.g. 16G), got {text!r}")
    return int(float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2) or "_"))


# --------------------------------------------------------------------------- before writing


def make_folder(folder: Path) -> None:
    """``mkdir -p`` with one-line errors (a file in the way, a read-only parent)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise AliceError(f"cannot make folder {folder}: a file of that name is in the way") from None
    except NotADirectoryError:
        raise AliceError(f"cannot make folder {folder}: part of that path is a file") from None
    except OSError as exc:
        raise AliceError(f"cannot make folder {folder}: {exc.strerror or exc}") from None


def check_writable(path: Path) -> None:
    """Refuse, before any work, to write ``path`` where that cannot succeed (read-only folder, a file in the way)."""
    path = Path(path).absolute()
    probe = path.parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise AliceError(f"cannot write {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise AliceError(f"cannot write {path}: {probe} is read-only ({os.strerror(errno.EACCES)})")


def refuse_to_replace(
    path: Path, overwrite: bool, kind: str, recognise: Callable[[Path], bool], folder: bool = True
) -> None:
    """Before any work: ``path`` may be replaced only with ``overwrite``, and only if it is an ALICE ``kind``.

    ``recognise(path)`` says whether an existing path is one ALICE wrote (a
    reference folder, an index file, ...); an empty folder is always fine to
    replace. Anything else, a user's own folder above all, is refused in one line.
    """
    path = Path(path)
    recover(path.absolute())  # a replacement killed half-way: the previous one goes back before anything is decided
    if not path.exists() and not path.is_symlink():
        check_writable(path)
        return
    if path.is_symlink():
        raise AliceError(f"{path} is a symbolic link; give the {kind} a path of its own")
    if folder and not path.is_dir():
        raise AliceError(f"{path} is a file, not an ALICE {kind} folder; choose another path")
    if not folder and path.is_dir():
        raise AliceError(f"{path} is a folder; give the {kind} a file name")
    if not overwrite:
        raise AliceError(f"{path} already exists; pass --overwrite to replace it")
    if folder and not any(path.iterdir()):
        check_writable(path)
        return
    if not recognise(path):
        raise AliceError(
            f"{path} is not an ALICE {kind}; --overwrite replaces only an ALICE {kind}"
            f"{' (or an empty folder)' if folder else ''}: choose another path"
        )
    check_writable(path)
