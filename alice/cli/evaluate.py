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
    seed: int = typer.Option(
        EVAL_DEFAULTS.seed, "--seed", help="Seed of the no-training baseline's random encoders (each pair's own)."
    ),
    pair_steps: int = typer.Option(
        PAIRED_DEFAULTS.steps, "--pair-steps", min=1, help="Training steps of each --pairs method."
    ),
    sets: Optional[list[str]] = typer.Option(
        None,
        "--set",
        help="Score on other data set options for val and test: data.KEY=VALUE (repeatable, e.g. data.max_digits=9); "
        "eval.json and the model card are then left as they are.",
    ),
    device: Optional[str] = Device,
    expect_digest: Optional[str] = ExpectDigest,
    as_json: bool = Json,
) -> None:
    """Evaluate each adapter (classification, interventions) and pair (retrieval); write eval.json, update README.md."""
    from alice.artifacts.store import ReferenceSpace
    from alice.data.recipes import data_overrides
    from alice.distributed import pick_device
    from alice.evaluation.baselines import post_training_baseline
    from alice.evaluation.run import evaluate, save_evaluation
    from alice.evaluation.tables import evaluation_tables

    shifted = data_overrides(sets or [])
    ref = ReferenceSpace.load(path, expect_digest)
    spec = EvalSpec(
        device=device or EVAL_DEFAULTS.device,
        seeds=seeds,
        seed=seed,
        pairs=pairs,
        paired=PairedSpec(steps=pair_steps),
        data=shifted,
    )
    report = evaluate(ref, spec)
    if baselines:
        baseline = post_training_baseline(ref, pick_device(spec.device), seeds, shifted)
        report["baselines"] = {"post-training": baseline}
    # the model card's evaluation section shows the space on its own data: a shifted evaluation only prints
    written = save_evaluation(ref, report) if not shifted else None
    if as_json:
        console.print_json(report)
        return
    for table in evaluation_tables(report):
        console.table(table)
    if written is not None:
        console.info(f"wrote {written}")
    else:
        options = ", ".join(f"{k}={v!r}" for k, v in shifted.items())
        console.info(f"val and test splits with data set options {options}; eval.json left as it is")
