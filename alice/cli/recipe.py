"""``alice recipe``: write a recipe for your own data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Json, Overrides, Overwrite
from alice.data.recipes import ProbeSpec

app = typer.Typer(help="Write recipes for your own data.", no_args_is_help=True)


@app.command("init")
def init(
    path: Path = typer.Argument(
        ...,
        help="Labelled data: a folder of images (labels.csv, or one subfolder per class), a CSV or JSON-lines file "
        "of texts, sound files with labels.csv, vectors (.npy, .safetensors, .parquet), or a datasets folder.",
    ),
    modality: Optional[str] = typer.Option(None, "--modality", help="The modality to read it as (or to name vectors)."),
    backbone: Optional[str] = typer.Option(
        None, "--backbone", help="The backbone, with no probe (default: the one a linear probe measures best)."
    ),
    models: Optional[list[str]] = typer.Option(
        None, "--model", help="A model folder (transformers, sentence-transformers) to measure too (repeatable)."
    ),
    candidates: Optional[str] = typer.Option(
        None,
        "--candidates",
        help="The backbones to compare, comma-separated (default: every installed one that reads the data).",
    ),
    probe_items: int = typer.Option(
        ProbeSpec.items, "--probe-items", help="Training items the probe measures each backbone on."
    ),
    reference: Optional[Path] = typer.Option(
        None,
        "--reference",
        "-r",
        help="Write a modality recipe for this reference folder (default: a reference recipe).",
    ),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="The data set that reads it (default: the first that does)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Recipe file to write (default: <name>.toml here)."),
    sets: Optional[list[str]] = Overrides,
    overwrite: bool = Overwrite,
    as_json: bool = Json,
) -> None:
    """Inspect a folder or file of labelled data and write a commented recipe that builds as it is."""
    from alice.data.scaffold import recipe_name, scaffold
    from alice.errors import AliceError
    from alice.files import write_file

    target = out or Path(f"{recipe_name(path)}.toml")
    if target.suffix != ".toml":
        raise AliceError(f"--out {target}: a recipe file ends in .toml")
    if target.exists() and not overwrite:
        raise AliceError(f"{target} already exists; pass --overwrite to replace it")
    ref = None
    if reference is not None:
        from alice.artifacts.describe import adapter_names, free_adapter_name
        from alice.artifacts.manifests import read_reference_manifest

        if not reference.is_dir():
            raise AliceError(f"reference folder {reference} does not exist")
        m = read_reference_manifest(reference)
        ref = {
            "path": str(reference),
            "name": m.name,
            "family": m.family,
            "vocabulary": m.vocabulary,
            # an adapter name the space already has -> the --name a new adapter of that modality takes
            "renamed": {n: free_adapter_name(reference, n) for n in adapter_names(reference)},
        }
    if probe_items < 10:
        raise AliceError(f"--probe-items must be at least 10, got {probe_items}")
    only = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    found = scaffold(
        path,
        target.stem,
        modality=modality,
        backbone=backbone,
        dataset=dataset,
        reference=ref,
        overrides=sets,
        models=models,
        candidates=only,
        probe=ProbeSpec(items=probe_items),
    )
    write_file(target, found.text)
    if as_json:
        console.print_json(
            {
                "recipe": str(target),
                "dataset": found.dataset,
                "modality": found.modality,
                "vocabulary": found.vocabulary,
                "counts": found.counts,
                "dropped": found.dropped,
                "adapter": found.adapter,
                "backbone": found.raw["backbone"],
                "probe": found.probe.to_json() if found.probe else None,
            }
        )
        return
    if found.probe:
        console.table(found.probe.table())
    stage = "modality" if ref else "reference"
    console.info(
        f"wrote {target}: a {stage} recipe, data set {found.dataset} ({found.modality}), "
        f"{len(found.vocabulary)} labels, " + ", ".join(f"{s} {n:,}" for s, n in found.counts.items())
    )
    if found.dropped:
        console.warn(
            f"{len(found.dropped)} label(s) not in the reference are dropped ({', '.join(found.dropped[:8])}): "
            f'aliased to "" in {target}; map them there instead if they have a counterpart'
        )
    if ref:
        hint = f"alice modality add {found.modality} --reference {reference} --recipe {target}"
        if found.adapter != found.modality:
            console.info(
                f"{reference} already has an adapter {found.modality!r}: this one is added as {found.adapter!r}"
            )
            hint += f" --name {found.adapter}"
    else:
        hint = f"alice reference build {target} --out artifacts/{target.stem}"
    console.info(f"next: {hint}")
