"""The ``alice`` command line: one module per command group.

Command modules import torch and the training code inside their functions, so
``alice --help`` starts without loading any ML library.
"""

from __future__ import annotations

import sys

import typer

from alice import console
from alice.errors import AliceError

app = typer.Typer(
    name="alice",
    help="ALICE: one embedding space for modalities that were never paired.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _build_app() -> None:
    from alice.cli import align, evaluate, modality, plugins, recipe, reference, report, search

    app.add_typer(plugins.app, name="plugins")
    app.add_typer(reference.app, name="reference")
    app.add_typer(modality.app, name="modality")
    app.add_typer(recipe.app, name="recipe")
    app.command("eval")(evaluate.eval_command)
    app.add_typer(align.app, name="align")
    app.add_typer(align.sweep_app, name="sweep")
    app.add_typer(search.index_app, name="index")
    app.command("search")(search.search_command)
    app.command("report")(report.report_command)
    from alice.plugin.manager import register_commands

    for problem in register_commands(app):
        console.warn(problem)


_build_app()


def main() -> None:
    try:
        app()
    except AliceError as exc:
        console.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted; nothing was written")
        sys.exit(130)
