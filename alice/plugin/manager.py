"""Finding, loading and isolating plugins.

Every modality, data set, backbone and intervention design reaches ALICE the
same way: a module with ``alice_*`` hook implementations (see
:mod:`alice.plugin.hookspecs`). The core's own registrations are listed in
``DEFAULT_PLUGINS``; the built-in plugins and any third-party plugin are found
through the entry-point group ``alice``.

A plugin is one unit: if it fails to import, implements a hook that does not
exist (a misspelt name), raises in any of its hooks (its command hook
included), or registers something malformed, it is left out whole, nothing it
registered is kept, and ``alice plugins list`` and every "unknown ..." error
name it. The rest of the CLI keeps working.

What the registry hands out is guarded (:mod:`alice.plugin.guard`): a plugin's
code that raises while the core runs it is one line naming the plugin, the
thing it registered and the call.

A class may be registered *lazily*, by name and place: ``registrar.backbone("pixels",
"alice_plugins.image.backbones:PixelBackbone")``. Its module is imported, and
the class checked, the first time that name is used (``Registry.get``), so
describing what is installed (``alice plugins list``) imports no backbone and
no torch. A lazy registration that cannot be resolved is an error naming the
plugin, the name and the cause when it is used; ``alice plugins list --check``
resolves every one.

``ALICE_PLUGINS=a,b`` loads only the named entry-point plugins (empty: none).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from alice.errors import AliceError
from alice.plugin import hookspecs
from alice.plugin.guard import LABELS, describe, guard_call, guard_class
from alice.plugin.registrars import (
    BackboneRegistrar,
    DataSetRegistrar,
    InterventionRegistrar,
    LabelMapperRegistrar,
    RecipeFolderRegistrar,
    Registrar,
    TrackerRegistrar,
    validate,
)

PROJECT = "alice"
ENTRY_POINT_GROUP = "alice"
DEFAULT_PLUGINS = ("alice.plugin.defaults",)

# hook name -> the registrar it is handed (its ``kind`` is what it registers, as shown to users)
REGISTRARS: dict[str, type[Registrar]] = {
    "alice_register_backbones": BackboneRegistrar,
    "alice_register_datasets": DataSetRegistrar,
    "alice_register_label_mappers": LabelMapperRegistrar,
    "alice_register_interventions": InterventionRegistrar,
    "alice_register_recipe_dirs": RecipeFolderRegistrar,
    "alice_register_trackers": TrackerRegistrar,
}
REGISTRATION_HOOKS = {hook: registrar.kind for hook, registrar in REGISTRARS.items()}
#: what a plugin's command hook adds (``register_commands``), listed with the rest
COMMAND = "command"


@dataclass
class PluginInfo:
    name: str
    source: str  # "core", "entry point (<dist>==<version>)" or "registered at run time"
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)
    distribution: str = ""  # "<dist>==<version>" of an entry-point plugin

    @property
    def origin(self) -> str:
        """How a manifest records this plugin: ``scanner (alice-scanner==0.1.0)``, or its name alone."""
        return f"{self.name} ({self.distribution})" if self.distribution else self.name


@dataclass
class Registered:
    obj: Any  # None until a lazy registration is resolved
    plugin: str
    target: str | None = None  # "module:attribute" of a lazy registration (its place)
    guarded: Any = None  # what the core is handed: obj behind the guard (alice.plugin.guard)


def load_target(target: str) -> Any:
    """The object a ``"package.module:attribute"`` string names (the module imported now)."""
    module, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, plugins: dict[str, PluginInfo]) -> None:
        self.items: dict[str, dict[str, Registered]] = {kind: {} for kind in (*REGISTRATION_HOOKS.values(), COMMAND)}
        self.conflicts: dict[tuple[str, str], list[str]] = {}
        self.unresolved: dict[tuple[str, str], str] = {}  # lazy registrations that failed to resolve: why
        self.plugins = plugins

    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def failed(self) -> list[str]:
        return [p.name for p in self.plugins.values() if p.error]

    def get(self, kind: str, name: str, origin: str = "") -> Any:
        """The registered ``kind`` called ``name``, guarded: a failure in its code names its plugin.

        ``origin`` is where a manifest or a recipe says it comes from (``scanner
        (alice-scanner==0.1.0)``); an unknown name then says whether that plugin is missing or failed.
        """
        if (kind, name) in self.conflicts:
            who = " and ".join(repr(p) for p in self.conflicts[(kind, name)])
            raise AliceError(
                f"{kind} {name!r} is registered by both plugins {who}; uninstall or block one (ALICE_PLUGINS)"
            )
        if name not in self.items[kind]:
            known = ", ".join(self.names(kind)) or "none"
            raise AliceError(f"unknown {LABELS.get(kind, kind)} {name!r} (known: {known}){self.missing_hint(origin)}")
        entry = self.items[kind][name]
        if entry.target is not None and entry.obj is None:
            entry.obj = self._resolve(kind, name, entry)
        if entry.guarded is None:
            entry.guarded = self._guarded(kind, name, entry)
        return entry.guarded

    @staticmethod
    def _guarded(kind: str, name: str, entry: Registered) -> Any:
        if kind == "label mapper":
            return guard_call(entry.obj, entry.plugin, f"{LABELS[kind]} {name!r}")
        if kind in ("recipe folder", COMMAND):  # a folder is data; a command is guarded where it is added
            return entry.obj
        return guard_class(kind, name, entry.plugin, entry.obj)

    def missing_hint(self, origin: str = "") -> str:
        """Why a name may be unknown: the plugin ``origin`` names is not installed or failed, or some plugin failed."""
        plugin = origin.split(" (", 1)[0]
        if plugin:
            info = self.plugins.get(plugin)
            if info is None:
                return f"; it comes from plugin {origin}, which is not installed: install it"
            if info.error:
                return f"; it comes from plugin {origin}, which failed to load: {info.error}"
        failed = self.failed()
        return f"; plugin(s) {', '.join(failed)} failed to load, see `alice plugins list`" if failed else ""

    def _resolve(self, kind: str, name: str, entry: Registered) -> Any:
        """Import a lazily registered object and check it as an eager registration is checked."""
        if (kind, name) not in self.unresolved:
            try:
                obj = load_target(str(entry.target))
                if kind == "label mapper":
                    if not callable(obj):
                        raise TypeError(f"{obj!r} is not callable")
                elif (found := validate(kind, obj)) != name:
                    raise TypeError(f"{entry.target} is named {found!r}")
                return obj
            except Exception as exc:  # a broken plugin must not break the CLI: one line naming it
                self.unresolved[(kind, name)] = (
                    f"{kind} {name!r} of plugin {entry.plugin!r} cannot be loaded from {entry.target}: {describe(exc)}"
                )
        raise AliceError(self.unresolved[(kind, name)])

    def resolve_all(self) -> list[str]:
        """Import every lazy registration now; the problems found (one line each)."""
        for kind, entries in self.items.items():
            for name in list(entries):
                try:
                    self.get(kind, name)
                except AliceError:
                    pass
        return [self.unresolved[key] for key in sorted(self.unresolved)]

    def provider(self, kind: str, name: str) -> str:
        return self.items[kind][name].plugin

    def origin(self, kind: str, name: str) -> str:
        """Where ``name`` comes from, as a manifest records it: ``scanner (alice-scanner==0.1.0)``."""
        return self.plugins[self.provider(kind, name)].origin

    # kind-specific lookups, for readability at the call sites
    def backbone(self, name: str, origin: str = ""):
        return self.get("backbone", name, origin)

    def dataset(self, name: str, origin: str = ""):
        return self.get("dataset", name, origin)

    def label_mapper(self, name: str, origin: str = "") -> Callable:
        return self.get("label mapper", name, origin)

    def intervention(self, name: str, origin: str = ""):
        return self.get("intervention", name, origin)

    def tracker(self, name: str):
        return self.get("tracker", name)

    def recipe_dirs(self) -> list[Path]:
        return [r.obj for r in self.items["recipe folder"].values()]

    def recipe_origin(self, path: str | Path) -> str:
        """The plugin whose recipe folder holds the recipe file ``path`` ("" for a folder of ALICE_RECIPE_PATH)."""
        folder = Path(path).parent
        return next(
            (self.origin("recipe folder", n) for n, r in self.items["recipe folder"].items() if r.obj == folder), ""
        )

    @property
    def problems(self) -> list[str]:
        out = [f"plugin {p.name!r}: {p.error}" for p in self.plugins.values() if p.error]
        for (kind, name), who in self.conflicts.items():
            out.append(f"{kind} {name!r} is registered by both plugins {' and '.join(map(repr, who))}")
        return out + [self.unresolved[key] for key in sorted(self.unresolved)]


_manager: pluggy.PluginManager | None = None
_registry: Registry | None = None
_infos: dict[str, PluginInfo] = {}
_commands: dict[str, list[str]] = {}  # plugin -> the commands its hook added to the CLI


def _add(pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    """Register one plugin; if it implements a hook the spec does not have, take it out again and say so."""
    _infos[info.name] = info
    pm.register(plugin, name=info.name)
    unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or [] if c.spec is None)
    if unknown:
        pm.unregister(name=info.name)
        known = ", ".join(sorted(h for h in dir(hookspecs) if h.startswith("alice_")))
        info.error = f"implements unknown hook(s) {', '.join(unknown)} (known: {known})"


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first use."""
    global _manager
    if _manager is not None:
        return _manager
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        _add(pm, importlib.import_module(module_name), PluginInfo(module_name, "core"))
    allow = os.environ.get("ALICE_PLUGINS")
    allowed = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = f"{ep.dist.name}=={ep.dist.version}" if ep.dist else ""
        info = PluginInfo(ep.name, f"entry point ({dist or 'unknown distribution'})", distribution=dist)
        if pm.has_plugin(ep.name) or ep.name in _infos:
            _infos.setdefault(
                f"{ep.name} ({ep.value})", info
            ).error = f"a second plugin named {ep.name!r} ({ep.value}) was skipped"
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not break the CLI
            info.error = f"failed to import {ep.value}: {describe(exc)}"
            _infos[ep.name] = info
            continue
        _add(pm, module, info)
    _manager = pm
    return pm


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object by hand (tests, notebooks); refreshes the registry.

    A plugin that implements an unknown hook is left out and reported, as at start-up.
    """
    global _registry
    _add(plugin_manager(), plugin, PluginInfo(name, "registered at run time"))
    _registry = None


def unregister_plugin(name: str) -> None:
    global _registry
    pm = plugin_manager()
    if pm.has_plugin(name):
        pm.unregister(name=name)
    _infos.pop(name, None)
    _commands.pop(name, None)
    _registry = None


def _registrations(hook_name: str, impl: pluggy.HookImpl) -> list[tuple[str, Registered]]:
    """Call one hook implementation; what it registered, each checked for its form (raises on anything malformed).

    It is handed its registrar, and ``register`` (deprecated) if it names it; a lazy registration
    (name and ``"module:attribute"``) is checked for its form only, the object itself when it is first used.
    """
    registrar = REGISTRARS[hook_name]()
    offered = {"registrar": registrar, "register": registrar.register}
    impl.function(**{name: offered[name] for name in (*impl.argnames, *impl.kwargnames) if name in offered})
    return [(r.name, Registered(r.obj, "", r.place)) for r in registrar.registrations]


def get_registry() -> Registry:
    """Call every registration hook once, plugin by plugin; a plugin that fails anywhere contributes nothing."""
    global _registry
    if _registry is not None:
        return _registry
    pm = plugin_manager()
    infos = {name: PluginInfo(i.name, i.source, i.error, distribution=i.distribution) for name, i in _infos.items()}
    pending: dict[str, list[tuple[str, str, Registered]]] = {}  # plugin -> (kind, name, registration)
    for hook_name, kind in REGISTRATION_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = infos.setdefault(impl.plugin_name, PluginInfo(impl.plugin_name, "unknown"))
            if info.error:
                continue
            try:
                pending.setdefault(info.name, []).extend(
                    (kind, n, entry) for n, entry in _registrations(hook_name, impl)
                )
            except Exception as exc:
                info.error = f"{hook_name} failed: {describe(exc)}"
    for plugin, names in _commands.items():  # what each plugin's command hook added (when the CLI ran it)
        if plugin in infos and not infos[plugin].error:
            pending.setdefault(plugin, []).extend((COMMAND, n, Registered(None, "")) for n in names)
    reg = Registry(infos)
    for plugin, items in pending.items():
        if infos[plugin].error:
            continue  # a later hook of this plugin failed: it provides nothing
        for kind, name, entry in items:
            if name in reg.items[kind] and kind != "recipe folder":
                reg.conflicts.setdefault((kind, name), [reg.items[kind][name].plugin]).append(plugin)
                continue
            entry.plugin = plugin
            reg.items[kind][name] = entry
            infos[plugin].provides.setdefault(kind, []).append(name)
    _registry = reg
    return reg


def register_commands(cli: Any) -> None:
    """Let plugins add CLI commands to ``cli``, each through an application of its own.

    A plugin's hook adds its commands to a fresh ``typer.Typer``; they reach ``cli`` only when the
    hook returns and takes no name that is already a command. A hook that raises, or takes a name
    already taken, leaves its plugin out whole (``alice plugins list`` shows it failed, and nothing
    it registers elsewhere is kept). Every command callback a plugin adds is guarded.
    """
    import typer
    from typer.main import get_command_name, get_group

    global _registry
    # the core's commands, named as typer names them (building the whole command tree would cost 30 ms)
    taken = {c.name or get_command_name(c.callback.__name__) for c in cli.registered_commands if c.callback}
    taken |= {g.name for g in cli.registered_groups if isinstance(g.name, str)}
    for impl in plugin_manager().hook.alice_register_commands.get_hookimpls():
        info = _infos.get(impl.plugin_name)
        if info is None or info.error:
            continue
        own = typer.Typer()
        try:
            impl.function(cli=own)
            names = list(get_group(own).commands)
        except Exception as exc:
            info.error = f"alice_register_commands failed: {describe(exc)}"
            _registry = None
            continue
        clash = sorted(taken.intersection(names))
        if clash:
            info.error = f"alice_register_commands adds command(s) {', '.join(clash)}, which already exist"
            _registry = None
            continue
        _guard_commands(own, info.name, "")
        cli.registered_commands.extend(own.registered_commands)
        cli.registered_groups.extend(own.registered_groups)
        taken.update(names)
        _commands[info.name] = names
        _registry = None


def _guard_commands(group: Any, plugin: str, prefix: str) -> None:
    """Every callback of a plugin's typer application (and of its sub-applications) behind the guard."""
    from typer.main import get_command_name

    for command in group.registered_commands:
        if command.callback is not None:
            name = f"{prefix}{command.name or get_command_name(command.callback.__name__)}"
            command.callback = guard_call(command.callback, plugin, f"{LABELS['command']} {name!r}")
    for sub in group.registered_groups:
        if sub.typer_instance is None:
            continue
        name = sub.name if isinstance(sub.name, str) else sub.typer_instance.info.name
        where = f"{prefix}{name} " if isinstance(name, str) else prefix
        info = sub.typer_instance.registered_callback
        if info is not None and info.callback is not None:
            info.callback = guard_call(info.callback, plugin, f"{LABELS['command']} {where.strip()!r}")
        _guard_commands(sub.typer_instance, plugin, where)
