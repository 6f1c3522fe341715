"""``alice align`` and ``alice sweep``: paired fine-tuning and the sample-efficiency curve."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from alice import console
from alice.cli.options import Device

app = typer.Typer(help="Paired fine-tuning (CLIP, CyCLIP) of an ALICE space, or from scratch.", no_args_is_help=True)
sweep_app = typer.Typer(help="Sweeps over settings.", no_args_is_help=True)


def _names(reference, modalities: Optional[List[str]]) -> tuple[str, str]:
    from alice.errors import AliceError

    names = list(modalities or reference.adapter_names())
    if len(names) != 2:
        raise AliceError(f"name two modalities with --modality (the reference has {', '.join(reference.adapter_names())})")
    if names[0] == names[1]:
        raise AliceError(f"name two different modalities with --modality, not {names[0]!r} twice")
    return names[0], names[1]


@app.command("clip")
def align_clip(
    path: Path = typer.Argument(..., help="Reference folder with two adapters."),
    pairs: int = typer.Option(..., "--pairs", min=1, help="Number of pairs N, drawn at random (seeded) from the paired split."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the result: the reference unchanged, the two adapters fine-tuned."),
    scratch: bool = typer.Option(False, "--scratch", help="Train the same encoder architecture from scratch instead of from the ALICE encoders."),
    loss: str = typer.Option("clip", "--loss", help="clip, or cyclip (CLIP plus cyclic consistency)."),
    modality: Optional[List[str]] = typer.Option(None, "--modality", help="The two modalities (default: the two adapters)."),
    steps: int = typer.Option(1000, "--steps", min=1),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate from scratch; from ALICE it is 100x smaller."),
    batch_size: int = typer.Option(256, "--batch-size", min=2),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    device: Optional[str] = Device,
) -> None:
    """Fine-tune two modalities' encoders with the contrastive loss on N pairs (or train them from scratch)."""
    from alice.align import LOSSES, fine_tune, load_for_pairing, retrieval_both_ways
    from alice.artifacts import AdapterWeights, ReferenceSpace, now, write_derived_reference
    from alice.data import pick_device
    from alice.errors import AliceError

    if loss not in LOSSES:
        raise AliceError(f"unknown loss {loss!r} (known: {', '.join(LOSSES)})")
    if out.exists() and not overwrite:
        raise AliceError(f"{out} already exists; pass --overwrite to replace it")
    method = loss if scratch else f"alice+{loss}"
    ref = ReferenceSpace.load(path)
    names = _names(ref, modality)
    dev = pick_device(device or "auto")
    a, da = load_for_pairing(ref, names[0], dev)
    b, db = load_for_pairing(ref, names[1], dev)
    try:
        ea, eb, curve = fine_tune(method, a, b, da, db, ref.latent_dim, pairs, seed, steps, lr, batch_size)
    except ValueError as exc:
        raise AliceError(str(exc)) from None
    info = {"method": method, "pairs": pairs, "seed": seed, "steps": steps, "lr": lr / 100 if not scratch else lr,
            "batch_size": batch_size, "partner": None, "from_reference": ref.sha256, "created": now(), "loss_curve": curve}
    keep = ("format", "format_version", "alice_version", "name", "weights", "reference_sha256")
    adapters = []
    for adapter, encoder, partner in ((a, ea, names[1]), (b, eb, names[0])):
        manifest = {k: v for k, v in adapter.manifest.items() if k not in keep}
        manifest["alignment"] = {**info, "partner": partner}
        adapters.append(AdapterWeights(adapter.name, encoder.cpu(), adapter.decoder.cpu(), adapter.feature_mean, adapter.feature_std, manifest))
    write_derived_reference(ref, out, adapters, overwrite)
    results = retrieval_both_ways(ea.to(dev), eb.to(dev), da, db, names)
    console.table(f"{method}, {pairs} pairs: test retrieval", ["direction", "label exact", "R@1", "R@5", "R@10"],
                  [(d, r["label_exact"], r["R@1"], r["R@5"], r["R@10"]) for d, r in results.items()])
    console.info(f"wrote {out}")


@sweep_app.command("pairs")
def sweep_pairs(
    path: Path = typer.Argument(..., help="Reference folder with two adapters."),
    pairs: List[int] = typer.Option([100, 300, 1000, 3000, 10000, 20000], "--pairs", min=2, help="Numbers of pairs N (repeat the option)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds per N."),
    methods: List[str] = typer.Option(["clip", "alice+clip"], "--method", help="clip, cyclip, alice+clip, alice+cyclip (repeat)."),
    modality: Optional[List[str]] = typer.Option(None, "--modality", help="The two modalities (default: the two adapters)."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Training steps per run."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate from scratch; from ALICE it is 100x smaller."),
    batch_size: int = typer.Option(256, "--batch-size", min=2),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for sweep.json and sweep.png (default: <reference>-sweep beside the reference, which stays as verified)."),
    device: Optional[str] = Device,
) -> None:
    """R@1/5/10 against the number of pairs for each method, several seeds: JSON and a PNG plot."""
    from alice.align import METHODS, plot, summarise, sweep
    from alice.artifacts import ReferenceSpace, write_json_atomic
    from alice.data import pick_device
    from alice.errors import AliceError

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise AliceError(f"unknown method {bad[0]!r} (known: {', '.join(METHODS)})")
    ref = ReferenceSpace.load(path)
    names = _names(ref, modality)
    try:
        report = sweep(ref, names, sorted(set(pairs)), list(range(seeds)), methods, steps, lr, batch_size, pick_device(device or "auto"))
    except ValueError as exc:  # e.g. more pairs asked for than the paired split holds
        raise AliceError(f"--pairs: {exc}") from None
    report["summary"] = summarise(report)
    folder = out or ref.path.with_name(ref.path.name + "-sweep")
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "sweep.json", report)
    plot(report, folder / "sweep.png")
    rows = [(s["direction"], s["method"], s["pairs"], s["seeds"], s["label_exact"], f"{s['R@1']:.3f} ± {s['R@1_std']:.3f}", f"{s['R@5']:.3f}", f"{s['R@10']:.3f}") for s in report["summary"]]
    console.table("Sample efficiency (test split)", ["direction", "method", "pairs", "seeds", "label exact", "R@1", "R@5", "R@10"], rows)
    console.info(f"wrote {folder / 'sweep.json'} and {folder / 'sweep.png'} ({report['seconds']} s)")
