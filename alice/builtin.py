"""The core's own plugin: intervention designs, the by-name label mapper, the recipe registry.

Registered through the same hooks as every other plugin (``DEFAULT_PLUGINS``).
Imports happen inside the hooks so that loading plugins never imports torch.
"""

from __future__ import annotations

from alice.hookspecs import hookimpl


@hookimpl
def alice_register_interventions(register):
    from alice.interventions import BUILTIN_INTERVENTIONS

    for design in BUILTIN_INTERVENTIONS:
        register(design)


@hookimpl
def alice_register_label_mappers(register):
    from alice.labels import map_by_name

    register("by-name", map_by_name)


@hookimpl
def alice_register_recipe_dirs(register):
    import alice_registry

    register(alice_registry.folder())
