"""The one table model: built once (by evaluation, by the CLI), rendered by the console, the report and the model card.

A renderer never decides what a table holds, only how it looks; every
renderer shows a cell through :func:`cell`, so a missing value, a NaN and a
float read the same everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: how every renderer shows a value that is absent, NaN or infinite
MISSING = "–"


@dataclass
class Table:
    """A titled table: ``columns`` name the cells of each row; ``note`` says how to read it."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""

    def __bool__(self) -> bool:
        return bool(self.rows)


def cell(value: Any, digits: int = 3) -> str:
    """A value as text: floats with ``digits`` decimals, missing values as ``MISSING``."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
