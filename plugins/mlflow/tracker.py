"""The MLflow tracker: an experiment per space folder, a run per training job.

The run's parameters are the recipe's settings (flattened, ``training.lr``), its tags the
job, the adapter and the space's identity; each point of the history is logged as one batch
of metrics at its step (``rec``, ``val_auroc``, ``lr``, ``steps_per_second``, ...).
"""

from __future__ import annotations

import os
import time
from typing import Any

from alice.plugin import Run, Tracker

#: MLflow keeps parameter values up to this many characters
MAX_PARAM = 6000


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"training": {"lr": 0.001}}`` -> ``{"training.lr": "0.001"}``."""
    out: dict[str, str] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)[:MAX_PARAM]
    return out


class MLflowTracker(Tracker):
    name = "mlflow"

    def uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or (self.directory / "mlruns").resolve().as_uri()

    def start(self, run: Run) -> None:
        uri = self.uri()
        if uri.startswith("file:"):
            # MLflow 3 asks for an explicit yes to its file store, the one store that needs no database
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            from mlflow.entities import Param, RunTag
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise RuntimeError("mlflow is not installed: pip install 'alice-align[mlflow]'") from None
        self.client = MlflowClient(tracking_uri=uri)
        experiment_name = (run.label or run.name).split("/", 1)[0]
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(experiment_name)
        tags = {"alice.job": run.job, "alice.name": run.name, "alice.steps": str(run.steps)}
        tags.update({f"alice.space.{k}": str(v) for k, v in run.space.items()})
        self.run_id = self.client.create_run(experiment_id, run_name=f"{run.name} ({run.job})").info.run_id
        params = [Param(k, v) for k, v in flatten(run.recipe).items()]
        for lo in range(0, len(params), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=params[lo : lo + 100])
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if k != "step" and v is not None]
        self.client.log_batch(self.run_id, metrics=metrics)

    def end(self, outcome: dict[str, Any]) -> None:
        if outcome.get("digest"):
            self.client.set_tag(self.run_id, "alice.space.digest_after", str(outcome["digest"]))
        self.client.set_terminated(self.run_id, "FINISHED" if outcome.get("status") == "finished" else "FAILED")
