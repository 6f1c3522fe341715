"""What `alice report` shows, its defaults written once (the CLI reads them here; no ML library is imported)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ReportSpec:
    """What `alice report` shows; the defaults are the CLI's."""

    out: Path | None = None  # default: <reference>/report
    per_modality: int = 300  # test items per adapter in the latent map and the search examples
    projection: str = "tsne"  # or "pca"
    queries: int = 3  # example queries per pair of adapters
    k: int = 5  # results shown per query
    seed: int = 0
    device: str = "cpu"
    seeds: int = 5  # intervention draws, when the report runs the evaluation itself
    compare: tuple[Path, ...] = ()  # other spaces whose training curves are drawn over this one's


REPORT_DEFAULTS = ReportSpec()
