"""What more than one test file uses, in one place: running the ``alice`` command line, and the small things tests
build (files, archives, plugins, a headless browser).

The one way tests run the ``alice`` command line is as a user runs it:
``alice(*args)`` runs the real entry point (``alice.cli.main``) in this
process and returns what it printed and its exit status: fast, since torch and
the plugins are loaded once per session. ``alice(*args, fresh=True)`` runs
``python -m alice`` in a new process instead, for what only a new process
shows: plugins found through entry points under another ``ALICE_PLUGINS``,
what importing costs, a process killed midway. ``env`` and ``cwd`` apply to
both (in this process they are set for the call and restored after).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np
import pytest
import torch

from alice.plugin import Backbone, DataSet, Split, hookimpl

ROOT = Path(__file__).resolve().parents[1]


class Result(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


@contextlib.contextmanager
def _environment(env: dict[str, str] | None, cwd: Path | None):
    old_env, old_cwd = dict(os.environ), os.getcwd()
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        os.chdir(old_cwd)


def alice(
    *args, env: dict[str, str] | None = None, cwd: Path | None = None, fresh: bool = False, timeout: int = 600
) -> Result:
    words = [str(a) for a in args]
    if fresh:
        done = subprocess.run(
            [sys.executable, "-m", "alice", *words], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
        )
        return Result(done.returncode, done.stdout, done.stderr)
    from alice.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["alice", *words]
    code = 0
    try:
        with _environment(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
    return Result(code, out.getvalue(), err.getvalue())


def ok(*args, **kwargs) -> Result:
    """Run a command that must succeed; on failure, show what it printed."""
    r = alice(*args, **kwargs)
    assert r.code == 0, f"alice {' '.join(map(str, args))} exited {r.code}:\n{r.err[-3000:]}"
    return r


def refused(needle: str, *args, **kwargs) -> Result:
    """Run a command that must fail with exactly one ``error:`` line containing ``needle`` and no traceback."""
    r = alice(*args, **kwargs)
    assert r.code != 0, f"exit 0 for {args}: {r.err}"
    assert "Traceback" not in r.err, r.err
    assert "Traceback" not in r.out, r.err
    assert len(r.errors) == 1, r.err
    assert needle in r.errors[0], r.errors[0]
    return r


# ----------------------------------------------------------------- files


def benchmark_module(name: str) -> ModuleType:
    """The script ``NAME.py`` of the benchmarks folder, imported from its path (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_png(path: Path, seed: int, size: int = 12, mode: str = "L") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((size, size)) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").convert(mode).save(path)


def write_photos(
    root: Path, n: int = 24, labels=("cat", "dog", "cat;dog"), header: str = "path,labels,split,pair_id"
) -> Path:
    """n small PNGs and a labels.csv: the last 4 test, the 4 before val, pair ids p<i>."""
    lines = [header]
    for i in range(n):
        write_png(root / f"img{i}.png", i)
        split = "test" if i >= n - 4 else "val" if i >= n - 8 else "train"
        lines.append(f"img{i}.png,{labels[i % len(labels)]},{split},p{i}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def write_recipe(
    path: Path, data: dict, backbone: dict, stage: str = "reference", modality: str = "image", **extra
) -> Path:
    """A tiny recipe (5 steps, small model) of family "mine" over ``data`` and ``backbone``; ``extra`` adds tables."""
    from alice.data.scaffold import toml_value

    lines = [f'stage = "{stage}"', 'family = "mine"', f'modality = "{modality}"', "[data]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in data.items()]
    lines += ["[backbone]", *(f"{k} = {toml_value(v)}" for k, v in backbone.items())]
    if stage == "reference":
        lines += ["[model]", "latent_dim = 8", "encoder_hidden = [16]", "classifier_hidden = [16]"]
        lines += ["[intervention]", 'design = "global"']
    else:
        lines += ["[model]", "encoder_hidden = [16]"]
    for table, values in extra.items():
        lines += [f"[{table}]", *(f"{k} = {toml_value(v)}" for k, v in values.items())]
    lines += ["[training]", "steps = 5", "batch_size = 8", "eval_every = 0", "checkpoint_every = 0"]
    path.write_text("\n".join(lines) + "\n")
    return path


def scene_png(ref, wanted: list[str]) -> tuple[bytes, int]:
    """A test-split scene of the space's image adapter showing exactly ``wanted``, as PNG bytes, and its row
    (the row of the ``image-test`` index too, which holds the test split in order)."""
    from PIL import Image

    from alice.artifacts.loaded import ReferenceSpace
    from alice.data.loading import make_dataset

    ds = make_dataset(ReferenceSpace.load(ref).load_adapter("image").manifest.modality_spec().data)
    split = ds.split("test")
    for row in range(len(split.inputs)):
        if [ds.vocabulary[c] for c in np.flatnonzero(split.labels[row])] == wanted:
            image = (np.clip(np.asarray(split.inputs[row]), 0, 1) * 255).round().astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            return buffer.getvalue(), row
    raise AssertionError(f"no test scene showing exactly {wanted}")


# ----------------------------------------------------------------- archives


def tar_archive(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tar_file(name: str, data: bytes = b"{}") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def tar_link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


def tampered_copy(archive: Path, out: Path) -> None:
    """``archive`` with one bit of its reference weights flipped, entries otherwise as they were."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("reference.safetensors"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(m, io.BytesIO(data) if data is not None else None)


# ----------------------------------------------------------------- plugins that misbehave


class Troubled(DataSet):
    """A data set that misbehaves on demand: ``problem`` names how."""

    name = "troubled"
    modality = "image"

    def __init__(self, problem: str = "none") -> None:
        self.problem = problem

    @property
    def vocabulary(self):
        return ["zero", "one", "two"]

    def split(self, name):
        rng = np.random.default_rng(0)
        n = 0 if self.problem == "empty" else 40
        images = [rng.random((20, 20)).astype(np.float32) for _ in range(n)]
        labels = (rng.random((n, 3)) > 0.5).astype(np.float32)
        labels[:, 0] = 1
        if self.problem == "not-binary":
            labels[0, 0] = 2.0
        if self.problem == "columns":
            labels = labels[:, :2]
        if self.problem == "unlabelled":
            labels[:] = 0
        if self.problem == "nan-pixels":
            images[3][0, 0] = np.nan
        return Split(images, labels, None)


class TroubledPlugin:
    @hookimpl
    def alice_register_datasets(self, registrar):
        registrar.dataset(Troubled)


class EchoBackbone(Backbone):
    """A backbone that says its features are 3 wide and returns 5."""

    name = "echo"
    modality = "image"

    @property
    def feature_dim(self):
        return 3

    def extract(self, inputs, device):
        return torch.zeros(len(inputs), 5)  # wrong: says 3, returns 5


# ----------------------------------------------------------------- a browser


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def chromium_driver():
    """Headless Chromium through Selenium, offline; skips the test where Debian's chromium is not installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (`make test` installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,2000",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


# ----------------------------------------------------------------- imports


#: what a third-party plugin imports of ALICE: the plugin surface, and the digits plugin's public module
THIRD_PARTY_SURFACE = ("alice.plugin", "alice_plugins.digits.public")


def third_party_imports_outside_the_surface(source: str, where: str) -> list[str]:
    """Imports of ALICE (``alice``, ``alice_plugins``) in a third-party plugin's module that are not public."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            used = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            m = node.module
            parent = any(s.startswith(m + ".") for s in THIRD_PARTY_SURFACE)  # from alice_plugins.digits import public
            used = [f"{m}.{a.name}" for a in node.names] if parent else [m]
        else:
            continue
        for name in used:
            if name.split(".")[0] in ("alice", "alice_plugins") and name not in THIRD_PARTY_SURFACE:
                bad.append(f"{where} imports {name}")
    return bad


def wait_in_page(driver, script: str, timeout: float = 60):
    """The value of ``script`` in the page once it is truthy; fails naming the page's error line after ``timeout`` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    error = driver.execute_script("return document.querySelector('#error').textContent;")
    raise AssertionError(f"timed out waiting for: {script} (page error: {error!r})")


def scene_file_with(ref: Path, label: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """A test-split image holding only ``label``, written as a PNG file; with its labels."""
    path = tmp_path / "scene.png"
    path.write_bytes(scene_png(ref, [label])[0])
    return path, [label]


def ctrl_c_heard() -> None:
    """In a child before it runs: Ctrl-C (SIGINT) back to its default, so the child's Python turns it into
    KeyboardInterrupt even when the suite itself was started with SIGINT ignored (a shell's ``cmd &``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
