"""``alice eval``: the paper's Table 1 and Table 2 for a reference space."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Device, Json


def eval_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    seeds: int = typer.Option(5, "--seeds", min=1, help="Random intervention draws to average over."),
    baselines: bool = typer.Option(False, "--baselines", help="Also train and score the post-training baseline (concept algebra) in Table 1."),
    pairs: Optional[int] = typer.Option(None, "--pairs", min=1, help="Also train CLIP, CyCLIP and ALICE then CLIP on N pairs and add them to Table 2."),
    pair_steps: int = typer.Option(1000, "--pair-steps", min=1, help="Training steps of each --pairs method."),
    device: Optional[str] = Device,
    as_json: bool = Json,
) -> None:
    """Evaluate every adapter (classification, interventions) and every pair (retrieval); write eval.json and update README.md."""
    from alice.artifacts import ReferenceSpace, write_json_atomic
    from alice.evaluation.run import evaluate

    ref = ReferenceSpace.load(path)
    report = evaluate(ref, device or "auto", seeds=seeds, pairs=pairs, pair_settings={"steps": pair_steps})
    if baselines:
        from alice.baselines import post_training_baseline
        from alice.data import pick_device

        report["baselines"] = {"post-training": post_training_baseline(ref, pick_device(device or "auto"), seeds)}
    write_json_atomic(ref.path / "eval.json", report)
    from alice.modelcard import write_reference_card

    write_reference_card(ref.path)  # the model card's evaluation section now shows these tables
    if as_json:
        console.print_json(report)
        return
    print_report(report)
    console.info(f"wrote {ref.path / 'eval.json'}")


def print_report(report: dict) -> None:
    rows = []
    for name, r in report["modalities"].items():
        c, ic, idir = r["classification"], r["interventions_cycle"], r["interventions_direct"]
        rows.append((name, r["samples"], c["auroc"], c["balanced_accuracy"], c["balanced_accuracy_min"], ic["changed"], ic["unchanged"], idir["changed"], idir["unchanged"]))
    for label, b in report.get("baselines", {}).items():
        c, i = b["classification"], b["interventions"]
        rows.append((f"{b['modality']} ({label})", b["samples"], c["auroc"], c["balanced_accuracy"], c["balanced_accuracy_min"], None, None, i["changed"], i["unchanged"]))
    console.table(
        "Table 1: classification and interventions (test split)",
        ["modality", "n", "AUROC", "bal. acc", "min bal. acc", "changed", "unchanged", "changed (direct)", "unchanged (direct)"],
        rows,
        caption="interventions: C(E(D(M(z)))) as trained; direct: C(M(z)); post-training: concept algebra edits read by a plain classifier; mean over seeds",
    )
    rows = []
    for r in report["retrieval"]:
        rows.append((f"{r['query']} -> {r['gallery']}", r["method"], r["pairs"], r["gallery_size"], r["label_exact"], r["label_superset"], r["R@1"], r["R@5"], r["R@10"]))
    if rows:
        console.table(
            "Table 2: cross-modal retrieval (test split)",
            ["query -> gallery", "method", "pairs", "gallery", "label exact", "label superset", "R@1", "R@5", "R@10"],
            rows,
        )
    from alice.evaluation.tables import COUNTERFACTUAL_COLUMNS, COUNTERFACTUAL_NOTE, COUNTERFACTUAL_TITLE, counterfactual_rows

    rows = counterfactual_rows(report)
    if rows:
        console.table(f"{COUNTERFACTUAL_TITLE} (test split)", COUNTERFACTUAL_COLUMNS, rows, caption=COUNTERFACTUAL_NOTE)
