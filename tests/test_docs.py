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

The rest of the docs run too, or at least parse:

- every ``alice ...`` line of a shell block in README.md and docs/*.md is resolved through the
  command tree as click would (``make_context``, resilient parsing off), so an unknown option or a
  missing or unquoted argument fails; every ``alice ...`` named in backticks in the text is a
  command with the options it names; each row of docs/cli.md's command table names every option of
  its command and none it lacks, and every command has a row;
- the look-and-search commands the pages show against the digits space run as written on the
  tiny space, and docs/search.md's curl examples are answered as the page shows;
- every repository path (``alice/...``, ``docs/...#anchor``, ``plugins/...``, ``tests/...``,
  ``benchmarks/...``) and dotted name (``alice.files.recover``) quoted in the docs, docstrings and comments
  exists, found from the source without importing where it can be;
- no placeholder (an all-caps ``WORD-WORD`` line, TODO, TBD, XXX, ``-REAL``) and no word on how
  the work was organised is left in them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from cli_helpers import alice, refused, third_party_imports_outside_the_surface

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
    assert flags[:2] == ["pip", "install"], flags
    assert flags[-2:] == ["-e", "."], flags
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


@pytest.mark.slow
def test_the_page_builds_a_plugin_that_adds_a_modality(shadow_site, reference_copy):
    pyproject = tomllib.loads(files_of("plugins.md")["pyproject.toml"])
    assert pyproject["project"]["entry-points"]["alice"] == {"shadow": "alice_shadow"}
    assert (shadow_site / "alice_shadow" / "recipes" / "tiny-shadow.toml").is_file()  # the wheel carries them
    env = _env(shadow_site)
    listed = json.loads(alice("plugins", "list", "--json", env=env, fresh=True).out)
    shadow = next(p for p in listed["plugins"] if p["name"] == "shadow")
    assert shadow["status"] == "ok", shadow
    assert shadow["source"] == "entry point (alice-shadow==0.1.0)", shadow
    assert shadow["provides"]["dataset"] == ["digits-shadow"]
    assert shadow["provides"]["label mapper"] == ["singular"]
    assert shadow["provides"]["intervention"] == ["scaled-global"]
    assert shadow["provides"]["command"] == ["shadow"]
    shown = alice("shadow", "show", "3", env=env, fresh=True)
    assert shown.code == 0, shown
    assert len(shown.out.split()) == 40, shown
    assert "scene 3 of test:" in shown.err, shown
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
    assert torch.allclose(edited.norm(dim=1), torch.ones(3))
    assert not torch.allclose(edited, z)
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
    assert r.code == 1, (r.errors, shown.group(1))
    assert r.errors == [shown.group(1)], (r.errors, shown.group(1))


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
    bad = []
    for name, code in files_of("plugins.md").items():
        if name.endswith(".py"):
            bad += third_party_imports_outside_the_surface(code, name)
    assert not bad, "\n".join(bad)


# --- every command the docs show parses against the command line -------------------------------------------------

ROOT = DOCS.parent
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "examples" / "alice-scanner" / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
#: a shell line that runs alice: typed (``$ ``, ``time ``, variables set before it, ``torchrun ... -m``) or
#: printed as the next step (``next: ``); in a block with ``$ `` prompts only those lines are typed (the
#: others are output); a word ending in ":" after alice is a diagram's label; toml/python blocks are not shell
SHELL_LINE = re.compile(
    r"^\s*(?P<prompt>\$ |next: )?(?:time )?(?:[A-Z_]+=\S* )*(?:torchrun (?:--[\w-]+ \S+ )*-m )?"
    r"alice (?P<words>(?![\w-]+:).*)$"
)
INLINE = re.compile(r"`alice ([^`]+)`")
#: fences whose lines are shell or program output, not code of another language
SHELL_FENCES = {"", "bash", "sh", "shell", "console", "text"}


def _page_name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def shown_commands() -> list[tuple[str, list[str]]]:
    """Every alice command line in a shell or output block of the docs: (page:line, its words)."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for fence in FENCE.finditer(text):
            if fence.group(1) not in SHELL_FENCES:
                continue
            first = text.count("\n", 0, fence.start(2)) + 1
            lines = fence.group(2).replace("\\\n", " ").splitlines()
            prompted = any(line.startswith("$ ") for line in lines)
            for n, line in enumerate(lines):
                m = SHELL_LINE.match(line)
                if m and (m.group("prompt") or not prompted):
                    words = shlex.split(m.group("words"), comments=True)
                    words = words[:-1] if words[-1:] == ["&"] else words  # started in the background
                    out.append((f"{_page_name(page)}:{first + n}", words))
    return out


def mentioned_commands() -> list[tuple[str, list[str]]]:
    """Every ``alice ...`` in backticks outside the code blocks: a command named, maybe with some options."""
    out = []
    for page in PAGES:
        text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text(encoding="utf-8"))
        for m in INLINE.finditer(text):
            words = m.group(1).replace("\\|", "|")
            try:
                split = shlex.split(words)
            except ValueError:
                split = words.split()
            out.append((f"{_page_name(page)}:{text.count(chr(10), 0, m.start()) + 1}", split))
    return out


#: commands the docs name to show how they are refused
REFUSED_ON_PURPOSE = {"loud": "docs/reliability.md: an unknown command while plugins failed to load"}


def cli_root():
    """The click command tree of ``alice`` with the plugins installed here."""
    import typer

    from alice.cli import app

    return typer.main.get_command(app)


def page_plugin_commands():
    """The commands docs/plugins.md's own plugin registers, as a click group (its files, not an install)."""
    import typer

    spec = importlib.util.spec_from_loader("page_plugin_cli", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(files_of("plugins.md")["alice_shadow/cli.py"], "alice_shadow/cli.py", "exec"), module.__dict__)
    group = typer.Typer()
    group.add_typer(module.app, name="shadow")
    return typer.main.get_command(group)


def parse(words: list[str], root) -> str | None:
    """None when ``alice WORDS`` parses down to one command with every argument; else click's complaint."""
    name, command, parent = "alice", root, None
    try:
        while True:
            ctx = command.make_context(name, list(words), parent=parent, resilient_parsing=False)
            if not hasattr(command, "resolve_command"):
                return None
            # a group leaves its subcommand and the words after it in these two (click's own names)
            words = [*ctx._protected_args, *ctx.args]
            if not words:
                return "names a command group, not a command"
            name, command, words = command.resolve_command(ctx, words)
            parent = ctx
    except Exception as exc:  # click's UsageError and its kin: the message is what a user would read
        return exc.format_message() if hasattr(exc, "format_message") else str(exc)


def options_of(command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")} | {"--help"}


def resolve(words: list[str], root):
    """The command ``alice WORDS`` names and the words after its name; a complaint instead when it names none."""
    command, rest = root, list(words)
    while hasattr(command, "resolve_command"):
        while rest and rest[0].startswith("-"):
            if rest[0].split("=")[0] not in options_of(command):
                return f"{command.name} has no option {rest[0]}", []
            rest.pop(0)
        if not rest or not re.fullmatch(r"[a-z][\w-]*", rest[0]):
            return command, rest  # the group itself (`alice --help`, `alice reference`)
        sub = command.get_command(None, rest[0])
        if sub is None:
            return f"no command {rest[0]!r} under {command.name}", []
        command, rest = sub, rest[1:]
    return command, rest


def test_every_command_shown_in_a_code_block_parses():
    root, plugin = cli_root(), page_plugin_commands()
    shown = shown_commands()
    assert len(shown) > 90 and any("your-data.md" in where for where, _ in shown), len(shown)
    bad = []
    for where, words in shown:
        tree = plugin if words[:1] == ["shadow"] else root
        problem = parse(words, tree)
        if problem:
            bad.append(f"{where}: alice {shlex.join(words)}: {problem}")
    assert not bad, "\n".join(bad)


def test_every_command_named_in_the_text_exists_with_the_options_it_names():
    root, plugin = cli_root(), page_plugin_commands()
    mentioned = mentioned_commands()
    assert len(mentioned) > 300, len(mentioned)
    bad = []
    for where, words in mentioned:
        if " ".join(words) in REFUSED_ON_PURPOSE:
            continue
        command, rest = resolve(words, plugin if words[:1] == ["shadow"] else root)
        if isinstance(command, str):
            bad.append(f"{where}: alice {' '.join(words)}: {command}")
            continue
        known = options_of(command)
        for word in rest:
            if re.match(r"--?[a-z]", word) and word.split("=")[0] not in known:
                bad.append(f"{where}: alice {' '.join(words)}: {command.name} has no option {word}")
    assert not bad, "\n".join(bad)


def leaf_commands(group, path=()) -> dict[str, object]:
    """Every command under ``group`` by its words (``reference build``), groups walked through."""
    out = {}
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        if hasattr(command, "list_commands"):
            out.update(leaf_commands(command, (*path, name)))
        else:
            out[" ".join((*path, name))] = command
    return out


def test_the_command_tables_options_match_each_commands_help():
    """docs/cli.md: each row of the command table names every option its command takes, and no other."""
    root = cli_root()
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    table = page.split("| command | what it does |")[1].split("\n\n")[0]
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| `alice ")]
    documented, bad = set(), []
    for row in rows:
        for span in re.findall(r"`alice ([^`]+)`", row):
            words = span.replace("\\|", "|").split()
            command, rest = resolve(words, root)
            assert not isinstance(command, str), (span, command)
            name = " ".join(w for w in words[: len(words) - len(rest)])
            documented.add(name)
            named = {re.sub(r"[\[\]]", "", w).split("=")[0] for w in rest}
            named = {w for w in named if re.fullmatch(r"--?[a-z][\w-]*", w)}
            visible = [p for p in command.params if p.opts[0].startswith("-") and not getattr(p, "hidden", False)]
            for p in visible:
                if not set(p.opts) & named:
                    bad.append(f"`alice {name}` takes {'/'.join(p.opts)}, which its row does not name")
            for word in named - options_of(command):
                bad.append(f"`alice {name}`'s row names {word}, which it does not take")
    assert not bad, "\n".join(bad)
    # ALICE's own commands and its built-in plugins' (a plugin another test registers is not on the page)
    own = {n for n, c in leaf_commands(root).items() if c.callback.__module__.startswith(("alice.", "alice_plugins."))}
    assert documented == own, own ^ documented


# --- every path and module name the docs and the code's prose quote exists ------------------------------------------

#: a path in the repository: ``alice/files.py``, ``docs/search.md#the-api``, ``plugins/digits/``, ``registry/*.toml``
QUOTED_PATH = re.compile(
    r"(?<![\w./-])((?:alice|docs|plugins|tests|benchmarks|examples|registry)/[\w./*<>{}-]*)(?:#([\w-]+))?"
)
#: a dotted name of ALICE's: ``alice.files.recover``, alice.plugin.InputLimits (not in quotes: a string is data)
DOTTED = re.compile(r"(?<![\w.\"'/-])alice(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"^\s*from (alice(?:\.\w+)*) import \(?([\w, ]+)")
SOURCES = ("alice", "plugins", "tests", "benchmarks", "examples")


def prose_files() -> list[Path]:
    """The docs, and every Python file whose docstrings and comments may name a path or a module."""
    python = [p for folder in SOURCES for p in sorted((ROOT / folder).rglob("*.py")) if ".venv" not in p.parts]
    return [*PAGES, ROOT / "Makefile", *python]


def quoted_names(page: Path) -> tuple[list[tuple[int, str, str | None]], list[tuple[int, str]]]:
    """(line, path, #anchor) and (line, dotted name) quoted on a page or in a Python file's docstrings and comments."""
    paths, names = [], []
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        paths += [(n, m.group(1), m.group(2)) for m in QUOTED_PATH.finditer(line)]
        imported = FROM_IMPORT.match(line)
        if imported:  # a docs page's code, or a docstring's example: every name it imports
            if page.suffix == ".md":
                names += [(n, f"{imported.group(1)}.{w.strip()}") for w in imported.group(2).split(",") if w.strip()]
            continue
        if page.suffix == ".py" and re.match(r"\s*import ", line):
            continue
        names += [(n, m.group(0)) for m in DOTTED.finditer(line)]
    return paths, names


def anchors(page: Path) -> set[str]:
    """The #anchors of a Markdown page's headings, as GitHub makes them."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def path_problem(path: str, anchor: str | None) -> str | None:
    path = path.rstrip(".")
    if any(c in path for c in "*<{"):  # a pattern (``registry/*.toml``, ``adapters/<name>/``): its folder
        path = re.split(r"[*<{]", path)[0].rsplit("/", 1)[0]
    if not (ROOT / path).exists():
        return f"{path} does not exist"
    if anchor and path.endswith(".md") and anchor not in anchors(ROOT / path):
        return f"{path} has no heading #{anchor}"
    return None


def module_file(module: str) -> Path | None:
    """The source of a dotted module name as the import system would find it in its top package, unimported."""
    top, *parts = module.split(".")
    spec = importlib.util.find_spec(top)  # only the top package is imported, and ``import alice`` loads no torch
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(spec.submodule_search_locations[0]).joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defines(module: str, chain: list[str]) -> bool | None:
    """Whether a module's source defines ``chain`` (``Space.search``): a def, class or assignment at its top (a
    re-export followed to its source), then inside that class; None when the source cannot say."""
    import ast

    path = module_file(module)
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for i, part in enumerate(chain):
        found = None
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == part:
                found = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == part for t in targets):
                    found = node
            elif i == 0 and isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == part:
                        source = node.module if not node.level else _relative(module, path, node)
                        if module_file(f"{source}.{alias.name}"):
                            return not chain[1:] or _defines(f"{source}.{alias.name}", chain[1:])
                        return module_file(source) is not None and _defines(source, [alias.name, *chain[1:]])
        if found is None:
            return None if i == 0 else False  # at the top: a module-level __getattr__ may still answer
        if i + 1 < len(chain):
            if not isinstance(found, ast.ClassDef):
                return None
            body = found.body
    return True


def _relative(module: str, path: Path, node) -> str:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module])


def name_resolves(name: str) -> bool:
    """A dotted name is a module, or an attribute of one: read from the source when it can be (no import),
    imported otherwise (a name a module makes on first use)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if module_file(module) is None:
            continue
        chain = parts[cut:]
        if not chain:
            return True
        defined = _defines(module, chain)
        if defined is not None:
            return defined
        thing = importlib.import_module(module)
        for part in chain:
            if not hasattr(thing, part):
                return False
            thing = getattr(thing, part)
        return True
    return False


def test_every_path_and_module_the_docs_and_docstrings_quote_exists():
    missing, counted = [], {"paths": set(), "names": set()}
    for page in prose_files():
        paths, names = quoted_names(page)
        where = _page_name(page)
        for n, path, anchor in paths:
            counted["paths"].add(path)
            problem = path_problem(path, anchor)
            if problem:
                missing.append(f"{where}:{n}: {problem}")
        for n, name in names:
            counted["names"].add(name)
            if not name_resolves(name):
                missing.append(f"{where}:{n}: {name} is no module or attribute of one")
    assert len(counted["paths"]) > 50 and len(counted["names"]) > 100, {k: len(v) for k, v in counted.items()}
    assert not missing, "\n".join(missing)


# --- no placeholders, no notes on how the work was organised -------------------------------------------------------

#: a word held for text to come: ``SERVE-START`` alone on a line, TODO, TBD, XXX, a stray ``-REAL``
PLACEHOLDER = re.compile(r"^\s*[A-Z]+(?:-[A-Z]+)+\s*$|\bTODO\b|\bTBD\b|\bXXX\b|-REAL\b", re.M)
#: how the work was organised, which is no part of the project: who led it, their notes, their machines
ORGANISATION = re.compile(
    r"\b(?:the|a|our) lead\b|\bnotes? file|\bmeasurement notes\b|\bissue #?\d|\bthe issue'?s?\b|\bhelper session"
    r"|\bsessions? (?:that|which) (?:wrote|measured)|\bworktree|/work/|/tmp/wt",
    re.I,
)
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:tmp|work|home)/")


def test_no_placeholder_is_left_in_the_docs():
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in PLACEHOLDER.finditer(text):
            found.append(f"{_page_name(page)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0).strip()}")
    assert not found, "\n".join(found)


def test_no_doc_or_comment_speaks_of_how_the_work_was_organised():
    found = []
    other = [ROOT / "pyproject.toml", *sorted(ROOT.glob("registry/*.toml")), *sorted(ROOT.glob("alice/**/*.html"))]
    for page in [*prose_files(), *other, *sorted(ROOT.glob("plugins/**/*.toml"))]:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if page == Path(__file__).resolve() and ("re.compile" in line or line.lstrip().startswith('r"')):
                continue  # the patterns themselves
            m = ORGANISATION.search(line) or (page.suffix == ".md" and MACHINE_PATH.search(line))
            if m:
                found.append(f"{_page_name(page)}:{n}: {m.group(0)}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


# --- the search commands the docs show run, as written, on a tiny space ----------------------------------------------

#: what a shown command may do to the digits space here: look and search (training and the report are
#: the tests of those commands; the pages' commands are parsed above)
RUNS_HERE = {("index", "build"), ("index", "list"), ("search",), ("reference", "show"), ("reference", "verify")}
#: shown commands of those kinds that cannot run on the tiny space, and why
NOT_HERE = {
    "clip.wav": "the tiny space has no speech adapter; tests/test_audio.py searches with a sound file",
}
SPACE = "artifacts/digits-image"


def test_the_search_commands_the_pages_show_run_on_a_tiny_space(tiny_reference, tmp_path):
    """The look-and-search commands the pages show against the digits space, each distinct one once, in the order
    they first appear (README.md's, then each page's), in a folder where ``artifacts/digits-image`` is a copy of
    the tiny space and ``scene.png`` a test scene with a three."""
    from cli_helpers import scene_file_with

    commands: dict[tuple[str, ...], str] = {}
    for where, words in shown_commands():
        if SPACE in words and any(tuple(words[: len(k)]) == k for k in RUNS_HERE):
            commands.setdefault(tuple(words), where)
    assert {where.split(":")[0] for where in commands.values()} >= {"README.md", "docs/search.md"}, commands
    shutil.copytree(tiny_reference, tmp_path / SPACE)
    assert scene_file_with(tmp_path / SPACE, "three", tmp_path)[0] == tmp_path / "scene.png"
    ran, skipped = 0, []
    for words, where in commands.items():
        reason = next((why for what, why in NOT_HERE.items() if what in words), None)
        if reason:
            skipped.append(f"{where}: alice {shlex.join(words)}: {reason}")
            continue
        r = alice(*words, cwd=tmp_path)
        assert r.code == 0, f"{where}: alice {shlex.join(words)} exited {r.code}:\n{r.err[-2000:]}"
        if words[0] == "search":
            assert "top " in r.out and "error" not in r.err, (where, words, r.out, r.err)
        ran += 1
    assert ran >= 9 and len(skipped) == 1, (ran, skipped)


# --- the server's examples answer as docs/search.md shows ------------------------------------------------------------


def curl_examples(page: str = "search.md") -> list[tuple[list[str], str]]:
    """Every ``$ curl ...`` line of the page's shell blocks, as its words, with the answer printed below it."""
    out = []
    for fence in FENCE.finditer((DOCS / page).read_text(encoding="utf-8")):
        if fence.group(1) not in SHELL_FENCES:
            continue
        lines = fence.group(2).splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ curl "):
                answer = []
                for after in lines[i + 1 :]:
                    if after.startswith("$ "):
                        break
                    answer.append(after)
                words = shlex.split(line[2:], comments=True)[1:]
                words = words[: words.index("|")] if "|" in words else words  # `| python -m json.tool`: layout
                out.append((words, "\n".join(answer)))
    return out


def as_request(words: list[str], token: str, folder: Path) -> dict:
    """A curl command line as the arguments of a TestClient request (the flags the page uses: -s -H -d -F)."""
    request: dict = {"method": "GET", "headers": {}}
    words = [w.replace("$ALICE_SERVE_TOKEN", token) for w in words]
    while words:
        word = words.pop(0)
        if word == "-s":
            continue
        if word == "-H":
            name, value = words.pop(0).split(": ", 1)
            request["headers"][name] = value
        elif word == "-d":
            request["method"], request["content"] = "POST", words.pop(0)
        elif word == "-F":
            name, value = words.pop(0).split("=", 1)
            request["method"] = "POST"
            if value.startswith("@"):
                request.setdefault("files", {})[name] = (value[1:], (folder / value[1:]).read_bytes())
            else:
                request.setdefault("data", {})[name] = value
        else:
            assert word.startswith("http://127.0.0.1:8000/"), word
            request["url"] = word.removeprefix("http://127.0.0.1:8000")
    return request


def keys_of(answer) -> set[str]:
    if isinstance(answer, dict):
        return set(answer) | {k for v in answer.values() for k in keys_of(v)}
    if isinstance(answer, list):
        return {k for v in answer for k in keys_of(v)}
    return set()


def test_the_servers_examples_answer_as_the_page_shows(tiny_reference, tmp_path):
    """docs/search.md's curl examples, replayed against the tiny space through FastAPI's TestClient: each is
    answered with the status the page implies (an ``{"error": ...}`` answer is that line, refused), and every key
    the page shows in an answer is in the real one."""
    fastapi_testclient = pytest.importorskip("fastapi.testclient")
    from cli_helpers import scene_file_with

    from alice.config.serve import ServeSpec
    from alice.search.build import build_index
    from alice.serve.app import create_app
    from alice.serve.state import Served

    space = tmp_path / SPACE
    shutil.copytree(tiny_reference, space)
    for modality in ("image", "text"):
        build_index(space, modality, "test", device_name="cpu")
    scene_file_with(space, "three", tmp_path)
    examples = curl_examples()
    assert len(examples) >= 8, examples
    token = "a-token-as-long-as-the-page-asks"
    spec = ServeSpec(token=token)
    routes = set()
    with fastapi_testclient.TestClient(create_app(spec=spec, served=Served.load(space, spec))) as client:
        for words, shown in examples:
            request = as_request(words, token, tmp_path)
            routes.add((request["method"], re.sub(r"/\d+", "/N", request["url"].split("?")[0])))
            answer = client.request(**request)
            if shown.startswith('{"error"'):
                assert answer.status_code >= 400 and json.loads(shown) == answer.json(), (words, answer.text)
                continue
            assert answer.status_code == 200, (words, answer.status_code, answer.text)
            if shown.startswith(("{", "[")):
                named = set(re.findall(r'"([a-z_@0-9]+)": ?', shown))
                assert named <= keys_of(answer.json()), (words, named - keys_of(answer.json()))
            else:
                assert shown.split("…")[0] in answer.text, (words, shown, answer.text[:300])
    assert routes >= {("GET", "/api/health"), ("GET", "/api/space"), ("POST", "/api/search")}, routes
