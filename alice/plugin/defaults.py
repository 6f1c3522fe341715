"""The core's own plugin: the paper's intervention designs, the by-name label mapper, the built-in recipes,
the TensorBoard tracker.

Registered through the same hooks as every other plugin (``DEFAULT_PLUGINS``
in :mod:`alice.plugin.manager`). Heavy imports happen inside the hooks, so
loading plugins never imports torch.
"""

from __future__ import annotations

from alice.errors import AliceError
from alice.plugin.dataset import label_key
from alice.plugin.hookspecs import hookimpl
from alice.plugin.registrars import (
    InterventionRegistrar,
    LabelMapperRegistrar,
    RecipeFolderRegistrar,
    TrackerRegistrar,
)


@hookimpl
def alice_register_interventions(registrar: InterventionRegistrar) -> None:
    # lazily: the designs are torch modules, imported when a reference space is built or loaded
    for name, cls in (
        ("global", "GlobalIntervention"),
        ("affine", "AffineIntervention"),
        ("nonlinear", "NonLinearIntervention"),
    ):
        registrar.intervention(name, f"alice.core.interventions:{cls}")


def map_by_name(
    source: list[str], reference: list[str], aliases: dict[str, str] | None = None
) -> dict[str, str | None]:
    """Map labels with the same name (:func:`label_key`: case and surrounding spaces ignored).

    ``aliases`` (from the recipe's ``[labels.aliases]`` table) maps a source
    label to a reference label explicitly, or to ``""`` for "no counterpart".
    A label that matches nothing and has no alias is left out of the result,
    which ALICE refuses, naming it.
    """
    by_key = {label_key(r): r for r in reference}
    aliases = aliases or {}
    out: dict[str, str | None] = {}
    for label in source:
        if label in aliases:
            target = aliases[label] or None
            if target is not None and label_key(target) not in by_key:
                raise AliceError(f"label alias {label!r} -> {target!r}: {target!r} is not in the reference vocabulary")
            out[label] = None if target is None else by_key[label_key(target)]
        elif label_key(label) in by_key:
            out[label] = by_key[label_key(label)]
    return out


@hookimpl
def alice_register_label_mappers(registrar: LabelMapperRegistrar) -> None:
    registrar.label_mapper("by-name", map_by_name)


@hookimpl
def alice_register_recipe_dirs(registrar: RecipeFolderRegistrar) -> None:
    import alice_registry

    registrar.recipe_folder(alice_registry.folder())


@hookimpl
def alice_register_trackers(registrar: TrackerRegistrar) -> None:
    # lazily: the tensorboard package is imported only by a run that logs to it
    registrar.tracker("tensorboard", "alice.plugin.tensorboard:TensorBoardTracker")
