"""The docs' code runs: docs/plugins.md builds a working plugin from its code blocks alone.

Every fenced block whose first line is a comment naming a file (``# alice_shadow/datasets.py``)
is that file. The test writes them into a package and installs it the way the page says, offline
(``pip install --no-build-isolation --no-index``, into a temporary target rather than the
environment), so ALICE finds it through its entry point alone; then it runs the page's commands
in new processes: ``alice plugins list`` shows it with everything it registers, its command runs,
``alice modality add shadow`` adds its modality to a copy of the tiny reference with the page's
own ``tiny-shadow`` recipe, and ``alice eval`` shows it retrieves images. The error line the page
shows for a bug in ``datasets.py`` is checked too. The page's other Python blocks must at least
compile, and the hook table must list every hook of the spec with its signature.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from cli_helpers import alice, refused

from alice.plugin import hookspecs, register_plugin, unregister_plugin

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
FILE = re.compile(r"^# ([\w./-]+\.(?:py|toml))\n")


def blocks(page: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer((DOCS / page).read_text(encoding="utf-8"))]


def files_of(page: str) -> dict[str, str]:
    out = {}
    for _, code in blocks(page):
        m = FILE.match(code)
        if m:
            out[m.group(1)] = code
    return out


def write_plugin(folder: Path, change: dict[str, tuple[str, str]] | None = None) -> Path:
    """The plugin of docs/plugins.md written into ``folder``; ``change``: file -> (text, replacement)."""
    files = files_of("plugins.md")
    assert {
        "pyproject.toml",
        "alice_shadow/__init__.py",
        "alice_shadow/datasets.py",
        "alice_shadow/backbones.py",
        "alice_shadow/cli.py",
        "alice_shadow/recipes/tiny-shadow.toml",
    } <= set(files)
    for name, code in files.items():
        if change and name in change:
            old, new = change[name]
            assert old in code, (name, old)
            code = code.replace(old, new)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(code)
    return folder


@pytest.fixture(scope="module")
def shadow_site(tmp_path_factory) -> Path:
    """The page's plugin installed as the page says, offline, into a temporary target."""
    pytest.importorskip("setuptools", reason="an offline build without build isolation needs setuptools")
    work = tmp_path_factory.mktemp("alice-shadow")
    source = write_plugin(work / "alice-shadow")
    install = next(code for lang, code in blocks("plugins.md") if lang == "bash" and "--no-index -e ." in code)
    flags = next(line for line in install.splitlines() if "--no-index" in line).split("#")[0].split()
    assert flags[:2] == ["pip", "install"] and flags[-2:] == ["-e", "."], flags
    # the page's offline command, into a target folder instead of the environment (-e takes none); a
    # target is a separate install, where pip would look for alice-align again: it is importable already
    command = [sys.executable, "-m", *flags[:-2], "--no-deps", "--target", str(work / "site"), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr  # the pyproject builds cleanly
    return work / "site"


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def test_the_page_builds_a_plugin_that_adds_a_modality(shadow_site, reference_copy):
    pyproject = tomllib.loads(files_of("plugins.md")["pyproject.toml"])
    assert pyproject["project"]["entry-points"]["alice"] == {"shadow": "alice_shadow"}
    assert (shadow_site / "alice_shadow" / "recipes" / "tiny-shadow.toml").is_file()  # the wheel carries them
    env = _env(shadow_site)
    listed = json.loads(alice("plugins", "list", "--json", env=env, fresh=True).out)
    shadow = next(p for p in listed["plugins"] if p["name"] == "shadow")
    assert shadow["status"] == "ok" and shadow["source"] == "entry point (alice-shadow==0.1.0)", shadow
    assert shadow["provides"]["dataset"] == ["digits-shadow"] and shadow["provides"]["label mapper"] == ["singular"]
    assert shadow["provides"]["intervention"] == ["scaled-global"] and shadow["provides"]["command"] == ["shadow"]
    shown = alice("shadow", "show", "3", env=env, fresh=True)
    assert shown.code == 0 and len(shown.out.split()) == 40 and "scene 3 of test:" in shown.err, shown
    refused("--split test has scenes 0 to 49, got 99", "shadow", "show", "99", env=env, fresh=True)
    refused(
        "option noise must be between 0 and 1, got 7",
        *("modality", "add", "shadow", "--reference", reference_copy, "--set", "data.noise=7"),
        env=env,
        fresh=True,
    )
    # recipe tiny-shadow, from the plugin's recipe folder
    added = alice("modality", "add", "shadow", "--reference", reference_copy, env=env, fresh=True)
    assert added.code == 0, added.err
    assert json.loads((reference_copy / "adapters" / "shadow" / "adapter.json").read_text())["plugins"] == {
        "dataset": "shadow (alice-shadow==0.1.0)",
        "backbone": "shadow (alice-shadow==0.1.0)",
    }
    report = json.loads(alice("eval", reference_copy, "--json", "--seeds", "1", env=env, fresh=True).out)
    rows = {(r["query"], r["gallery"], r["method"]): r for r in report["retrieval"]}
    aligned, blind = rows[("shadow", "image", "ALICE (0 pairs)")], rows[("shadow", "image", "no training")]
    assert aligned["label_exact"] > 2 * blind["label_exact"] + 0.02, (aligned, blind)


@pytest.fixture
def shadow_modules(tmp_path):
    """The page's modules importable in this process (``change`` as for :func:`write_plugin`)."""
    added = []

    def load(change=None):
        folder = write_plugin(tmp_path / f"copy{len(added)}", change)
        sys.path.insert(0, str(folder))
        added.append(str(folder))
        return importlib.import_module("alice_shadow")

    yield load
    for folder in added:
        sys.path.remove(folder)
    for name in [m for m in sys.modules if m == "alice_shadow" or m.startswith("alice_shadow.")]:
        del sys.modules[name]


def test_the_pages_label_mapper_and_design_do_what_it_says(shadow_modules):
    import torch

    from alice.core.interventions import InterventionBatch

    shadow_modules()
    from alice_shadow.designs import ScaledGlobal
    from alice_shadow.labels import singular

    assert singular(["dogs", "Cats", "fish"], ["dog", "cat"], {"fish": ""}) == {
        "dogs": "dog",
        "Cats": "cat",
        "fish": None,
    }
    design = ScaledGlobal(4, 8)
    with torch.no_grad():
        design.b.normal_()
    z = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    k = InterventionBatch(
        torch.tensor([0, 1, 2]),
        torch.tensor([3, 3, 0]),
        torch.ones(3, dtype=torch.bool),
        torch.zeros(3, dtype=torch.long),
    )
    edited = design(z, k)
    assert torch.allclose(edited.norm(dim=1), torch.ones(3)) and not torch.allclose(edited, z)
    assert ScaledGlobal(4, 8, **design.settings()).scale == 0.5


def test_a_bug_in_the_pages_plugin_reads_as_the_page_shows(shadow_modules, reference_copy):
    page = (DOCS / "plugins.md").read_text(encoding="utf-8")
    shown = re.search(r"`datasets.py`, `alice modality add shadow --reference \.\.\.` prints:\n\n```\n(.*)\n```", page)
    assert shown, "the page shows the line a bug in datasets.py gives"
    module = shadow_modules({"alice_shadow/datasets.py": ("images.sum(axis=2)", "images.sum(axis=3)")})
    register_plugin(module, "shadow")
    try:
        r = refused("plugin 'shadow' failed in", "modality", "add", "shadow", "--reference", reference_copy)
    finally:
        unregister_plugin("shadow")
    assert r.code == 1 and r.errors == [shown.group(1)], (r.errors, shown.group(1))


def test_every_other_python_block_compiles():
    for page in ("plugins.md", "python-api.md", "search.md"):
        for lang, code in blocks(page):
            if lang == "python" and not FILE.match(code):
                compile(code, f"{page} block", "exec")


def test_every_hook_is_documented_with_its_signature():
    page = (DOCS / "plugins.md").read_text(encoding="utf-8")
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("alice_"):
            params = ", ".join(
                f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty else p.name
                for p in inspect.signature(fn).parameters.values()
            )
            assert f"`{name}({params}) -> None`" in page, f"{name}({params}) is not on docs/plugins.md"


def test_links_in_the_docs_point_at_files_that_exist():
    root = DOCS.parent
    missing = []
    for page in [root / "README.md", *sorted(DOCS.glob("*.md")), root / "examples" / "alice-scanner" / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(root)} -> {target}")
    assert not missing, "\n".join(missing)


def test_the_pages_plugin_imports_only_the_public_surfaces():
    from test_layers import third_party_imports_outside_the_surface

    bad = []
    for name, code in files_of("plugins.md").items():
        if name.endswith(".py"):
            bad += third_party_imports_outside_the_surface(code, name)
    assert not bad, "\n".join(bad)
