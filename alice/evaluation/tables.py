"""Rows of the evaluation tables from an ``eval.json`` report, shared by the CLI, the model card and the report.

Plain Python only (no torch), so the model card can use it without loading ML libraries.
"""

from __future__ import annotations

from typing import Any

COUNTERFACTUAL_TITLE = "Table 3: counterfactual search"
COUNTERFACTUAL_COLUMNS = ["query → gallery", "queries", "gallery", "edited labels exact", "plain search", "ratio", "swap found", "plain swap"]
COUNTERFACTUAL_NOTE = (
    "each test query edited by M_ref (replace a class it holds with one it lacks), then the top-1 item of the other "
    "modality's test split; exact: its labels equal the edited label set; swap: it holds the new class and not the old; "
    "plain: the unedited query's top-1, scored against the same edited set; mean over seeds"
)


def counterfactual_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per (query, gallery) pair of Table 3, in ``COUNTERFACTUAL_COLUMNS`` order."""
    rows = []
    for r in report.get("counterfactual") or []:
        ratio = r.get("ratio")
        rows.append([f"{r.get('query')} → {r.get('gallery')}", r.get("queries"), r.get("gallery_size"), r.get("counterfactual_exact"),
                     r.get("plain_exact"), f"{ratio:.1f}x" if isinstance(ratio, (int, float)) else "–", r.get("counterfactual_swap"),
                     r.get("plain_swap")])
    return rows
