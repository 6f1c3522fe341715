"""``alice report``: one HTML page with the eval tables, the training curves, the latent map and search examples."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Device
from alice.config.report import REPORT_DEFAULTS as D
from alice.config.report import ReportSpec


def report_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: <reference>/report)."),
    per_modality: int = typer.Option(
        D.per_modality, "--items", min=10, help="Test items per adapter in the latent map and the search examples."
    ),
    projection: str = typer.Option(D.projection, "--projection", help="tsne (scikit-learn) or pca."),
    queries: int = typer.Option(D.queries, "--queries", min=1, help="Example queries per pair of adapters."),
    k: int = typer.Option(D.k, "--k", "-k", min=1, help="Results shown per query."),
    seed: int = typer.Option(D.seed, "--seed"),
    seeds: int = typer.Option(
        D.seeds, "--seeds", min=1, help="Intervention draws, when the report has to run the evaluation itself."
    ),
    device: Optional[str] = Device,
    compare: Optional[list[Path]] = typer.Option(
        None, "--compare", help="Another space whose training curves are drawn over this one's (repeatable)."
    ),
) -> None:
    """Write an HTML report (and its PNG figures) for a reference space: eval tables, latent map, search examples."""
    from alice.report.page import build_report

    page = build_report(
        path,
        ReportSpec(out, per_modality, projection, queries, k, seed, device or D.device, seeds, tuple(compare or ())),
    )
    console.info(f"wrote {page}")
