"""One place for everything ALICE prints: tables, progress bars, status lines, JSON.

Tables and JSON go to stdout (what a script reads); progress and status lines
go to stderr, so ``alice eval PATH --json | jq`` stays clean.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable

from alice.tables import Table, cell

out = Console(soft_wrap=True)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out = Console(soft_wrap=True, width=160)  # logs and pipes: room for the wide eval tables
err = Console(stderr=True, soft_wrap=True)


def _quiet() -> bool:
    """Under torchrun only rank 0 prints status, progress, tables and JSON (warnings and errors: every rank)."""
    return os.environ.get("RANK", "0") not in ("", "0")


def info(message: str) -> None:
    """Print a status line (stderr)."""
    if not _quiet():
        err.print(message, highlight=False)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def error(message: str) -> None:
    # markup off: messages quote user paths and names that may contain brackets
    err.print(f"error: {message}", markup=False, highlight=False)


def print_json(data: Any) -> None:
    if _quiet():
        return
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def table(t: Table) -> None:
    """Print a table to stdout, its note as the caption."""
    if _quiet():
        return
    shown = RichTable(title=t.title, caption=t.note or None, title_justify="left", caption_justify="left")
    for c in t.columns:
        shown.add_column(c, overflow="fold")
    for row in t.rows:
        shown.add_row(*(cell(v) for v in row))
    out.print(shown)


def duration_text(seconds: float) -> str:
    """``12`` -> ``12 s``, ``4000`` -> ``1 h 7 min``, ``1e6`` -> ``11 days 14 h``."""
    s = int(round(seconds))
    for unit, size, sub, sub_size in (("days", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if s >= size:
            return f"{s // size} {unit}" + (f" {s % size // sub_size} {sub}" if s % size >= sub_size else "")
    return f"{s} s"


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Task]:
    """A rich progress bar on stderr; ``task.advance(n)`` and ``task.note(text)``.

    Hidden when stderr is not a terminal, so logs and CI output stay readable;
    a single summary line is printed at the end instead.
    """
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal or _quiet(),
    )
    with bar:
        task = Task(bar, bar.add_task(description, total=total, note=""))
        yield task
    if not err.is_terminal or _quiet():
        info(f"{description}: done{(' ' + task.last_note) if task.last_note else ''}")


class Task:
    def __init__(self, bar: Progress, task_id: Any) -> None:
        self._bar, self._id, self.last_note = bar, task_id, ""

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._id, n)

    def note(self, text: str) -> None:
        self.last_note = text
        self._bar.update(self._id, note=text)
