"""``alice modality``: add a modality to a frozen reference space."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Json, RunOptions, training_run
from alice.tables import Table

app = typer.Typer(help="Add modalities to a reference space.", no_args_is_help=True)


@app.command("add")
@training_run
def add(
    modality: str = typer.Argument(..., help="Modality to add, e.g. text."),
    reference: Path = typer.Option(..., "--reference", "-r", help="Reference folder."),
    recipe: Optional[str] = typer.Option(
        None, "--recipe", help="Recipe name or TOML path (default: <reference family>-<modality>)."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Adapter name (default: the modality)."),
    *,
    run: RunOptions,
) -> None:
    """Train only this modality's encoder and decoder against the frozen C_ref and M_ref."""
    from alice.artifacts.describe import check_new_adapter
    from alice.artifacts.manifests import read_adapter_manifest, read_reference_manifest
    from alice.artifacts.space import read_record
    from alice.data.recipes import load_recipe, modality_recipe_for
    from alice.errors import AliceError

    check_new_adapter(reference, name or modality, run.overwrite)  # before torch and any model load
    if recipe is None:
        if not reference.is_dir():
            raise AliceError(f"reference folder {reference} does not exist")
        recipe = modality_recipe_for(read_reference_manifest(reference).family, modality)
    r = load_recipe(recipe, run.overrides())
    if r.modality != modality:
        raise AliceError(f"recipe {r.name!r} adds modality {r.modality!r}, not {modality!r}")
    from alice.train.jobs import add_modality

    path = add_modality(reference, r, name=name, overwrite=run.overwrite, device_name=run.device, resume=run.resume)
    if run.as_json:
        record = read_record(reference)
        console.print_json(
            {
                "path": str(path),
                "manifest": read_adapter_manifest(path).metrics,
                "digest": record.digest if record else None,
            }
        )


@app.command("list")
def list_modalities(as_json: bool = Json) -> None:
    """List modality recipes (what `alice modality add` can use)."""
    from alice.data.recipes import list_recipes
    from alice.plugin.manager import get_registry

    rows = [
        {
            "name": r.name,
            "family": r.family,
            "modality": r.modality,
            "dataset": r.data.dataset,
            "backbone": r.backbone.name,
            "plugin": get_registry().recipe_origin(r.source),  # whose recipe folder it is in
            "description": r.description,
        }
        for r in list_recipes("modality")
    ]
    if as_json:
        console.print_json({"recipes": rows})
        return
    console.table(
        Table(
            "Modality recipes (alice modality add MODALITY --reference PATH)",
            ["name", "family", "modality", "data set", "backbone", "plugin", "description"],
            [list(r.values()) for r in rows],
        )
    )
