"""``alice align`` and ``alice sweep``: paired fine-tuning and the sample-efficiency curve."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Device, LogDir, Trackers
from alice.config.evaluation import ALICE_LR_DIVISOR, DECODER_STEPS, LOSSES, METHODS, PairedSpec
from alice.config.evaluation import PAIRED_DEFAULTS as D
from alice.tables import Table

app = typer.Typer(help="Paired fine-tuning (CLIP, CyCLIP) of an ALICE space, or from scratch.", no_args_is_help=True)
sweep_app = typer.Typer(help="Sweeps over settings.", no_args_is_help=True)

LR_HELP = f"Learning rate from scratch; from ALICE it is {ALICE_LR_DIVISOR}x smaller."
HOLDOUT_HELP = (
    "From ALICE: share of the N pairs held out to keep the step with the lowest loss on them, the start included "
    "(0: train on all N, keep the last step)."
)
PATIENCE_HELP = "From ALICE: stop once the held-out loss has not improved for this many steps (0: never stop early)."
DECODER_HELP = (
    "From ALICE: steps to fit each tuned encoder's decoder again (the decoder alone, on stage 2's reconstruction "
    "loss and its consistency loss through C_ref and M_ref), so interventions read as before; default "
    f"{DECODER_STEPS}, or the adapter's own steps if fewer; 0 keeps the old decoders."
)
MARGIN_HELP = (
    "From ALICE: a step replaces the kept one only when the held-out loss falls by more than this many standard "
    "errors of its per-pair change (0: any fall)."
)


def _names(reference, modalities: Optional[list[str]]) -> tuple[str, str]:
    from alice.errors import AliceError

    names = list(modalities or reference.adapter_names())
    if len(names) != 2:
        raise AliceError(
            f"name two modalities with --modality (the reference has {', '.join(reference.adapter_names())})"
        )
    if names[0] == names[1]:
        raise AliceError(f"name two different modalities with --modality, not {names[0]!r} twice")
    return names[0], names[1]


@app.command("clip")
def align_clip(
    path: Path = typer.Argument(..., help="Reference folder with two adapters."),
    pairs: int = typer.Option(
        ..., "--pairs", min=1, help="Number of pairs N, drawn at random (seeded) from the paired split."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for the result: the reference unchanged, the two adapters fine-tuned."
    ),
    scratch: bool = typer.Option(
        False, "--scratch", help="Train the same encoder architecture from scratch instead of from the ALICE encoders."
    ),
    loss: str = typer.Option("clip", "--loss", help="clip, or cyclip (CLIP plus cyclic consistency)."),
    modality: Optional[list[str]] = typer.Option(
        None, "--modality", help="The two adapters to pair (default: the space's two adapters)."
    ),
    steps: int = typer.Option(D.steps, "--steps", min=1),
    lr: float = typer.Option(D.lr, "--lr", help=LR_HELP),
    batch_size: int = typer.Option(D.batch_size, "--batch-size", min=2),
    seed: int = typer.Option(D.seed, "--seed"),
    holdout: float = typer.Option(D.holdout, "--holdout", min=0.0, max=0.9, help=HOLDOUT_HELP),
    patience: int = typer.Option(D.patience, "--patience", min=0, help=PATIENCE_HELP),
    margin: float = typer.Option(D.margin, "--margin", min=0.0, help=MARGIN_HELP),
    decoder_steps: Optional[int] = typer.Option(None, "--decoder-steps", min=0, help=DECODER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    device: Optional[str] = Device,
    trackers: Optional[list[str]] = Trackers,
    log_dir: Optional[str] = LogDir,
) -> None:
    """Fine-tune two modalities' encoders with the contrastive loss on N pairs (or train them from scratch)."""
    from alice.artifacts.loaded import ReferenceSpace
    from alice.artifacts.publish import refuse_existing
    from alice.distributed import pick_device
    from alice.errors import AliceError
    from alice.evaluation.paired import align
    from alice.train.history import Trackers as Reporting

    if loss not in LOSSES:
        raise AliceError(f"unknown loss {loss!r} (known: {', '.join(LOSSES)})")
    if scratch and decoder_steps is not None:
        raise AliceError("--decoder-steps fits the decoders of encoders tuned from ALICE; --scratch keeps the old ones")
    refuse_existing(out, overwrite)
    reporting = Reporting.of(trackers or [], log_dir)  # an unknown tracker: refused before any work
    method = loss if scratch else f"alice+{loss}"
    ref = ReferenceSpace.load(path)
    names = _names(ref, modality)
    results = align(
        ref,
        names,
        method,
        pairs,
        PairedSpec(steps, lr, batch_size, seed, holdout, patience, margin),
        pick_device(device or "auto"),
        out,
        overwrite,
        reporting,
        decoder_steps,
    )
    console.table(
        Table(
            f"{method}, {pairs} pairs: test retrieval",
            ["direction", "label exact", "R@1", "R@5", "R@10"],
            [[d, r["label_exact"], r["R@1"], r["R@5"], r["R@10"]] for d, r in results.items()],
        )
    )
    console.info(f"wrote {out}")


@sweep_app.command("pairs")
def sweep_pairs(
    path: Path = typer.Argument(..., help="Reference folder with two adapters."),
    pairs: list[int] = typer.Option(
        [100, 300, 1000, 3000, 10000, 20000], "--pairs", min=2, help="Numbers of pairs N (repeat the option)."
    ),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds per N."),
    methods: list[str] = typer.Option(["clip", "alice+clip"], "--method", help=f"{', '.join(METHODS)} (repeat)."),
    modality: Optional[list[str]] = typer.Option(
        None, "--modality", help="The two adapters to pair (default: the space's two adapters)."
    ),
    steps: int = typer.Option(D.steps, "--steps", min=1, help="Training steps per run."),
    lr: float = typer.Option(D.lr, "--lr", help=LR_HELP),
    batch_size: int = typer.Option(D.batch_size, "--batch-size", min=2),
    holdout: float = typer.Option(D.holdout, "--holdout", min=0.0, max=0.9, help=HOLDOUT_HELP),
    patience: int = typer.Option(D.patience, "--patience", min=0, help=PATIENCE_HELP),
    margin: float = typer.Option(D.margin, "--margin", min=0.0, help=MARGIN_HELP),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Folder for sweep.json and sweep.png (default: <reference>-sweep beside the reference, left unchanged).",
    ),
    device: Optional[str] = Device,
) -> None:
    """R@1/5/10 against the number of pairs for each method, several seeds: JSON and a PNG plot."""
    from alice.artifacts.loaded import ReferenceSpace
    from alice.distributed import pick_device
    from alice.errors import AliceError
    from alice.evaluation.paired import plot, summarise, sweep
    from alice.files import write_json

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise AliceError(f"unknown method {bad[0]!r} (known: {', '.join(METHODS)})")
    ref = ReferenceSpace.load(path)
    names = _names(ref, modality)
    report = sweep(
        ref,
        names,
        sorted(set(pairs)),
        list(range(seeds)),
        methods,
        PairedSpec(steps, lr, batch_size, holdout=holdout, patience=patience, margin=margin),
        pick_device(device or "auto"),
    )
    report["summary"] = summarise(report)
    folder = out or ref.path.with_name(ref.path.name + "-sweep")
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "sweep.json", report)
    plot(report, folder / "sweep.png")
    rows = [
        [
            s["direction"],
            s["method"],
            s["pairs"],
            s["seeds"],
            s["label_exact"],
            f"{s['R@1']:.3f} ± {s['R@1_std']:.3f}",
            s["R@5"],
            s["R@10"],
        ]
        for s in report["summary"]
    ]
    console.table(
        Table(
            "Sample efficiency (test split)",
            ["direction", "method", "pairs", "seeds", "label exact", "R@1", "R@5", "R@10"],
            rows,
        )
    )
    console.info(f"wrote {folder / 'sweep.json'} and {folder / 'sweep.png'} ({report['seconds']} s)")
