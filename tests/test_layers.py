"""The shape of the code: layers import only downward, no import cycles, plugins use only the public surface.

Read from the source (ast), so a function-level import counts like a module-level one: an
import placed inside a function to dodge a cycle is still an upward import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: every module of alice/ belongs to one layer; a module may import its own layer and the ones below
LAYERS = [
    (
        "base",
        [
            "alice._version",
            "alice.errors",
            "alice.console",
            "alice.files",
            "alice.tables",
            "alice.distributed",
            "alice.core",
        ],
    ),
    (
        "plugin",
        [
            "alice.plugin",
            "alice.hookspecs",
            "alice.backbones",
            "alice.datasets",
            "alice.interventions",
            "alice.plugins",
        ],
    ),
    ("data", ["alice.data"]),
    ("artifacts", ["alice.artifacts"]),
    ("train", ["alice.train"]),
    ("evaluation", ["alice.evaluation"]),
    ("api", ["alice.api"]),
    ("search", ["alice.search"]),
    ("report", ["alice.report"]),
    ("serve", ["alice.serve"]),  # the search API and page: above api/search/report, below the CLI
    ("cli", ["alice.cli", "alice.__main__"]),
    ("facade", ["alice"]),  # alice/__init__.py: `alice.load`, `alice.Space`, `alice.__version__`
]
#: what the core imports of ALICE: nothing
CORE = "alice.core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / "alice").rglob("*.py"))}


def layer_of(name: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best[0]


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The alice modules ``path`` imports, anywhere in it (``from a.b import c`` counts as a.b.c when c is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out.update(t for t in targets if t == "alice" or t.startswith("alice."))
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, name, known) & known for name, path in mods.items()}


def test_every_import_points_down_the_layers():
    upward = []
    for name, targets in graph().items():
        for target in targets:
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_the_core_imports_nothing_else_of_alice():
    for name, targets in graph().items():
        if name == CORE or name.startswith(CORE + "."):
            assert {t for t in targets if not t.startswith(CORE)} == set(), name


def test_no_module_imports_itself_round_a_cycle():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path):
    """The reader itself can fail: an import inside a function body, relative or absolute, is an edge."""
    source = tmp_path / "store.py"
    source.write_text("def f():\n    from ..cli import search\n    import alice.train.jobs\n")
    found = imports(source, "alice.artifacts.store", set(modules()))
    assert found == {"alice.cli.search", "alice.train.jobs"}
    assert all(layer_of(t) > layer_of("alice.artifacts.store") for t in found)


#: the modules every built-in plugin may share: the transformers backbones and how images and sounds are read
SHARED_PLUGIN_MODULES = ("hub", "media")


def test_built_in_plugins_import_only_the_public_plugin_surface():
    """A plugin author imports from `alice.plugin`; the built-ins show how (and import each other not at all, but
    for the shared modules)."""
    bad = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        folder = path.relative_to(ROOT / "plugins").parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for n in names:
                if (n.startswith("alice.") or n == "alice") and n != "alice.plugin":
                    bad.append(f"{path.relative_to(ROOT)} imports {n}")
                if n.startswith("alice_plugins.") and n.split(".")[1] not in (folder, *SHARED_PLUGIN_MODULES):
                    bad.append(f"{path.relative_to(ROOT)} imports another plugin's module {n}")
    assert not bad, "\n".join(bad)


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


def test_the_example_plugin_imports_only_the_public_surfaces():
    """examples/alice-scanner imports ALICE as docs/plugins.md says a plugin does (test_docs checks the page's)."""
    bad = []
    for path in sorted((ROOT / "examples").rglob("*.py")):
        bad += third_party_imports_outside_the_surface(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not bad, "\n".join(bad)
    assert third_party_imports_outside_the_surface("from alice_plugins.digits import scenes", "x") == [
        "x imports alice_plugins.digits.scenes"
    ]
    assert third_party_imports_outside_the_surface("from alice_plugins.digits import public as S", "x") == []


def test_the_digits_public_module_names_what_the_guide_lists():
    """docs/plugins.md's table of `alice_plugins.digits.public` lists its __all__, no more, no less."""
    import re

    from alice_plugins.digits import public

    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    table = page[page.index("| name in `alice_plugins.digits.public` |") :].split("\n\n")[0]
    cells = [row.split("|")[1] for row in table.splitlines()[2:]]
    listed = {a or b for cell in cells for a, b in re.findall(r"(\w+)\(|`(\w+)`", cell)}
    assert listed == set(public.__all__)
