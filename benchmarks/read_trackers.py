"""Read a log folder's tracker files back with each tracker's own reader (docs/training.md).

    python benchmarks/read_trackers.py runs

TensorBoard: every event folder under the log folder, its scalar tags and how many points
each holds (``EventAccumulator``). MLflow: every run of the file store ``runs/mlruns``, its
status, job tag, parameter count, ``rec`` points and ``val_auroc`` history (``MlflowClient``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(root: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for folder in sorted({p.parent for p in root.rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(folder))
        acc.Reload()
        tags = sorted(acc.Tags()["scalars"])
        print(f"{folder.relative_to(root)} | " + ", ".join(f"{t} {len(acc.Scalars(t))}" for t in tags))
    store = root / "mlruns"
    if not store.is_dir():
        return
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            auroc = client.get_metric_history(run.info.run_id, "val_auroc")
            print(
                f"{experiment.name} | {run.info.run_name} | {run.info.status} | {run.data.tags.get('alice.job')} | "
                f"{len(run.data.params)} parameters | rec {len(client.get_metric_history(run.info.run_id, 'rec'))} "
                f"points | val_auroc {[(m.step, round(m.value, 4)) for m in auroc]}"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs"))
