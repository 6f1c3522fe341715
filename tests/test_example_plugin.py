"""The example third-party plugin (examples/alice-scanner), installed the way a user installs one.

pip builds it into a temporary target (no network, no change to this
environment) and every command runs in a subprocess with that target on
PYTHONPATH, so ALICE finds the plugin through its entry point alone. Its
``tiny-scanner`` recipe comes from the plugin's own recipe folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import alice, refused

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "alice-scanner"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """examples/alice-scanner installed with pip into a temporary folder."""
    pytest.importorskip("setuptools", reason="building the example without build isolation needs setuptools")
    work = tmp_path_factory.mktemp("alice-scanner")
    # build from a copy: pip leaves build/ and *.egg-info in the source folder
    src = work / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = work / "site"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (site / "alice_scanner" / "recipes" / "tiny-scanner.toml").is_file()
    return site


def _env(site: Path) -> dict[str, str]:
    # built when the test runs, after the fixtures set ALICE_CACHE_DIR and ALICE_RECIPE_PATH
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    # the models are tiny: one thread each is faster than two fighting other jobs for two cores
    # (measured: 300 steps of tiny-scanner in 4 s with one thread, 57 s with two, on a loaded 2-core machine)
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def _alice(*args, site: Path):
    """The CLI in a new process that finds the plugin through its entry point alone."""
    return alice(*args, env=_env(site), fresh=True)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_plugin_is_found_through_its_entry_point_and_imports_lightly(plugin_site):
    r = _alice("plugins", "list", "--json", site=plugin_site)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    scanner = next(p for p in data["plugins"] if p["name"] == "scanner")
    assert scanner["status"] == "ok" and scanner["error"] is None, scanner
    assert scanner["source"] == "entry point (alice-scanner==0.1.0)"
    assert scanner["provides"]["dataset"] == ["digits-scanner"]
    assert scanner["provides"]["backbone"] == ["scanner-stats"]
    assert scanner["provides"]["recipe folder"] == [str(plugin_site / "alice_scanner" / "recipes")]
    assert not [p for p in data["problems"] if "scanner" in p]

    r = _alice("modality", "list", "--json", site=plugin_site)
    recipes = {x["name"]: x for x in json.loads(r.out)["recipes"]}
    assert recipes["digits-scanner"]["family"] == "digits" and recipes["digits-scanner"]["modality"] == "scanner"
    assert recipes["digits-scanner"]["plugin"] == "scanner (alice-scanner==0.1.0)"  # whose recipe folder holds it
    assert (
        recipes["tiny-scanner"]["dataset"] == "digits-scanner"
        and recipes["tiny-scanner"]["backbone"] == "scanner-stats"
    )

    # importing the plugin (what `alice --help` does) pulls in neither numpy nor torch
    code = "import sys, alice_scanner; print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(plugin_site), timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_add_scanner_to_a_frozen_reference_and_retrieve_images(plugin_site, reference_copy):
    before = _hashes(reference_copy)
    assert "reference.safetensors" in before and "reference.json" in before
    assert any(k.startswith("adapters/image/") for k in before) and any(k.startswith("adapters/text/") for k in before)

    # bad options are one-line errors, before anything is written
    refused(
        "data set 'digits-scanner': option max_digits must be between 1 and 4",
        "modality",
        "add",
        "scanner",
        "--reference",
        reference_copy,
        "--set",
        "data.max_digits=7",
        env=_env(plugin_site),
        fresh=True,
    )
    refused(
        "backbone 'scanner-stats': option fft_bins must be an integer from 0 to",
        "modality",
        "add",
        "scanner",
        "--reference",
        reference_copy,
        "--set",
        "backbone.fft_bins=99",
        env=_env(plugin_site),
        fresh=True,
    )
    assert not (reference_copy / "adapters" / "scanner").exists()

    r = _alice("modality", "add", "scanner", "--reference", reference_copy, site=plugin_site)
    assert r.code == 0, r.err
    after = _hashes(reference_copy)
    del before["space.json"]  # the record of the space's files names the new adapter too
    assert {k: after.get(k) for k in before} == before  # nothing that was there changed
    adapters = lambda files: {k.split("/")[1] for k in files if k.startswith("adapters/")}  # noqa: E731
    assert adapters(after) == adapters(before) | {"scanner"}
    manifest = json.loads((reference_copy / "adapters" / "scanner" / "adapter.json").read_text())
    assert manifest["recipe"] == "tiny-scanner" and manifest["backbone"]["identity"]["name"] == "scanner-stats"

    r = _alice("eval", reference_copy, "--json", "--seeds", "1", site=plugin_site)
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert {"image", "text", "scanner"} <= set(report["modalities"])
    rows = {(x["query"], x["gallery"], x["method"]): x for x in report["retrieval"]}
    for gallery in ("image", "text"):
        for method in ("no training", "ALICE (0 pairs)"):
            assert (("scanner", gallery, method) in rows) and ((gallery, "scanner", method) in rows)
    aligned = rows[("scanner", "image", "ALICE (0 pairs)")]["label_exact"]
    untrained = rows[("scanner", "image", "no training")]["label_exact"]
    # measured: 0.073-0.103 (training seeds 0-2, 300-1000 steps) against 0.010 untrained
    assert aligned > 2 * untrained and aligned > untrained + 0.03, (aligned, untrained)
