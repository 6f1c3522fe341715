"""A tracker that logs training runs to MLflow: ``--tracker mlflow`` (or ``trackers = ["mlflow"]`` in ``[logging]``).

Runs go to ``MLFLOW_TRACKING_URI`` when it is set (a server, a database), else to an MLflow
file store in ``<log dir>/mlruns``, read back with MLflow's own client or ``mlflow ui
--backend-store-uri <log dir>/mlruns``. Needs ``pip install 'alice-align[mlflow]'`` (mlflow-skinny).
"""

from alice.plugin import TrackerRegistrar, hookimpl


@hookimpl
def alice_register_trackers(registrar: TrackerRegistrar) -> None:
    # by name and place: mlflow is imported only by a run that logs to it
    registrar.tracker("mlflow", "alice_plugins.mlflow.tracker:MLflowTracker")
