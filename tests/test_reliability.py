"""Nothing a user built is lost: kill-and-resume, atomic writes, verification."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import alice, ok

from alice.artifacts import ReferenceSpace
from alice.errors import AliceError
from alice.files import sha256_file


def _start(args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "alice", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or dict(os.environ),
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
        import shutil

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
        folder = ref / "adapters" / ".killed.checkpoint"
    ok(*cmd(whole))
    step = _kill_after_checkpoint(_start(cmd(killed)), folder, at_least=100)
    assert step < 300 and not weights(killed).exists()
    # without --resume the checkpoint is not thrown away silently
    r = alice(*cmd(killed))
    assert r.code == 2 and "pass --resume" in r.err
    assert "resuming from the checkpoint at step" in ok(*cmd(killed, "--resume")).err
    assert sha256_file(weights(killed)) == sha256_file(weights(whole))
    assert not folder.exists()  # removed once the artifact is written


def test_a_crash_while_writing_leaves_the_previous_artifact_intact(reference_copy, monkeypatch):
    """Replace a reference, crash half-way through writing: the old one still loads, no half folder does."""
    from alice.artifacts import AdapterWeights
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


def test_a_half_written_folder_from_a_killed_process_is_never_loaded(reference_copy):
    """What a SIGKILL mid-write leaves (a hidden partial folder) is not an artifact or an adapter."""
    partial = reference_copy / "adapters" / ".text.partial-abc"
    partial.mkdir()
    (partial / "adapter.safetensors").write_bytes(b"\0" * 10)
    ref = ReferenceSpace.load(reference_copy)
    assert ".text.partial-abc" not in ref.adapter_names()
    with pytest.raises(AliceError):
        ReferenceSpace.load(reference_copy.parent / ".ref.partial-xyz")
