"""``alice plugins``: what is installed and whether it loaded."""

from __future__ import annotations

import typer

from alice import console
from alice.tables import Table

app = typer.Typer(help="Installed plugins and what they register.", no_args_is_help=True)


@app.command("list")
def list_plugins(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    check: bool = typer.Option(
        False, "--check", help="Also import everything registered by name (slower), to find what fails to load."
    ),
) -> None:
    """List plugins, where they come from, what they provide (commands too), and any failure."""
    from alice.plugin.manager import get_registry

    reg = get_registry()
    if check:
        reg.resolve_all()
    unresolved: dict[str, str] = {}  # plugin -> its first registration that failed to load
    for (kind, name), problem in sorted(reg.unresolved.items()):
        unresolved.setdefault(reg.provider(kind, name), problem)
    rows = []
    for info in reg.plugins.values():
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.provides.items())
        error = info.error or unresolved.get(info.name)
        rows.append(
            {
                "name": info.name,
                "source": info.source,
                "status": "failed" if error else "ok",
                "error": error,
                "provides": info.provides,
                "summary": provides,
            }
        )
    if as_json:
        console.print_json(
            {"plugins": [{k: v for k, v in r.items() if k != "summary"} for r in rows], "problems": reg.problems}
        )
        return
    console.table(
        Table(
            "Plugins",
            ["plugin", "source", "status", "provides"],
            [[r["name"], r["source"], "FAILED" if r["error"] else "ok", r["summary"] or None] for r in rows],
        )
    )
    for problem in reg.problems:  # each failure once, in its own line: the table says only FAILED
        console.warn(problem)
