"""What a tracker plugin implements: a place training runs are reported to while they run.

A tracker is registered by ``alice_register_trackers`` and chosen by name (the
recipe's ``[logging]`` table, ``--tracker``, ``--log-dir``). For each training job
ALICE makes one instance, calls :meth:`Tracker.start` once, :meth:`Tracker.log`
at each point of the run's history, and :meth:`Tracker.end` once. A tracker that
raises is reported once, in one warning line naming it, and left out for the rest
of the run: a tracker never stops training. Only the first process of a torchrun
job reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class Run:
    """One training job, as a tracker is told of it at its start."""

    job: str  # "reference build", "modality add", "align"
    name: str  # the adapter it trains (both adapters' names for align)
    space: dict[str, Any]  # the space's identity: "path", and "reference_sha256", "digest" where it exists yet
    recipe: dict[str, Any]  # the recipe (or the settings) the job runs, as a table
    steps: int
    label: str = ""  # a short name for the run: "<space folder>/<name>"
    extra: dict[str, Any] = field(default_factory=dict)


class Tracker:
    """Base class of a tracker; subclasses set ``name`` and override the three calls.

    :param directory: the folder runs are logged under (``--log-dir``, ``[logging] dir``); a
        tracker keeps its own files below it.
    """

    name: ClassVar[str] = ""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def start(self, run: Run) -> None:
        """A job starts: ``run`` names it, its space and its recipe."""

    def log(self, step: int, values: dict[str, float]) -> None:
        """One point: each loss term, ``lr``, ``steps_per_second``, and ``val_*`` figures at validation steps."""

    def end(self, outcome: dict[str, Any]) -> None:
        """The job ended: ``outcome["status"]`` is ``finished`` or ``failed``; a finished one also names the
        written space's ``digest`` and its validation ``metrics``."""
