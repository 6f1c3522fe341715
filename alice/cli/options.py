"""Options shared by several commands."""

from __future__ import annotations

from typing import List, Optional

import typer

Steps = typer.Option(None, "--steps", help="Override training.steps.")
Device = typer.Option(None, "--device", help="cpu, cuda, cuda:N or auto (default: the recipe's).")
Overrides = typer.Option(None, "--set", help="Override a recipe field: section.key=value (repeatable).")
Overwrite = typer.Option(False, "--overwrite", help="Replace an existing artifact.")
Json = typer.Option(False, "--json", help="Print JSON.")


def recipe_overrides(steps: Optional[int], sets: Optional[List[str]], checkpoint_every: Optional[int] = None) -> list[str]:
    out = list(sets or [])
    if steps is not None:
        out.append(f"training.steps={steps}")
    if checkpoint_every is not None:
        out.append(f"training.checkpoint_every={checkpoint_every}")
    return out
Resume = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint.")
CheckpointEvery = typer.Option(None, "--checkpoint-every", help="Save a resumable checkpoint every N steps (0: never).")
