"""The ``alice`` command line: one module per command group.

Command modules import torch and the training code inside their functions, so
``alice --help`` starts without loading any ML library.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback

import typer
from typer.core import TyperGroup

from alice import console
from alice.errors import AliceError, Interrupted

#: set (to anything but "" or "0") to print the traceback behind an error line; ``alice --debug`` sets it
DEBUG_VARIABLE = "ALICE_DEBUG"


class _Root(TyperGroup):
    """The root command: an unknown command names the plugins that failed to load (one may have provided it)."""

    def resolve_command(self, ctx, args: list[str]):
        if args and self.get_command(ctx, args[0]) is None:
            from alice.plugin.manager import get_registry

            failed = get_registry().failed()
            if failed:
                ctx.fail(
                    f"No such command {args[0]!r}. Plugin(s) {', '.join(failed)} failed to load; see "
                    "`alice plugins list`."
                )
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="alice",
    cls=_Root,
    help="ALICE: one embedding space for modalities that were never paired.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(
    debug: bool = typer.Option(
        False, "--debug", help=f"Print the traceback behind an error line (as {DEBUG_VARIABLE}=1 does)."
    ),
) -> None:
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"


def _debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def _build_app() -> None:
    from alice.cli import align, embed, evaluate, modality, plugins, recipe, reference, report, runs, search, serve

    app.add_typer(plugins.app, name="plugins")
    app.add_typer(reference.app, name="reference")
    app.add_typer(modality.app, name="modality")
    app.add_typer(recipe.app, name="recipe")
    app.command("eval")(evaluate.eval_command)
    app.add_typer(align.app, name="align")
    app.add_typer(align.sweep_app, name="sweep")
    app.add_typer(search.index_app, name="index")
    app.command("search")(search.search_command)
    app.command("embed")(embed.embed_command)
    app.command("report")(report.report_command)
    app.add_typer(runs.app, name="runs")
    app.command("serve")(serve.serve_command)
    from alice.plugin.manager import register_commands

    register_commands(app)  # a plugin whose hook fails is left out, and `alice plugins list` says so
    _interruptible(app)


def _interruptible(group: typer.Typer) -> None:
    """Ctrl-C inside a command becomes one line and exit 130.

    Typer turns a KeyboardInterrupt that reaches it into a silent exit 130, so
    it is caught here, in each command, where it arrives; a training job
    catches it first to say where ``--resume`` goes on from.
    """
    for info in group.registered_commands:
        if info.callback is not None and not getattr(info.callback, "_alice_interruptible", False):
            info.callback = _catching_interrupts(info.callback)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _interruptible(sub.typer_instance)


def _catching_interrupts(callback):
    @functools.wraps(callback)
    def command(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted("interrupted; nothing was written (every ALICE write is all or nothing)") from None

    command._alice_interruptible = True
    return command


_build_app()


def main() -> None:
    try:
        app()
    except AliceError as exc:
        from alice.plugin.guard import PluginError

        debug = _debugging()
        if debug:
            traceback.print_exception(exc)
        hint = " (alice --debug shows the traceback)" if isinstance(exc, PluginError) and not debug else ""
        console.error(f"{exc}{hint}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted; nothing was written (every ALICE write is all or nothing)")
        sys.exit(130)
    except OSError as exc:  # a full disk, a permission the checks before the work could not foresee
        where = f"{exc.filename}: " if exc.filename else ""
        console.error(f"{where}{exc.strerror or exc}")
        sys.exit(2)
