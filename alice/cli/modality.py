"""``alice modality``: add a modality to a frozen reference space."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from alice import console
from alice.cli.options import CheckpointEvery, Device, Json, Overrides, Overwrite, Resume, Steps, recipe_overrides

app = typer.Typer(help="Add modalities to a reference space.", no_args_is_help=True)


@app.command("add")
def add(
    modality: str = typer.Argument(..., help="Modality to add, e.g. text."),
    reference: Path = typer.Option(..., "--reference", "-r", help="Reference folder."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Recipe name or TOML path (default: <reference family>-<modality>)."),
    name: Optional[str] = typer.Option(None, "--name", help="Adapter name (default: the modality)."),
    overwrite: bool = Overwrite,
    steps: Optional[int] = Steps,
    device: Optional[str] = Device,
    sets: Optional[List[str]] = Overrides,
    resume: bool = Resume,
    checkpoint_every: Optional[int] = CheckpointEvery,
    as_json: bool = Json,
) -> None:
    """Train only this modality's encoder and decoder against the frozen C_ref and M_ref."""
    from alice.artifacts import REFERENCE_MANIFEST, _read_manifest
    from alice.build import add_modality
    from alice.errors import AliceError
    from alice.recipes import load_recipe, modality_recipe_for

    if recipe is None:
        if not reference.is_dir():
            raise AliceError(f"reference folder {reference} does not exist")
        family = _read_manifest(reference / REFERENCE_MANIFEST, "reference").get("family", "")
        recipe = modality_recipe_for(family, modality)
    r = load_recipe(recipe, recipe_overrides(steps, sets, checkpoint_every))
    if r.modality != modality:
        raise AliceError(f"recipe {r.name!r} adds modality {r.modality!r}, not {modality!r}")
    path = add_modality(reference, r, name=name, overwrite=overwrite, device_name=device, resume=resume)
    if as_json:
        import json

        console.print_json({"path": str(path), "manifest": json.loads((path / "adapter.json").read_text())["metrics"]})


@app.command("list")
def list_modalities(as_json: bool = Json) -> None:
    """List modality recipes (what `alice modality add` can use)."""
    from alice.recipes import list_recipes

    rows = [{"name": r.name, "family": r.family, "modality": r.modality, "dataset": r.data.dataset, "backbone": r.backbone.name, "description": r.description} for r in list_recipes("modality")]
    if as_json:
        console.print_json({"recipes": rows})
        return
    console.table("Modality recipes (alice modality add MODALITY --reference PATH)", ["name", "family", "modality", "data set", "backbone", "description"],
                  [tuple(r.values()) for r in rows])
