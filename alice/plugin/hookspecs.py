"""The hooks a plugin implements (pluggy project ``alice``).

Registration hooks receive a ``register`` callback; call it once per thing the
plugin provides. A class may also be registered lazily, by its name and where it
lives, ``register("name", "package.module:Class")``: the module is imported the
first time the name is used, so listing plugins imports nothing heavy. Hooks are
never renamed: new arguments are added instead (an implementation may accept
fewer arguments than its spec).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("alice")
hookimpl = pluggy.HookimplMarker("alice")


@hookspec
def alice_register_backbones(register: Callable) -> None:
    """Register feature extractors.

    :param register: call ``register(cls)`` with a subclass of
        :class:`alice.plugin.Backbone` (class attributes ``name``, ``modality``),
        or ``register(name, "package.module:Class")`` to import it on first use.
    """


@hookspec
def alice_register_datasets(register: Callable) -> None:
    """Register labelled data sets.

    :param register: call ``register(cls)`` with a subclass of
        :class:`alice.plugin.DataSet` (class attributes ``name``, ``modality``),
        or ``register(name, "package.module:Class")`` to import it on first use.
    """


@hookspec
def alice_register_label_mappers(register: Callable) -> None:
    """Register label mappers: a data set's vocabulary -> the reference vocabulary.

    :param register: call ``register(name, mapper)`` (or ``register(name,
        "package.module:function")``, imported on first use). ALICE calls
        ``mapper(source, reference, aliases=aliases)``: ``source`` is the data
        set's vocabulary, ``reference`` the reference vocabulary, ``aliases``
        the recipe's ``[labels.aliases]`` table (source label -> reference
        label, ``""`` for none). It returns a dict from each source label to a
        reference label or ``None`` (no counterpart). A source label left out
        of the dict (and not aliased) is refused with an error naming it.
        Reference classes no source label maps to are treated as unannotated
        by that data set.
    """


@hookspec
def alice_register_interventions(register: Callable) -> None:
    """Register intervention designs.

    :param register: call ``register(cls)`` with a subclass of
        :class:`alice.plugin.Intervention` (class attribute ``name``), or
        ``register(name, "package.module:Class")`` to import it (and torch) on first use.
    """


@hookspec
def alice_register_recipe_dirs(register: Callable) -> None:
    """Register folders of recipe TOML files that ``alice reference build NAME`` searches.

    :param register: call ``register(path)`` with a folder.
    """


@hookspec
def alice_register_trackers(register: Callable) -> None:
    """Register trackers: places a training run reports its losses and validation figures to as it runs.

    :param register: call ``register(cls)`` with a subclass of :class:`alice.plugin.Tracker`
        (class attribute ``name``), or ``register(name, "package.module:Class")`` to import it
        (and its library) only when a run uses it. ALICE calls ``cls(directory)``, then
        ``start(run)``, ``log(step, values)`` at each point and ``end(outcome)``.
    """


@hookspec
def alice_register_commands(cli) -> None:
    """Add commands to the CLI.

    :param cli: a :class:`typer.Typer` application of the plugin's own; add commands or sub-apps
        to it. They join the root ``alice`` application when the hook returns; a hook that raises,
        or adds a command whose name is taken, leaves its plugin out whole.
    """
