"""The hooks a plugin implements (pluggy project ``alice``).

Each registration hook is handed a typed registrar (:mod:`alice.plugin.registrars`)
with one method per thing it registers: ``registrar.backbone(...)``,
``registrar.dataset(...)``, ``registrar.label_mapper(...)``,
``registrar.intervention(...)``, ``registrar.recipe_folder(...)``, ``registrar.tracker(...)``. A class may be
registered by its name and where it lives, ``registrar.backbone("name",
"package.module:Class")``: the module is imported the first time the name is
used, so listing plugins imports nothing heavy. Hooks are never renamed: new
arguments are added instead (an implementation may accept fewer arguments than
its spec).

``register``, the callable these hooks took before the registrars, is still
passed to an implementation that names it, for one more release; pluggy warns
(:class:`~alice.plugin.registrars.AliceDeprecationWarning`) when such a plugin is
registered.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from alice.plugin.registrars import (
    AliceDeprecationWarning,
    BackboneRegistrar,
    DataSetRegistrar,
    InterventionRegistrar,
    LabelMapperRegistrar,
    RecipeFolderRegistrar,
    TrackerRegistrar,
)

hookspec = pluggy.HookspecMarker("alice")
hookimpl = pluggy.HookimplMarker("alice")


def _register_deprecated(hook: str, method: str) -> dict[str, Warning]:
    """pluggy's ``warn_on_impl_args``: an implementation that takes ``register`` is warned when registered."""
    return {
        "register": AliceDeprecationWarning(
            f"{hook}(register): the `register` callable is deprecated and will be removed in the next ALICE "
            f"release; take `registrar` instead and call `registrar.{method}(...)` (same arguments)"
        )
    }


@hookspec(warn_on_impl_args=_register_deprecated("alice_register_backbones", "backbone"))
def alice_register_backbones(registrar: BackboneRegistrar, register: Callable) -> None:
    """Register feature extractors.

    :param registrar: call ``registrar.backbone(cls)`` with a subclass of
        :class:`alice.plugin.Backbone` (class attributes ``name``, ``modality``),
        or ``registrar.backbone(name, "package.module:Class")`` to import it on first use.
    :param register: deprecated: the same as ``registrar.backbone``.
    """


@hookspec(warn_on_impl_args=_register_deprecated("alice_register_datasets", "dataset"))
def alice_register_datasets(registrar: DataSetRegistrar, register: Callable) -> None:
    """Register labelled data sets.

    :param registrar: call ``registrar.dataset(cls)`` with a subclass of
        :class:`alice.plugin.DataSet` (class attributes ``name``, ``modality``),
        or ``registrar.dataset(name, "package.module:Class")`` to import it on first use.
    :param register: deprecated: the same as ``registrar.dataset``.
    """


@hookspec(warn_on_impl_args=_register_deprecated("alice_register_label_mappers", "label_mapper"))
def alice_register_label_mappers(registrar: LabelMapperRegistrar, register: Callable) -> None:
    """Register label mappers: a data set's vocabulary -> the reference vocabulary.

    :param registrar: call ``registrar.label_mapper(name, mapper)`` (or
        ``registrar.label_mapper(name, "package.module:function")``, imported on
        first use). ALICE calls ``mapper(source, reference, aliases=aliases)``:
        ``source`` is the data set's vocabulary, ``reference`` the reference
        vocabulary, ``aliases`` the recipe's ``[labels.aliases]`` table (source
        label -> reference label, ``""`` for none). It returns a dict from each
        source label to a reference label or ``None`` (no counterpart). A source
        label left out of the dict (and not aliased) is refused with an error
        naming it. Reference classes no source label maps to are treated as
        unannotated by that data set.
    :param register: deprecated: the same as ``registrar.label_mapper``.
    """


@hookspec(warn_on_impl_args=_register_deprecated("alice_register_interventions", "intervention"))
def alice_register_interventions(registrar: InterventionRegistrar, register: Callable) -> None:
    """Register intervention designs.

    :param registrar: call ``registrar.intervention(cls)`` with a subclass of
        :class:`alice.plugin.Intervention` (class attribute ``name``), or
        ``registrar.intervention(name, "package.module:Class")`` to import it (and torch) on first use.
    :param register: deprecated: the same as ``registrar.intervention``.
    """


@hookspec(warn_on_impl_args=_register_deprecated("alice_register_recipe_dirs", "recipe_folder"))
def alice_register_recipe_dirs(registrar: RecipeFolderRegistrar, register: Callable) -> None:
    """Register folders of recipe TOML files that ``alice reference build NAME`` searches.

    :param registrar: call ``registrar.recipe_folder(path)`` with a folder.
    :param register: deprecated: the same as ``registrar.recipe_folder``.
    """


@hookspec
def alice_register_trackers(registrar: TrackerRegistrar) -> None:
    """Register trackers: places a training run reports its losses and validation figures to as it runs.

    :param registrar: call ``registrar.tracker(cls)`` with a subclass of :class:`alice.plugin.Tracker`
        (class attribute ``name``), or ``registrar.tracker(name, "package.module:Class")`` to import it
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
