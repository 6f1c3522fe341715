"""The evaluation tables, built once from an ``eval.json`` report; console, HTML report and model card render them.

Plain Python (no torch): the model card and ``alice eval --json`` consumers
read the same report without loading any ML library.
"""

from __future__ import annotations

from typing import Any

from alice.tables import Table

TABLE1 = "Table 1: classification and interventions (test split)"
TABLE1_COLUMNS = [
    "modality",
    "n",
    "classes",
    "AUROC",
    "bal. acc",
    "min bal. acc",
    "changed",
    "unchanged",
    "changed (direct)",
    "unchanged (direct)",
]
TABLE1_NOTE = (
    "classification: mean AUROC and balanced accuracy over classes, thresholds by Youden's J on the validation split; "
    'interventions: random "replace i with j" edits scored against the edited labels on entries right before the edit, '
    "changed = accuracy on the two edited classes, unchanged = balanced accuracy on the others, read as "
    "C(E(D(M(z)))) as trained, "
    "direct as C(M(z)); post-training: concept algebra edits read by a plain classifier"
)

TABLE2 = "Table 2: cross-modal retrieval (test split)"
TABLE2_COLUMNS = [
    "query → gallery",
    "method",
    "pairs",
    "gallery",
    "classes",
    "label exact",
    "label superset",
    "R@1",
    "R@5",
    "R@10",
]
TABLE2_NOTE = (
    "query in one modality, the whole test gallery in another; label exact: the top-1 item has exactly the query's "
    "label set, superset: at least it; R@k: a paired item in the top k"
)

TABLE3 = "Table 3: counterfactual search (test split)"
TABLE3_COLUMNS = [
    "query → gallery",
    "queries",
    "gallery",
    "classes",
    "edited labels exact",
    "plain search",
    "ratio",
    "swap found",
    "plain swap",
]
TABLE3_NOTE = (
    "each test query edited by M_ref (replace a class it holds with one it lacks), then the top-1 item of the other "
    "modality's test split; exact: its labels equal the edited label set; swap: it holds the new class and not the "
    "old; "
    "plain: the unedited query's top-1, scored against the same edited set; mean over seeds"
)


def _scored(classes: Any, key: str) -> str | None:
    """``"7 of 10"``: the classes a row's scores cover (None for a report written before they were recorded)."""
    if not isinstance(classes, dict) or key not in classes:
        return None
    return f"{classes[key]} of {classes.get('of', '?')}"


def _annotation_note(report: dict[str, Any]) -> str:
    """Which classes each modality leaves unannotated: they are never scored (nor predicted)."""
    parts = []
    for name, r in (report.get("modalities") or {}).items():
        missing = (r.get("classes") or {}).get("not_annotated")
        if missing:
            parts.append(f"{name}: {', '.join(missing)}")
    if parts:
        return "; classes not annotated, hence not scored: " + "; ".join(parts)
    known = [r.get("classes") for r in (report.get("modalities") or {}).values() if r.get("classes")]
    return f"; every modality annotates all {known[0]['of']} classes" if known else ""


def _within_note(report: dict[str, Any]) -> str:
    """Which pairs of adapters read one data set, and are left out of Tables 2 and 3 (no cross-modal pair)."""
    pairs = [f"{p.get('a')} and {p.get('b')} ({p.get('dataset')})" for p in report.get("within_data_set") or []]
    if not pairs:
        return ""
    return "; left out, as each reads the same data set as the other (no cross-modal pair): " + "; ".join(pairs)


BOTH_NOTE = "; classes: those both modalities annotate, the only ones label scores count"
TABLE4 = "Table 4: the modality gap (test split)"
TABLE4_COLUMNS = [
    "modalities",
    "latents",
    "mean distance",
    "cos of means",
    "own neighbours (a)",
    "chance (a)",
    "own neighbours (b)",
    "chance (b)",
]
TABLE4_NOTE = (
    "a, b: the two modalities; mean distance: between their mean test latents (0: the clouds share a centre); "
    "own neighbours: over each modality's items, the share of their 10 nearest neighbours in the mixed gallery of "
    "both that are of their own modality (1: one cloud per modality; chance: modalities mixed through and through); "
    "latents: as search compares them, and as C_ref reads them where an adapter transforms its search latents"
)


def _seeds(report: dict[str, Any]) -> int | None:
    return next((r.get("interventions_cycle", {}).get("seeds") for r in report.get("modalities", {}).values()), None)


def classification_table(report: dict[str, Any]) -> Table:
    rows = []
    for name, r in (report.get("modalities") or {}).items():
        c, ic, idir = r.get("classification", {}), r.get("interventions_cycle", {}), r.get("interventions_direct", {})
        rows.append(
            [
                name,
                r.get("samples"),
                _scored(r.get("classes"), "annotated"),
                c.get("auroc"),
                c.get("balanced_accuracy"),
                c.get("balanced_accuracy_min"),
                ic.get("changed"),
                ic.get("unchanged"),
                idir.get("changed"),
                idir.get("unchanged"),
            ]
        )
    for label, b in (report.get("baselines") or {}).items():
        c, i = b.get("classification", {}), b.get("interventions", {})
        rows.append(
            [
                f"{b.get('modality', '?')} ({label})",
                b.get("samples"),
                _scored(b.get("classes"), "annotated"),
                c.get("auroc"),
                c.get("balanced_accuracy"),
                c.get("balanced_accuracy_min"),
                None,
                None,
                i.get("changed"),
                i.get("unchanged"),
            ]
        )
    seeds = _seeds(report)
    note = TABLE1_NOTE + (f"; mean over {seeds} seeds" if seeds else "") + _annotation_note(report)
    return Table(TABLE1, TABLE1_COLUMNS, rows, note)


def _rows(items: list[dict[str, Any]] | None, first, keys: tuple[str, ...]) -> list[list[Any]]:
    """One row per item: ``first(item)``, then the item's values of ``keys`` (None where absent)."""
    return [[first(r), *(r.get(k) for k in keys)] for r in items or []]


def retrieval_table(report: dict[str, Any]) -> Table:
    rows = [
        [
            f"{r.get('query')} → {r.get('gallery')}",
            r.get("method"),
            r.get("pairs"),
            r.get("gallery_size"),
            _scored(r.get("classes"), "both_annotate"),
            r.get("label_exact"),
            r.get("label_superset"),
            r.get("R@1"),
            r.get("R@5"),
            r.get("R@10"),
        ]
        for r in report.get("retrieval") or []
    ]
    return Table(
        TABLE2, TABLE2_COLUMNS, rows, TABLE2_NOTE + BOTH_NOTE + _within_note(report) + _annotation_note(report)
    )


def counterfactual_table(report: dict[str, Any]) -> Table:
    rows = []
    for r in report.get("counterfactual") or []:
        ratio = r.get("ratio")
        rows.append(
            [
                f"{r.get('query')} → {r.get('gallery')}",
                r.get("queries"),
                r.get("gallery_size"),
                _scored(r.get("classes"), "both_annotate"),
                r.get("counterfactual_exact"),
                r.get("plain_exact"),
                f"{ratio:.1f}x" if isinstance(ratio, (int, float)) else None,
                r.get("counterfactual_swap"),
                r.get("plain_swap"),
            ]
        )
    return Table(
        TABLE3, TABLE3_COLUMNS, rows, TABLE3_NOTE + BOTH_NOTE + _within_note(report) + _annotation_note(report)
    )


def gap_table(report: dict[str, Any]) -> Table:
    keys = ("space", "mean_distance", "mean_cosine", "own_neighbours_a", "chance_a", "own_neighbours_b", "chance_b")
    rows = _rows(report.get("gap"), lambda r: f"{r.get('a')} (a), {r.get('b')} (b)", keys)
    return Table(TABLE4, TABLE4_COLUMNS, rows, TABLE4_NOTE)


def evaluation_tables(report: dict[str, Any]) -> list[Table]:
    """Tables 1 to 4 of a report, each once; a table with no rows is left out."""
    tables = (classification_table(report), retrieval_table(report), counterfactual_table(report), gap_table(report))
    return [t for t in tables if t]
