"""Recording a training job as it runs: the spacing of its points, its history file, its trackers.

Every training job (``alice reference build``, ``alice modality add``, ``alice align``,
each run of ``alice sweep pairs``) records a point every ``training.log_every`` steps
(:func:`log_every`: by default about :data:`LOG_POINTS` points a run). The points go
into the adapter's ``history.jsonl`` (:mod:`alice.artifacts.format.history`) and, as the run
goes, to the trackers the recipe's ``[logging]`` table or ``--tracker`` / ``--log-dir``
name (:class:`Trackers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alice import console, distributed
from alice.artifacts.format.history import Job, encode
from alice.artifacts.format.layout import CURVE_FILE, HISTORY_FILE
from alice.errors import AliceError
from alice.plugin.guard import describe
from alice.plugin.manager import get_registry
from alice.plugin.tracker import Run, Tracker

#: a run records about this many points when ``training.log_every`` is 0 (the default)
LOG_POINTS = 250


def log_every(t: Any) -> int:
    """Steps between two points of a run of ``t.steps`` steps (``t.log_every``, or about LOG_POINTS a run)."""
    return t.log_every if getattr(t, "log_every", 0) else max(1, t.steps // LOG_POINTS)


def job_settings(job: str, name: str, steps: int, every: int, eval_every: int) -> dict[str, Any]:
    """A job's header line in ``history.jsonl``."""
    return {"job": job, "name": name, "steps": steps, "log_every": every, "eval_every": eval_every}


def history_record(points: int, every: int) -> dict[str, Any]:
    """What a manifest's training record says of the history: the files (beside the adapter's manifest), how many
    points and their spacing."""
    return {"file": HISTORY_FILE, "curve": CURVE_FILE, "points": points, "every": every}


def history_bytes(settings: dict[str, Any], points: list[dict[str, Any]], before: list[Job] = ()) -> bytes:
    """``history.jsonl``: the jobs ``before`` this one (an adapter fine-tuned after it was trained), then this one."""
    return encode([*before, Job(settings, points)])


class Trackers:
    """The trackers one job reports to; each that fails is reported once and dropped, and training goes on."""

    def __init__(self, names: list[str], directory: Path) -> None:
        registry = get_registry()
        self.classes = [registry.tracker(n) for n in dict.fromkeys(names)]  # an unknown name: refused, before work
        self.directory = Path(directory)
        self.active: list[Tracker] = []

    @classmethod
    def of(cls, names: list[str], directory: str | Path | None) -> Trackers:
        """The trackers named (TensorBoard alone when only a directory is given; none when neither is)."""
        names = list(names) or (["tensorboard"] if directory else [])
        return cls(names, Path(directory or "runs"))

    @contextmanager
    def running(self, run: Run) -> Iterator[Trackers]:
        """Start ``run``; a job that fails inside ends it as failed (a finished one calls :meth:`end` itself)."""
        self.start(run)
        try:
            yield self
        except BaseException as exc:
            self.end({"status": "failed", "error": str(exc) or type(exc).__name__})
            raise

    @staticmethod
    def _warn(name: str, exc: Exception) -> None:
        why = str(exc) if isinstance(exc, AliceError) else describe(exc)  # a plugin's failure names the plugin
        console.warn(f"tracker {name!r} stopped ({why}); training goes on without it")

    def _failed(self, tracker: Any, exc: Exception) -> None:
        self._warn(tracker.name, exc)
        self.active.remove(tracker)

    def start(self, run: Run) -> None:
        if not distributed.is_main() or not self.classes:
            return
        for cls in self.classes:
            try:
                tracker = cls(self.directory)
            except Exception as exc:  # noqa: BLE001 - a tracker never stops training
                self._warn(cls.name, exc)
                continue
            self.active.append(tracker)
            self._call(tracker, "start", run)

    def _call(self, tracker: Tracker, what: str, *args: Any) -> None:
        try:
            getattr(tracker, what)(*args)
        except Exception as exc:  # noqa: BLE001 - a tracker never stops training
            self._failed(tracker, exc)

    def log(self, step: int, values: dict[str, float]) -> None:
        for tracker in list(self.active):
            self._call(tracker, "log", step, values)

    def end(self, outcome: dict[str, Any]) -> None:
        for tracker in list(self.active):
            self._call(tracker, "end", outcome)
        self.active = []
