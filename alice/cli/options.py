"""Options shared by several commands, each declared once."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Optional

import typer

Steps = typer.Option(None, "--steps", help="Override training.steps.")
Device = typer.Option(None, "--device", help="cpu, cuda, cuda:N or auto (default: the recipe's).")
Overrides = typer.Option(None, "--set", help="Override a recipe field: section.key=value (repeatable).")
Overwrite = typer.Option(False, "--overwrite", help="Replace an existing artifact.")
Json = typer.Option(False, "--json", help="Print JSON.")
Resume = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint.")
CheckpointEvery = typer.Option(None, "--checkpoint-every", help="Save a resumable checkpoint every N steps (0: never).")
Trackers = typer.Option(
    None, "--tracker", help="Report the run to this tracker as it goes (repeatable; `alice plugins list` names them)."
)
LogDir = typer.Option(
    None, "--log-dir", help="Folder the trackers log under; alone, it logs TensorBoard event files there."
)
ExpectDigest = typer.Option(
    None,
    "--expect-digest",
    help="Refuse the space unless its digest is this one (64 hex digits, as `alice reference show` prints).",
)


@dataclass
class RunOptions:
    """What every training command takes besides its recipe (`reference build`, `modality add`)."""

    overwrite: bool = False
    steps: Optional[int] = None
    device: Optional[str] = None
    sets: Optional[list[str]] = None
    resume: bool = False
    checkpoint_every: Optional[int] = None
    as_json: bool = False
    trackers: Optional[list[str]] = None
    log_dir: Optional[str] = None

    def overrides(self) -> list[str]:
        """The recipe overrides these options stand for: every --set, then --steps, --checkpoint-every, --tracker
        and --log-dir."""
        out = list(self.sets or [])
        if self.steps is not None:
            out.append(f"training.steps={self.steps}")
        if self.checkpoint_every is not None:
            out.append(f"training.checkpoint_every={self.checkpoint_every}")
        if self.trackers:
            out.append(f"logging.trackers={json.dumps(list(self.trackers))}")
        if self.log_dir is not None:
            out.append(f"logging.dir={json.dumps(self.log_dir)}")
        return out


_RUN_OPTIONS = {
    "overwrite": (bool, Overwrite),
    "steps": (Optional[int], Steps),
    "device": (Optional[str], Device),
    "sets": (Optional[list[str]], Overrides),
    "resume": (bool, Resume),
    "checkpoint_every": (Optional[int], CheckpointEvery),
    "as_json": (bool, Json),
    "trackers": (Optional[list[str]], Trackers),
    "log_dir": (Optional[str], LogDir),
}
assert set(_RUN_OPTIONS) == {f.name for f in fields(RunOptions)}


def training_run(command: Callable) -> Callable:
    """Give a command the options of a training run; it receives them together as ``run: RunOptions``."""
    signature = inspect.signature(command)
    own = [p for p in signature.parameters.values() if p.name != "run"]
    shared = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o, annotation=t)
        for n, (t, o) in _RUN_OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(**kwargs):
        run = RunOptions(**{name: kwargs.pop(name) for name in _RUN_OPTIONS})
        return command(**kwargs, run=run)

    wrapper.__signature__ = signature.replace(parameters=[*own, *shared])
    wrapper.__annotations__ = {k: v for k, v in command.__annotations__.items() if k != "run"} | {
        n: t for n, (t, _) in _RUN_OPTIONS.items()
    }
    return wrapper
