"""The docs' code runs: docs/plugins.md builds a working plugin from its code blocks alone.

Every fenced block whose first line is a comment naming a file (``# alice_shadow/datasets.py``)
is that file; the test writes them into a package, registers it, adds its modality to a copy of
the tiny reference with the page's own ``tiny-shadow`` recipe, and checks that it retrieves
images. The page's other Python blocks must at least compile, and the hook table must list every
hook of the spec with its signature.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path

import pytest
import tomllib
from cli_helpers import ok, refused

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


@pytest.fixture
def shadow_plugin(tmp_path):
    """The plugin of docs/plugins.md, written from the page into a package and registered."""
    files = files_of("plugins.md")
    assert {
        "pyproject.toml",
        "alice_shadow/__init__.py",
        "alice_shadow/datasets.py",
        "alice_shadow/backbones.py",
        "alice_shadow/recipes/tiny-shadow.toml",
    } <= set(files)
    for name, code in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(code)
    sys.path.insert(0, str(tmp_path))
    module = importlib.import_module("alice_shadow")
    register_plugin(module, "shadow")
    yield tmp_path
    unregister_plugin("shadow")
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m == "alice_shadow" or m.startswith("alice_shadow.")]:
        del sys.modules[name]


def test_the_page_builds_a_plugin_that_adds_a_modality(shadow_plugin, reference_copy):
    pyproject = tomllib.loads((shadow_plugin / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["alice"] == {"shadow": "alice_shadow"}
    assert pyproject["tool"]["setuptools"]["package-data"]["alice_shadow"] == ["recipes/*.toml"]
    listed = json.loads(ok("plugins", "list", "--json").out)
    shadow = next(p for p in listed["plugins"] if p["name"] == "shadow")
    assert shadow["status"] == "ok", shadow
    assert shadow["provides"]["dataset"] == ["digits-shadow"] and shadow["provides"]["label mapper"] == ["singular"]
    assert shadow["provides"]["intervention"] == ["scaled-global"]
    refused(
        "option noise must be between 0 and 1, got 7",
        "modality",
        "add",
        "shadow",
        "--reference",
        reference_copy,
        "--set",
        "data.noise=7",
    )
    ok(
        "modality", "add", "shadow", "--reference", reference_copy
    )  # recipe tiny-shadow, from the plugin's recipe folder
    report = json.loads(ok("eval", reference_copy, "--json", "--seeds", "1").out)
    rows = {(r["query"], r["gallery"], r["method"]): r for r in report["retrieval"]}
    aligned, blind = rows[("shadow", "image", "ALICE (0 pairs)")], rows[("shadow", "image", "no training")]
    assert aligned["label_exact"] > 2 * blind["label_exact"] + 0.02, (aligned, blind)


def test_the_pages_label_mapper_and_design_do_what_it_says(shadow_plugin):
    import torch
    from alice_shadow.designs import ScaledGlobal
    from alice_shadow.labels import singular

    from alice.core.interventions import InterventionBatch

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
