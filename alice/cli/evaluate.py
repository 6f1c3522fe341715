"""``alice eval``: the paper's Tables 1 and 2 (and Table 3, counterfactual search) for a reference space."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Device, ExpectDigest, Json
from alice.evaluation.specs import EVAL_DEFAULTS, PAIRED_DEFAULTS, EvalSpec, PairedSpec


def eval_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    seeds: int = typer.Option(EVAL_DEFAULTS.seeds, "--seeds", min=1, help="Random intervention draws to average over."),
    baselines: bool = typer.Option(
        False, "--baselines", help="Also train and score the post-training baseline (concept algebra) in Table 1."
    ),
    pairs: Optional[int] = typer.Option(
        None, "--pairs", min=1, help="Also train CLIP, CyCLIP and ALICE then CLIP on N pairs and add them to Table 2."
    ),
    pair_steps: int = typer.Option(
        PAIRED_DEFAULTS.steps, "--pair-steps", min=1, help="Training steps of each --pairs method."
    ),
    device: Optional[str] = Device,
    expect_digest: Optional[str] = ExpectDigest,
    as_json: bool = Json,
) -> None:
    """Evaluate each adapter (classification, interventions) and pair (retrieval); write eval.json, update README.md."""
    from alice.artifacts.store import ReferenceSpace
    from alice.distributed import pick_device
    from alice.evaluation.baselines import post_training_baseline
    from alice.evaluation.run import evaluate, save_evaluation
    from alice.evaluation.tables import evaluation_tables

    ref = ReferenceSpace.load(path, expect_digest)
    spec = EvalSpec(
        device=device or EVAL_DEFAULTS.device, seeds=seeds, pairs=pairs, paired=PairedSpec(steps=pair_steps)
    )
    report = evaluate(ref, spec)
    if baselines:
        report["baselines"] = {"post-training": post_training_baseline(ref, pick_device(spec.device), seeds)}
    written = save_evaluation(ref, report)  # the model card's evaluation section now shows these tables
    if as_json:
        console.print_json(report)
        return
    for table in evaluation_tables(report):
        console.table(table)
    console.info(f"wrote {written}")
