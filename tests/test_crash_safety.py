"""Crash safety at every step of every writer (fault injection).

For each writer, an uninterrupted in-process run lists the crash points it
passes (``ALICE_CRASH_LOG``: every rename and removal of :mod:`alice.files`).
Then, for each point, a fresh ``alice`` process is started with
``ALICE_CRASH_AT=<writer>:<n>`` and SIGKILLs itself there; the next command
(the same one, with ``--resume`` for training runs) must end with a space that
``alice reference verify`` accepts, equal to the uninterrupted run's (weights
byte for byte; manifests and cards too, except the fields that record when and
how long: ``created``, ``seconds``, ``steps_per_second``, and the reference digest that follows them), with
nothing hidden left beside it.

The recipes are the smallest that train (tests/recipes/crash-*.toml: 6 steps,
a checkpoint every 2), so one crash point costs a process start and a second.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import alice, ok

from alice import files
from alice.files import sha256_file

#: each writer killed at every step it passes: all slow
pytestmark = [pytest.mark.usefixtures("recipe_dir"), pytest.mark.slow]

BUILD = ("reference", "build", "crash-image", "--out", "space")
ADD = ("modality", "add", "text", "--reference", "space", "--recipe", "crash-text")
#: fields that record when and how long (the reference digest an adapter names follows reference.json's bytes)
VOLATILE = {"created", "seconds", "steps_per_second", "reference_digest"}
TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+\-Z][\d:]*|[\d.]+ s of training, [\d.]+ steps/s")
#: crash points exercised per writer, filled in as the tests run (reported by the last test)
EXERCISED: dict[str, int] = {}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def view(path: Path) -> dict[str, object]:
    """What a space (or archive, index, report) holds, with the time-recording fields left out."""
    if path.is_file() and path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tar:
            return {
                m.name: _content(m.name, tar.extractfile(m).read())
                for m in sorted(tar.getmembers(), key=lambda m: m.name)
            }
    if path.is_file():
        return {path.name: sha256_file(path)}
    return {
        f.relative_to(path).as_posix(): _content(f.name, f.read_bytes()) for f in sorted(path.rglob("*")) if f.is_file()
    }


def _content(name: str, data: bytes) -> object:
    if name.endswith("space.json"):
        record = json.loads(data)  # the hashes of the manifests follow their timestamps: compare the file list
        return [
            (e["path"], e["path"].endswith(".safetensors") and e["sha256"])
            for s in ("files", "documentation", "derived")
            for e in record[s]
        ]
    if name.endswith(".json"):
        return json.dumps(_strip(json.loads(data)))  # key order too: the bytes are what is compared
    if name.endswith((".md", ".html")):
        return TIMES.sub("<time>", data.decode("utf-8"))
    import hashlib

    return hashlib.sha256(data).hexdigest()


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@dataclass
class Writer:
    """One command that writes, the state it starts from, what it writes, and how the next command goes on."""

    name: str
    command: tuple[str, ...]
    writers: tuple[str, ...]  # the crash-point writers exercised (others it passes are left to their own case)
    result: str  # the path (relative to the work folder) whose content is compared
    prepare: Callable[[Path], None] = lambda work: None
    resume: tuple[str, ...] = ()  # added to the command for the run after the crash
    expected: dict = field(default_factory=dict)


def _prepare_space(base: Path) -> Callable[[Path], None]:
    def prepare(work: Path) -> None:
        shutil.copytree(base, work / "space")

    return prepare


def _points(writer: Writer, work: Path) -> list[str]:
    """Run the command uninterrupted in this process; every crash point it passes ("writer:n what")."""
    log = work.parent / f"{work.name}.points"
    files._steps.clear()
    ok(*writer.command, env={**os.environ, files.CRASH_LOG: str(log)}, cwd=work)
    files._steps.clear()
    lines = log.read_text(encoding="utf-8").splitlines()
    log.unlink()
    return [line for line in lines if line.split(":", 1)[0] in writer.writers]


def exercise(writer: Writer, tmp_path: Path) -> int:
    work = tmp_path / "work"  # one path for every run: manifests and reports name it

    def fresh() -> None:
        shutil.rmtree(work, ignore_errors=True)
        for p in tmp_path.glob(".work*"):
            shutil.rmtree(p, ignore_errors=True)
        work.mkdir(parents=True)
        writer.prepare(work)

    fresh()
    points = _points(writer, work)
    expected = view(work / writer.result)
    assert points, f"{writer.name}: no crash point passed"
    for point in points:
        fresh()
        code = point.split(" ", 1)[0]
        r = alice(*writer.command, env={**os.environ, files.CRASH_AT: code}, cwd=work, fresh=True)
        assert r.code == -signal.SIGKILL, f"{writer.name} at {point}: exit {r.code}, not killed\n{r.err[-2000:]}"
        ok(*writer.command, *writer.resume, cwd=work)
        assert view(work / writer.result) == expected, f"{writer.name}: after a crash at {point} the result differs"
        space = work / "space"
        if space.exists():
            ok("reference", "verify", space)
            assert hidden(space.parent) == [], f"{writer.name} at {point}: left {hidden(space.parent)}"
        assert hidden(work) == [], f"{writer.name} at {point}: left {hidden(work)}"
    for point in points:
        w = point.split(":", 1)[0]
        EXERCISED[w] = EXERCISED.get(w, 0) + 1
    return len(points)


@pytest.fixture(scope="module")
def crash_space(tmp_path_factory) -> Path:
    """The crash recipes' reference with its text adapter, built once."""
    folder = tmp_path_factory.mktemp("crash-base")
    ok(*BUILD, cwd=folder)
    ok(*ADD, cwd=folder)
    return folder / "space"


def test_build_killed_at_every_step_resumes_to_the_same_space(tmp_path):
    """A fresh build: two checkpoint saves (the second replaces the first), the space, the checkpoint's removal."""
    n = exercise(Writer("build", BUILD, ("space", "checkpoint"), "space", resume=("--resume", "--overwrite")), tmp_path)
    assert n >= 10


def test_build_over_an_old_space_killed_at_every_step(tmp_path, crash_space):
    """--overwrite: the old space moved aside, the new one renamed in, the old one removed."""
    writer = Writer(
        "overwrite",
        (*BUILD, "--overwrite", "--set", "training.seed=1"),
        ("space",),
        "space",
        _prepare_space(crash_space),
        resume=("--resume",),
    )
    assert exercise(writer, tmp_path) == 5


def test_adding_a_modality_killed_at_every_step(tmp_path, crash_space):
    """The space's next version (hard links plus the new adapter and space.json) swapped in."""
    prepare = _prepare_space(crash_space)

    def without_text(work: Path) -> None:
        prepare(work)
        from alice.artifacts.publish import update_space

        update_space(work / "space", {}, replace_folders=("adapters/text",))

    # its checkpoints go through the same code as a build's, exercised there
    writer = Writer("add", ADD, ("space",), "space", without_text, resume=("--resume", "--overwrite"))
    assert exercise(writer, tmp_path) == 5


def test_eval_export_index_report_and_import_killed_at_every_step(tmp_path, crash_space):
    space_writers = [
        Writer("eval", ("eval", "space", "--seeds", "1"), ("space",), "space", _prepare_space(crash_space)),
        Writer(
            "index",
            ("index", "build", "space", "-m", "image", "--out", "image.safetensors"),
            ("index",),
            "image.safetensors",
            _prepare_space(crash_space),
            resume=("--overwrite",),
        ),
        Writer(
            "export",
            ("reference", "export", "space", "--out", "space.alice.tar.gz"),
            ("export",),
            "space.alice.tar.gz",
            _prepare_space(crash_space),
            resume=("--overwrite",),
        ),
    ]

    def with_report(work: Path) -> None:
        _prepare_space(crash_space)(work)
        ok("eval", work / "space", "--seeds", "1")
        ok("report", work / "space", "--out", work / "report", "--projection", "pca", "--items", "10", "--queries", "1")

    space_writers.append(
        Writer(
            "report",
            ("report", "space", "--out", "report", "--projection", "pca", "--items", "10", "--queries", "1"),
            ("report",),
            "report",
            with_report,
        )
    )

    def with_archive(work: Path) -> None:
        ok("reference", "export", crash_space, "--out", work / "space.alice.tar.gz")

    space_writers.append(
        Writer(
            "import",
            ("reference", "import", "space.alice.tar.gz", "--into", "."),
            ("space",),
            "space",
            with_archive,
            resume=("--overwrite",),
        )
    )
    counts = {w.name: exercise(w, tmp_path / w.name) for w in space_writers}
    assert counts == {"eval": 5, "index": 2, "export": 2, "report": 5, "import": 2}, counts
    print("crash points per writer:", json.dumps(EXERCISED))
