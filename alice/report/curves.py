"""Training curves: one figure per training job, the loss terms and the validation figures on their own axes.

Read from each adapter's ``history.jsonl`` (:mod:`alice.artifacts.format.history`). Given
several spaces (``alice runs compare A B``, ``alice report A --compare B``), the jobs
that match (the same adapter, the same job) are drawn over each other: one line
style per space, one colour per loss term, so two recipes compare at a glance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from alice.artifacts.format.history import Job
from alice.artifacts.format.history import read as read_history
from alice.artifacts.format.layout import ADAPTERS_FOLDER, HISTORY_FILE
from alice.artifacts.integrity.describe import adapter_names

STYLES = ["-", "--", ":", "-."]


@dataclass
class Curves:
    """One figure: the adapter, the job's title, and that job in each space that has it (space label -> job)."""

    adapter: str
    title: str
    jobs: dict[str, Job]

    @property
    def file(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{self.adapter}-{self.title}").strip("-").lower()
        return f"curves-{slug}.png"


def space_jobs(space: Path) -> dict[str, list[Job]]:
    """Each adapter's jobs, from its history file (an adapter without one: no jobs)."""
    space = Path(space)
    return {name: read_history(space / ADAPTERS_FOLDER / name / HISTORY_FILE) for name in adapter_names(space)}


def labels_for(spaces: list[Path]) -> list[str]:
    """Short names for the spaces: their folder names, their paths where two folder names agree."""
    names = [Path(s).name for s in spaces]
    return names if len(set(names)) == len(names) else [str(s) for s in spaces]


def matched(spaces: list[Path]) -> list[Curves]:
    """The figures to draw: every job of every adapter of the first space, matched in the others by adapter and
    position (a job only the later spaces have gets a figure of its own)."""
    labels = labels_for(spaces)
    figures: dict[tuple[str, int], Curves] = {}
    for label, space in zip(labels, spaces):
        for adapter, jobs in space_jobs(space).items():
            for i, job in enumerate(jobs):
                key = (adapter, i)
                if key not in figures:
                    figures[key] = Curves(adapter, job.title, {})
                figures[key].jobs[label] = job
    return [figures[k] for k in sorted(figures)]


def draw(curves: Curves, path: Path, dpi: int = 100) -> Path:
    """The figure: loss terms (log scale) on the left, validation figures on the right, against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=dpi)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    several = len(curves.jobs) > 1
    keys = {v: list(dict.fromkeys(k for job in curves.jobs.values() for k in job.keys(v))) for v in (False, True)}
    for s, (label, job) in enumerate(curves.jobs.items()):
        style = STYLES[s % len(STYLES)]
        for ax, validation in ((left, False), (right, True)):
            for c, key in enumerate(keys[validation]):
                steps, values = job.series(key)
                if not values:
                    continue
                name = f"{key} ({label})" if several else key
                ax.plot(
                    steps,
                    values,
                    style,
                    color=colours[c % len(colours)],
                    label=name,
                    marker="o" if len(values) < 3 else None,
                )
    left.set_yscale("log")
    left.set_title("train losses (mean between points)")
    right.set_title("validation")
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="grey")
    fig.suptitle(f"{curves.adapter}: {curves.title}" + (f" — {' vs '.join(curves.jobs)}" if several else ""))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
