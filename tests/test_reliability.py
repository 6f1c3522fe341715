"""Nothing a user built is lost: kill-and-resume, atomic writes, verification."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import alice, ctrl_c_heard, ok

from alice.artifacts.loaded import ReferenceSpace
from alice.errors import AliceError
from alice.files import sha256_file


def _start(args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "alice", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or dict(os.environ),
        preexec_fn=ctrl_c_heard,
    )


def _checkpoint_step(folder: Path) -> int:
    try:
        return json.loads((folder / "checkpoint.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def _kill_after_checkpoint(proc, folder: Path, at_least: int, timeout: float = 240) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        step = _checkpoint_step(folder)
        if step >= at_least:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return step
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(
        f"no checkpoint at step >= {at_least} appeared; stderr: {proc.stderr.read() if proc.stderr else ''}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["reference", "modality"])
def test_sigkill_then_resume_is_bit_identical_to_an_uninterrupted_run(stage, tmp_path, tiny_reference, recipe_dir):
    ckpt = ["--steps", "300", "--checkpoint-every", "50"]
    if stage == "reference":

        def cmd(out, *extra):
            return ["reference", "build", "tiny-image", "--out", str(out), *ckpt, *extra]

        whole, killed = tmp_path / "whole", tmp_path / "killed"
        weights = lambda p: p / "reference.safetensors"  # noqa: E731
        folder = tmp_path / ".killed.checkpoint"
    else:
        ref = tmp_path / "ref"
        shutil.copytree(tiny_reference, ref)

        def cmd(name, *extra):
            return [
                "modality",
                "add",
                "text",
                "--reference",
                str(ref),
                "--recipe",
                "tiny-text",
                "--name",
                name,
                *ckpt,
                *extra,
            ]

        whole, killed = "whole", "killed"
        weights = lambda name: ref / "adapters" / name / "adapter.safetensors"  # noqa: E731
        folder = tmp_path / ".ref.adapter-killed.checkpoint"  # beside the space: nothing hidden goes inside one
    ok(*cmd(whole))
    step = _kill_after_checkpoint(_start(cmd(killed)), folder, at_least=100)
    assert step < 300
    assert not weights(killed).exists()
    # without --resume the checkpoint is not thrown away silently
    r = alice(*cmd(killed))
    assert r.code == 2
    assert "pass --resume" in r.err
    assert "resuming from the checkpoint at step" in ok(*cmd(killed, "--resume")).err
    assert sha256_file(weights(killed)) == sha256_file(weights(whole))
    assert not folder.exists()  # removed once the artifact is written


def test_a_crash_while_writing_leaves_the_previous_artifact_intact(reference_copy, monkeypatch):
    """Replace a reference, crash half-way through writing: the old one still loads, no half folder does."""
    from alice.artifacts.publish import AdapterWeights
    from alice.train.jobs import save_reference

    before = sha256_file(reference_copy / "reference.safetensors")
    ref = ReferenceSpace.load(reference_copy)
    adapter = ref.load_adapter("image")
    real_write = Path.write_bytes
    calls = []

    def crash_on_manifest(self, *a, **k):
        calls.append(self)
        if self.name == "adapter.json":
            raise OSError("disk full")
        return real_write(self, *a, **k)

    monkeypatch.setattr(Path, "write_bytes", crash_on_manifest)
    weights = AdapterWeights(
        adapter.encoder, adapter.decoder, adapter.feature_mean, adapter.feature_std, adapter.manifest
    )
    with pytest.raises(OSError, match="disk full"):
        save_reference(reference_copy, ref.classifier, ref.intervention, ref.manifest, [weights], overwrite=True)
    monkeypatch.undo()
    assert calls, "the write never started"
    assert sha256_file(reference_copy / "reference.safetensors") == before
    ReferenceSpace.load(reference_copy).load_adapter("text")
    leftovers = [p for p in reference_copy.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_leftovers_of_a_killed_process_are_never_loaded_and_go_at_the_next_start(reference_copy):
    """What a SIGKILL mid-write leaves beside a space (hidden, named with the dead process's id) is no artifact:
    the next command removes it, and puts back a space that a kill between two renames left moved aside."""
    dead = 2**22 + 12345  # above any pid this machine hands out
    partial = reference_copy.parent / f".ref.partial-{dead}-abc"
    partial.mkdir()
    (partial / "reference.safetensors").write_bytes(b"\0" * 10)
    ok("reference", "show", reference_copy)
    assert not partial.exists()
    old = reference_copy.parent / f".ref.old-{dead}"
    reference_copy.rename(old)  # killed after moving the old space aside, before the new one was renamed in
    assert "tiny" in ok("reference", "show", reference_copy).out
    assert reference_copy.is_dir()
    assert not old.exists()
    with pytest.raises(AliceError):
        ReferenceSpace.load(reference_copy.parent / f".ref.partial-{dead}-xyz")
    inside = reference_copy / "adapters" / ".text.partial-abc"  # what an older ALICE left inside a space
    inside.mkdir()
    with pytest.raises(AliceError, match="is a hidden folder"):
        ReferenceSpace.load(reference_copy)


# ----------------------------------------------------------------- import: limits checked before anything is written


def _staging_bytes(folder: Path) -> int:
    """Bytes under every hidden folder in ``folder`` (where an import stages what it unpacks)."""
    total = 0
    for p in folder.glob(".*"):
        for f in p.rglob("*"):
            try:
                total += f.stat().st_size if f.is_file() else 0
            except OSError:
                pass
    return total


def _watch(folder: Path, most: list[int], stop) -> None:
    while not stop.is_set():
        most[0] = max(most[0], _staging_bytes(folder))
        time.sleep(0.001)


@pytest.mark.parametrize(
    "lying, options, needle",
    [
        (True, (), "over 100x (--max-ratio)"),
        (False, (), "over 100x (--max-ratio)"),
        (True, ("--max-ratio", "100000000"), "is damaged"),  # the header passes: the bytes behind it are counted
    ],
    ids=["header-only", "real-zeros", "header-only-ratio-lifted"],
)
def test_a_1gib_entry_in_a_small_archive_is_refused_before_1mib_is_staged(tmp_path, lying, options, needle):
    """A 1 GiB-declared entry: with no data behind its header, or 1 GiB of zeros gzip packs into about 1 MiB.

    A watcher samples the staging folders while the import runs; the refusal comes from the headers, or,
    with the ratio limit lifted, from the data running out long before the header's size.
    """
    import gzip
    import io
    import tarfile
    import threading

    archive = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo("ref/reference.safetensors")
    info.size = 1 << 30
    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("ref/reference.json"), io.BytesIO(b""))
    members = [gzip.compress(head.getvalue()[:512]), gzip.compress(info.tobuf(tarfile.GNU_FORMAT))]  # two headers
    if not lying:  # gzip members concatenate: one packed MiB of zeros, 1024 times over
        members += [gzip.compress(bytes(1 << 20), compresslevel=9)] * 1024 + [gzip.compress(bytes(1024))]
    archive.write_bytes(b"".join(members))
    into = tmp_path / "into"
    into.mkdir()
    most, stop = [0], threading.Event()
    watcher = threading.Thread(target=_watch, args=(into, most, stop), daemon=True)
    watcher.start()
    r = alice("reference", "import", archive, "--into", into, *options)
    stop.set()
    watcher.join()
    assert r.code == 2, r.err
    assert "Traceback" not in r.err, r.err
    assert needle in r.err, r.err
    assert archive.stat().st_size < (2 << 20)
    assert most[0] < (1 << 20), f"{most[0]} bytes staged"
    assert list(into.iterdir()) == []
    print(f"archive {archive.stat().st_size} bytes; at most {most[0]} bytes staged")


def test_an_archive_made_with_plain_tar_is_accepted_and_derived_folders_stay_out(tmp_path, tiny_reference):
    import subprocess

    ref = tmp_path / "ref"
    shutil.copytree(tiny_reference, ref)
    ok("index", "build", ref, "--modality", "image")
    subprocess.run(["tar", "-C", str(ref), "-czf", str(tmp_path / "mine.tar.gz"), "."], check=True)
    r = ok("reference", "import", tmp_path / "mine.tar.gz", "--into", tmp_path / "into")
    got = tmp_path / "into" / "mine"  # no top folder: named after the archive
    digest = json.loads((ref / "space.json").read_text())["digest"]
    assert digest in r.err
    assert json.loads((got / "space.json").read_text())["digest"] == digest
    assert not (got / "indexes").exists()
    ok("reference", "verify", got)


# ----------------------------------------------------------------- --overwrite replaces ALICE artifacts only


@pytest.mark.slow
def test_overwrite_replaces_alice_artifacts_and_empty_folders(tmp_path, tiny_reference):
    ref = tmp_path / "ref"
    shutil.copytree(tiny_reference, ref)
    for _ in range(2):  # the second time over the first archive, index and import
        ok("reference", "export", ref, "--out", tmp_path / "r.alice.tar.gz", "--overwrite")
        ok("index", "build", ref, "-m", "image", "--out", tmp_path / "i.safetensors", "--overwrite")
        ok("reference", "import", tmp_path / "r.alice.tar.gz", "--into", tmp_path / "into", "--overwrite")
    (tmp_path / "empty").mkdir()
    ok("reference", "import", tmp_path / "r.alice.tar.gz", "--into", tmp_path / "empty2", "--overwrite")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("four years")
    r = alice("reference", "build", "tiny-image", "--out", tmp_path / "mine", "--overwrite")
    assert r.code == 2
    assert "is not an ALICE reference space" in r.err
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "four years"


# ----------------------------------------------------------------- permissions follow the umask


@pytest.mark.slow
def test_what_alice_writes_gets_the_permissions_the_umask_gives(tmp_path, tiny_reference, monkeypatch):
    from alice import files
    from alice.train import checkpoints

    umask = os.umask(0o022)
    os.umask(umask)
    file_mode, folder_mode = 0o666 & ~umask, 0o777 & ~umask
    ref = tmp_path / "ref"
    shutil.copytree(tiny_reference, ref)
    ok("eval", ref, "--seeds", "1")  # the space written anew
    ok("reference", "export", ref, "--out", tmp_path / "r.alice.tar.gz")
    ok("index", "build", ref, "-m", "image")
    ok("index", "build", ref, "-m", "image", "--out", tmp_path / "i.safetensors")
    monkeypatch.setattr(checkpoints, "remove", lambda folder: None)  # keep a checkpoint to look at
    ok("reference", "build", "tiny-image", "--out", tmp_path / "o", "--steps", "20", "--checkpoint-every", "10")
    monkeypatch.undo()
    made = [
        ref,
        *ref.rglob("*"),
        tmp_path / "r.alice.tar.gz",
        tmp_path / "i.safetensors",
        tmp_path / "o",
        *(tmp_path / "o").rglob("*"),
        tmp_path / ".o.checkpoint",
        *(tmp_path / ".o.checkpoint").iterdir(),
    ]
    wrong = [
        (str(p), oct(p.stat().st_mode & 0o777))
        for p in made
        if p.stat().st_mode & 0o777 != (folder_mode if p.is_dir() else file_mode)
    ]
    assert wrong == [], f"umask {oct(umask)}: {wrong}"
    assert files.FILE_MODE == file_mode


# ----------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
def test_ctrl_c_during_training_says_where_resume_goes_on(tmp_path, recipe_dir):
    args = ["reference", "build", "tiny-image", "--out", str(tmp_path / "o"), "--checkpoint-every", "20"]
    proc = _start(args)
    folder = tmp_path / ".o.checkpoint"
    deadline = time.time() + 240
    while _checkpoint_step(folder) < 20 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(line) == 1, err
    assert line[0].startswith("error: interrupted; --resume continues from step "), err
    step = int(line[0].rsplit(" ", 1)[1])
    assert step == _checkpoint_step(folder)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------- partial labels


@pytest.mark.slow
def test_partial_labels_are_named_in_every_table_and_never_predicted(reference_copy):
    import torch

    import alice as alice_api
    from alice.evaluation.tables import evaluation_tables
    from alice.report.page import html_table

    aliases = '{zero = "", eight = "", nine = ""}'  # this caption set says nothing about three classes
    ok(
        "modality",
        "add",
        "text",
        "--reference",
        reference_copy,
        "--recipe",
        "tiny-text",
        "--name",
        "text7",
        "--steps",
        "30",
        "--set",
        f"labels.aliases={aliases}",
    )
    space = alice_api.load(reference_copy)
    missing = ["zero", "eight", "nine"]
    assert [c for c in space.vocabulary if c not in space.annotated("text7")] == missing
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(400, space.latent_dim), dim=1)
    unmasked = space.classify(z) >= space.thresholds("text7")
    assert unmasked[:, [space.label_index(c) for c in missing]].any(), "the placeholder 0.5 would fire somewhere"
    assert not {c for row in space.labels(z, "text7") for c in row} & set(missing)
    assert not space.predict(z, "text7")[:, [space.label_index(c) for c in missing]].any()
    r = ok("eval", reference_copy, "--seeds", "1")
    assert "7 of 10" in r.out
    assert "text7: zero, eight, nine" in r.out  # the console tables
    card = (reference_copy / "README.md").read_text()
    assert "7 of 10" in card
    assert "text7: zero, eight, nine" in card  # the model card's
    report = json.loads((reference_copy / "eval.json").read_text())
    page = "".join(html_table(t) for t in evaluation_tables(report))  # the HTML report's
    assert "7 of 10" in page
    assert "text7: zero, eight, nine" in page
    assert "7 of 10 (not: zero, eight, nine)" in ok("reference", "show", reference_copy).out
