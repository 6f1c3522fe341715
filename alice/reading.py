"""Reading what others wrote: JSON and TOML bounded in size and nesting before anything trusts them, and sizes
as a person reads and writes them (``16.0 GiB``, ``--max-size 64G``).

Every manifest, record, recipe and ``--set`` value ALICE reads goes through :func:`parse_json`,
:func:`read_json` or :func:`parse_toml`: a file too large or too deeply nested is one line naming
it, never a ``RecursionError`` or a memory spike. Writing is :mod:`alice.files`'s job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

import tomllib

from alice.errors import AliceError

# --------------------------------------------------------------------------- JSON and TOML

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


# --------------------------------------------------------------------------- sizes

GiB = 1 << 30


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
