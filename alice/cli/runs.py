"""``alice runs``: the training curves a space records, shown and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Json
from alice.tables import Table

app = typer.Typer(help="Training curves recorded in spaces: show them, compare two.", no_args_is_help=True)


def _figure(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


def history_rows(path: Path) -> list[dict]:
    """One row per job of each adapter of the space at ``path`` (checked against its space.json first)."""
    from alice.artifacts.integrity.describe import open_space

    open_space(Path(path))  # every file hashed against the record: a history that changed is refused
    return job_rows(path)


def job_rows(path: Path) -> list[dict]:
    """One row per job of each adapter of the space at ``path``, a space the caller has checked."""
    from alice.artifacts.format.history import VAL_PREFIX
    from alice.report.curves import space_jobs

    rows = []
    for adapter, jobs in space_jobs(Path(path)).items():
        for job in jobs:
            rows.append(
                {
                    "adapter": adapter,
                    "job": job.title,
                    "steps": job.settings.get("steps"),
                    "points": len(job.points),
                    "validations": sum(1 for p in job.points if any(k.startswith(VAL_PREFIX) for k in p)),
                    "validation": job.final_and_best(),
                }
            )
    return rows


def _draw(spaces: list[Path], folder: Path, everything: bool) -> list[str]:
    """The curve figures of ``spaces`` in ``folder``: every job's, or (``everything`` false) those of the jobs
    that more than one space holds."""
    from alice.files import check_writable
    from alice.report.curves import draw, matched

    check_writable(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [str(draw(c, folder / c.file)) for c in matched(spaces) if everything or len(c.jobs) > 1]


def _table(title: str, rows: list[dict]) -> Table:
    def figures(v: dict | None) -> list:
        if not v:
            return ["–", "–", "–"]
        return [
            v["figure"],
            f"{_figure(v['final'])} (step {v['final_step']})",
            f"{_figure(v['best'])} (step {v['best_step']})",
        ]

    return Table(
        title,
        ["adapter", "job", "steps", "points", "validations", "figure", "final", "best"],
        [[r["adapter"], r["job"], r["steps"], r["points"], r["validations"], *figures(r["validation"])] for r in rows],
    )


@app.command("show")
def show(
    path: Path = typer.Argument(..., help="Reference folder."),
    figures: Optional[Path] = typer.Option(
        None, "--figures", help="Also draw each job's curves (the report's figures) into this folder."
    ),
    as_json: bool = Json,
) -> None:
    """Each training job a space records: its points, and its validation figure at the end and at its best."""
    rows = history_rows(path)
    if figures is not None:
        _draw([path], figures, everything=True)
    if as_json:
        console.print_json(rows)
        return
    console.table(_table(f"Training history of {path}", rows))


@app.command("compare")
def compare(
    spaces: list[Path] = typer.Argument(..., help="Two (or more) reference folders."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Folder for the overlaid curve figures (default: runs-compare)."
    ),
    as_json: bool = Json,
) -> None:
    """Overlay the training curves of the same jobs in several spaces: one PNG per job, one line style per space."""
    from alice.errors import AliceError
    from alice.report.curves import labels_for

    if len(spaces) < 2:
        raise AliceError("name two spaces to compare (alice runs compare A B)")
    rows = {label: history_rows(p) for label, p in zip(labels_for(spaces), spaces)}
    folder = Path(out or "runs-compare")
    written = _draw(spaces, folder, everything=False)
    if as_json:
        console.print_json({"figures": written, "spaces": rows})
        return
    for label, r in rows.items():
        console.table(_table(label, r))
    console.info(
        f"wrote {len(written)} figure(s) in {folder}"
        + (f": {', '.join(Path(w).name for w in written)}" if written else "")
    )
