"""Training history: recorded by every job into the space, equal across a kill and --resume, drawn, tracked.

One tiny space (the crash recipes: 6 steps) is built once with TensorBoard and MLflow logging on;
the trackers' files are read back with their own readers.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from cli_helpers import alice, ok
from PIL import Image

from alice import files
from alice.artifacts.format.history import Job, decode, encode
from alice.artifacts.integrity.record import BEHAVIOUR, DOCUMENTATION, role
from alice.errors import AliceError
from alice.plugin import Tracker, TrackerRegistrar, hookimpl, register_plugin, unregister_plugin

pytestmark = pytest.mark.usefixtures("recipe_dir")

EVAL = ("--set", "training.eval_every=2")
BUILD = ("reference", "build", "crash-image", "--out", "space", *EVAL)
ADD = ("modality", "add", "text", "--reference", "space", "--recipe", "crash-text", *EVAL)


def jobs_of(space: Path, adapter: str) -> list[Job]:
    return decode((space / "adapters" / adapter / "history.jsonl").read_bytes(), adapter)


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> Path:
    """The crash recipes' space, both jobs logged to TensorBoard and MLflow under logs/."""
    work = tmp_path_factory.mktemp("history")
    r = ok(*BUILD, "--json", "--log-dir", "logs", "--tracker", "tensorboard", "--tracker", "mlflow", cwd=work)
    json.loads(r.out)  # --json: stdout holds the JSON and nothing else
    ok(*ADD, "--log-dir", "logs", "--tracker", "tensorboard", "--tracker", "mlflow", cwd=work)
    return work


def test_every_job_records_its_history_beside_its_manifest_under_the_digest(logged):
    space = logged / "space"
    (build,) = jobs_of(space, "image")
    (add,) = jobs_of(space, "text")
    assert build.settings["job"] == "reference build" and add.settings["job"] == "modality add"
    for job in (build, add):
        assert [p["step"] for p in job.points] == [1, 2, 3, 4, 5, 6]  # 6 steps: a point every step by default
        assert all({"rec", "cls", "sem", "lr"} <= set(p) for p in job.points)
        validated = [p["step"] for p in job.points if "val_auroc" in p]
        assert validated == [2, 4, 6]
        assert {"val_rec", "val_cls", "val_sem"} <= set(job.points[-1])
    record = json.loads((space / "space.json").read_text())
    assert {e["path"] for e in record[BEHAVIOUR]} >= {"adapters/image/history.jsonl", "adapters/text/history.jsonl"}
    assert role("adapters/text/history.png") == DOCUMENTATION
    manifest = json.loads((space / "adapters/text/adapter.json").read_text())
    assert manifest["training"]["history"]["points"] == 6
    assert len(manifest["training"]["timing"]["steps_per_second"]) == 6
    # the model cards show the curve picture, a real PNG
    assert "](history.png)" in (space / "adapters/text/README.md").read_text()
    assert "](adapters/image/history.png)" in (space / "README.md").read_text()
    assert Image.open(space / "adapters/text/history.png").size[0] > 100
    # a history changed after the space was written is refused as any changed file is
    ok("reference", "verify", space)


def test_tensorboard_event_files_read_back_with_tensorboards_reader(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted(p for p in (logged / "logs").rglob("events.out.tfevents.*"))
    assert len(runs) == 2  # one run folder per job
    acc = EventAccumulator(str(runs[-1].parent))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    assert {"train/rec", "train/cls", "train/sem", "lr", "steps_per_second", "val/auroc"} <= set(scalars)
    assert len(acc.Scalars("train/rec")) == 6 and len(acc.Scalars("val/auroc")) == 3
    assert [e.step for e in acc.Scalars("val/auroc")] == [2, 4, 6]


def test_mlflow_store_read_back_with_mlflows_client(logged):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(logged / "logs" / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "space"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["alice.job"] for r in runs) == ["modality add", "reference build"]
    add = next(r for r in runs if r.data.tags["alice.job"] == "modality add")
    assert add.info.status == "FINISHED" and add.data.params["training.steps"] == "6"
    assert len(client.get_metric_history(add.info.run_id, "rec")) == 6
    assert [m.step for m in client.get_metric_history(add.info.run_id, "val_auroc")] == [2, 4, 6]


def test_reference_show_names_the_final_and_best_validation_figures(logged):
    r = ok("reference", "show", logged / "space", "--json")
    rows = {row["adapter"]: row for row in json.loads(r.out)["history"]}
    text = rows["text"]["validation"]
    assert text["figure"] == "val_auroc" and text["final_step"] == 6 and text["best_step"] in (2, 4, 6)
    shown = ok("reference", "show", logged / "space").out
    assert "val_auroc" in shown and "at step 6" in shown


def test_runs_compare_overlays_two_spaces(logged, tmp_path):
    other = tmp_path / "other"
    ok(*BUILD[:-2], "--set", "training.eval_every=3", "--set", "training.lr=0.01", cwd=tmp_path)
    (tmp_path / "space").rename(other)
    r = ok("runs", "compare", logged / "space", other, "--out", tmp_path / "cmp", "--json")
    figures = json.loads(r.out)["figures"]
    assert [Path(f).name for f in figures] == ["curves-image-reference-build-image.png"]
    assert Image.open(figures[0]).size[0] > 500


def test_history_of_a_run_killed_and_resumed_equals_the_uninterrupted_one(tmp_path):
    """kill -9 after the second checkpoint (step 4: two validations already recorded), then --resume."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    log = tmp_path / "points"
    ok(*BUILD, env={**os.environ, files.CRASH_LOG: str(log)}, cwd=whole)
    files._steps.clear()
    saves = [line.split(" ", 1)[0] for line in log.read_text().splitlines() if line.startswith("checkpoint:")]
    r = alice(*BUILD, env={**os.environ, files.CRASH_AT: saves[-1]}, cwd=killed, fresh=True)
    assert r.code == -signal.SIGKILL
    ok(*BUILD, "--resume", "--overwrite", cwd=killed)
    name = "space/adapters/image/history.jsonl"
    assert (killed / name).read_bytes() == (whole / name).read_bytes()
    assert len(jobs_of(killed / "space", "image")[0].points) == 6


class Broken(Tracker):
    name = "broken"
    calls = 0

    def log(self, step, values):
        Broken.calls += 1
        raise OSError("disk full")


class BrokenPlugin:
    @hookimpl
    def alice_register_trackers(self, registrar: TrackerRegistrar) -> None:
        registrar.tracker(Broken)


def test_a_failing_tracker_is_reported_once_and_training_goes_on(tmp_path):
    register_plugin(BrokenPlugin(), "broken-tracker")
    try:
        r = ok(*BUILD, "--tracker", "broken", cwd=tmp_path)
    finally:
        unregister_plugin("broken-tracker")
    warnings = [line for line in r.err.splitlines() if "tracker 'broken'" in line]
    assert len(warnings) == 1 and "disk full" in warnings[0] and "training goes on" in warnings[0]
    assert Broken.calls == 1
    assert len(jobs_of(tmp_path / "space", "image")[0].points) == 6


def test_an_unknown_tracker_is_refused_before_any_work(tmp_path):
    r = alice(*BUILD, "--tracker", "nosuch", cwd=tmp_path)
    assert r.code != 0 and r.errors and "unknown tracker 'nosuch'" in r.errors[0]
    assert not (tmp_path / "space").exists()


def test_history_file_round_trips_and_refuses_malformed_lines():
    jobs = [Job({"job": "align", "name": "a"}, [{"step": 1, "loss": 0.5, "val_auroc": float("nan")}])]
    data = encode(jobs)
    assert decode(data, "h")[0].points == [{"step": 1, "loss": 0.5, "val_auroc": None}]
    for bad, why in ((b'{"step": 1}\n', "before any job"), (b'{"job": "x"}\n[1]\n', "JSON object"), (b"\xff", "UTF-8")):
        with pytest.raises(AliceError, match=why):
            decode(bad, "h")
    with pytest.raises(AliceError, match="integer step"):
        decode(b'{"job": "x"}\n{"step": "1", "rec": 0.1}\n', "h")


def test_align_adds_its_job_to_both_adapters_histories(logged, tmp_path):
    ok("align", "clip", logged / "space", "--pairs", "20", "--steps", "4", "--batch-size", "8", "--out", tmp_path / "a")
    for adapter in ("image", "text"):
        before = jobs_of(logged / "space", adapter)
        jobs = jobs_of(tmp_path / "a", adapter)
        assert [j.settings["job"] for j in jobs] == [before[0].settings["job"], "align"]
        assert jobs[0].points == before[0].points  # the stage's own curve is kept as it was
        assert [p["step"] for p in jobs[1].points] == [1, 2, 3, 4] and {"loss", "lr", "temperature"} <= set(
            jobs[1].points[0]
        )
    ok("reference", "verify", tmp_path / "a")


def test_an_archive_carries_the_histories_and_their_pictures(logged, tmp_path):
    archive = tmp_path / "space.alice.tar.gz"
    ok("reference", "export", logged / "space", "--out", archive)
    ok("reference", "import", archive, "--into", tmp_path / "in")
    (imported,) = (tmp_path / "in").iterdir()
    for name in ("adapters/image/history.jsonl", "adapters/text/history.jsonl", "adapters/text/history.png"):
        assert (imported / name).read_bytes() == (logged / "space" / name).read_bytes(), name
    ok("reference", "verify", imported)
