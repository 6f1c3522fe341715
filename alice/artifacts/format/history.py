"""A training history: ``adapters/<name>/history.jsonl``, one JSON object per line.

A line with a ``"job"`` key starts a job (``reference build``, ``modality add``,
``align``): its settings (``name``, ``steps``, ``log_every``, ``eval_every``). The
lines after it are that job's points, in step order: ``step``, each loss term
(the running mean since the previous point), ``lr``, and at each ``eval_every``
(and the last step) the validation figures, named ``val_*``. An adapter that was
fine-tuned after it was trained holds both jobs, the first first.

Every value in the file follows from the recipe, the data and the seed alone, so
a run killed and resumed writes the same bytes as one never stopped (the seconds
and steps/s of a run are not: they live in the manifest's ``training`` record).
Torch-free: the report, the model card and ``alice reference show`` read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alice.errors import AliceError
from alice.reading import parse_json

#: what each point holds besides its loss terms and validation figures
STEP, LR = "step", "lr"
VAL_PREFIX = "val_"
#: the validation figure a job is judged by (higher is better), and the one used when it is missing
HEADLINE, FALLBACK = "val_auroc", "val_cls"
#: the most lines a history file may hold (a run of 100 million steps at the default spacing has about 250)
MAX_LINES = 1_000_000


@dataclass
class Job:
    """One training job's settings and its points."""

    settings: dict[str, Any]
    points: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        name = self.settings.get("name")
        return f"{self.settings.get('job', 'training')}{f' ({name})' if name else ''}"

    def keys(self, validation: bool) -> list[str]:
        """The loss terms (train) or the validation figures, in the order they first appear."""
        seen: dict[str, None] = {}
        for p in self.points:
            for k in p:
                if k not in (STEP, LR) and k.startswith(VAL_PREFIX) == validation:
                    seen[k] = None
        return list(seen)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """The steps at which ``key`` was recorded, and its values (missing and null values left out)."""
        pts = [(p[STEP], p[key]) for p in self.points if p.get(key) is not None]
        return [s for s, _ in pts], [v for _, v in pts]

    def headline(self) -> str | None:
        """The validation figure to show first: AUROC where recorded, else the val classification loss."""
        keys = self.keys(validation=True)
        return next((k for k in (HEADLINE, FALLBACK) if k in keys), keys[0] if keys else None)

    def final_and_best(self) -> dict[str, Any] | None:
        """The headline validation figure at the last step it was recorded, and its best value and step."""
        key = self.headline()
        if key is None:
            return None
        steps, values = self.series(key)
        if not values:
            return None
        pick = max if key == HEADLINE else min
        best = pick(range(len(values)), key=lambda i: values[i])
        return {
            "figure": key,
            "final": values[-1],
            "final_step": steps[-1],
            "best": values[best],
            "best_step": steps[best],
        }


def _clean(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be computed (a class with one outcome) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode(jobs: list[Job]) -> bytes:
    """The file's bytes: the same jobs always give the same bytes."""
    lines = []
    for job in jobs:
        lines.append(json.dumps({k: _clean(v) for k, v in job.settings.items()}, allow_nan=False))
        lines += [json.dumps({k: _clean(v) for k, v in p.items()}, allow_nan=False) for p in job.points]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def decode(data: bytes, where: str) -> list[Job]:
    """The jobs in a history file's bytes; anything malformed is refused naming ``where`` and the line."""
    jobs: list[Job] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AliceError(f"{where} is not UTF-8 text; rewrite it with ALICE or remove it") from None
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise AliceError(f"{where} has {len(lines):,} lines, more than the {MAX_LINES:,} a history may hold")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        value = parse_json(line, f"{where}, line {n}")
        if not isinstance(value, dict):
            raise AliceError(f"{where}, line {n}: a history line is a JSON object, got {type(value).__name__}")
        if "job" in value:
            jobs.append(Job(value))
        elif not jobs:
            raise AliceError(f"{where}, line {n}: a point before any job line")
        elif not isinstance(value.get(STEP), int) or not all(
            v is None or isinstance(v, (int, float)) for v in value.values()
        ):
            raise AliceError(f"{where}, line {n}: a point has an integer step and numbers only")
        else:
            jobs[-1].points.append(value)
    return jobs


def read(path: Path) -> list[Job]:
    """The jobs in the history file at ``path`` (none when there is no such file: a space from before histories)."""
    path = Path(path)
    if not path.is_file():
        return []
    return decode(path.read_bytes(), str(path))
