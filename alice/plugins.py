"""Finding, loading and isolating plugins.

Every modality, data set, backbone and intervention design reaches ALICE the
same way: a module with ``alice_*`` hook implementations (see
:mod:`alice.hookspecs`). The core's own registrations are listed in
``DEFAULT_PLUGINS``; the built-in image, text and digits plugins and any
third-party plugin are found through the entry-point group ``alice``.

A plugin that fails to import, or whose hook raises, or that registers
something malformed, is recorded as a problem and skipped: the CLI keeps
working and ``alice plugins list`` says what went wrong.

``ALICE_PLUGINS=a,b`` loads only the named entry-point plugins (empty: none).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

import pluggy

from alice import hookspecs
from alice.errors import AliceError

ENTRY_POINT_GROUP = "alice"
DEFAULT_PLUGINS = ("alice.builtin",)

# hook name -> what it registers (the kind shown to users)
REGISTRATION_HOOKS = {
    "alice_register_backbones": "backbone",
    "alice_register_datasets": "dataset",
    "alice_register_label_mappers": "label mapper",
    "alice_register_interventions": "intervention",
    "alice_register_recipe_dirs": "recipe folder",
}


@dataclass
class PluginInfo:
    name: str
    source: str  # "core" or "entry point <dist>==<version>"
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Registered:
    obj: Any
    plugin: str


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Registered]] = {kind: {} for kind in REGISTRATION_HOOKS.values()}
        self.conflicts: dict[tuple[str, str], list[str]] = {}
        self.plugins: dict[str, PluginInfo] = {}

    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def get(self, kind: str, name: str) -> Any:
        if (kind, name) in self.conflicts:
            who = " and ".join(repr(p) for p in self.conflicts[(kind, name)])
            raise AliceError(f"{kind} {name!r} is registered by both plugins {who}; uninstall or block one (ALICE_PLUGINS)")
        if name not in self.items[kind]:
            known = ", ".join(self.names(kind)) or "none"
            hint = ""
            failed = [p.name for p in self.plugins.values() if p.error]
            if failed:
                hint = f"; plugin(s) {', '.join(failed)} failed to load, see `alice plugins list`"
            raise AliceError(f"unknown {kind} {name!r} (known: {known}){hint}")
        return self.items[kind][name].obj

    def provider(self, kind: str, name: str) -> str:
        return self.items[kind][name].plugin

    # kind-specific lookups, for readability at the call sites
    def backbone(self, name: str):
        return self.get("backbone", name)

    def dataset(self, name: str):
        return self.get("dataset", name)

    def label_mapper(self, name: str) -> Callable:
        return self.get("label mapper", name)

    def intervention(self, name: str):
        return self.get("intervention", name)

    def recipe_dirs(self) -> list[Path]:
        return [r.obj for r in self.items["recipe folder"].values()]

    @property
    def problems(self) -> list[str]:
        out = [f"plugin {p.name!r}: {p.error}" for p in self.plugins.values() if p.error]
        for (kind, name), who in self.conflicts.items():
            out.append(f"{kind} {name!r} is registered by both plugins {' and '.join(map(repr, who))}")
        return out


_manager: pluggy.PluginManager | None = None
_registry: Registry | None = None
_infos: dict[str, PluginInfo] = {}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first use."""
    global _manager
    if _manager is not None:
        return _manager
    pm = pluggy.PluginManager("alice")
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        _infos[module_name] = PluginInfo(module_name, "core")
    allow = os.environ.get("ALICE_PLUGINS")
    allowed = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = f"{ep.dist.name}=={ep.dist.version}" if ep.dist else "unknown distribution"
        info = _infos[ep.name] = PluginInfo(ep.name, f"entry point ({dist})")
        if pm.has_plugin(ep.name):
            info.error = f"a second plugin named {ep.name!r} ({ep.value}) was skipped"
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not break the CLI
            info.error = f"failed to import {ep.value}: {_describe(exc)}"
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = getattr(exc, "plugin_name", None) or "unknown"
        _infos.setdefault(name, PluginInfo(name, "entry point")).error = f"unknown hook: {_describe(exc)}"
    _manager = pm
    return pm


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object by hand (tests, notebooks); refreshes the registry."""
    global _registry
    plugin_manager().register(plugin, name=name)
    _infos[name] = PluginInfo(name, "registered at run time")
    _registry = None


def unregister_plugin(name: str) -> None:
    global _registry
    pm = plugin_manager()
    if pm.has_plugin(name):
        pm.unregister(name=name)
    _infos.pop(name, None)
    _registry = None


def _validate(kind: str, obj: Any) -> str:
    """Return the registered object's name, or raise TypeError saying what is wrong."""
    if kind == "recipe folder":
        return str(obj)
    from alice.backbones import Backbone
    from alice.datasets import DataSet
    from alice.interventions import Intervention

    base = {"backbone": Backbone, "dataset": DataSet, "intervention": Intervention}.get(kind)
    if base is not None:
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise TypeError(f"registered {obj!r} as a {kind}, but it is not a subclass of {base.__module__}.{base.__name__}")
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{kind} class {obj.__name__} has no string attribute 'name'")
        if kind in ("backbone", "dataset") and not isinstance(getattr(obj, "modality", None), str):
            raise TypeError(f"{kind} class {obj.__name__} has no string attribute 'modality'")
        return name
    raise AssertionError(kind)


def get_registry() -> Registry:
    """Call every registration hook once, plugin by plugin, isolating failures."""
    global _registry
    if _registry is not None:
        return _registry
    pm = plugin_manager()
    reg = Registry()
    reg.plugins = {name: PluginInfo(i.name, i.source, i.error) for name, i in _infos.items()}
    for hook_name, kind in REGISTRATION_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            info = reg.plugins.setdefault(plugin, PluginInfo(plugin, "unknown"))
            if info.error:
                continue
            added: list[tuple[str, Any]] = []

            def register(obj: Any, mapper: Callable | None = None, _kind: str = kind, _added=added) -> None:
                if _kind == "label mapper":
                    if not isinstance(obj, str) or not callable(mapper):
                        raise TypeError("label mappers are registered as register(name, callable)")
                    _added.append((obj, mapper))
                else:
                    _added.append((_validate(_kind, obj), obj))

            try:
                impl.function(register=register)
            except Exception as exc:
                info.error = f"{hook_name} failed: {_describe(exc)}"
                continue
            for name, obj in added:
                if name in reg.items[kind] and kind != "recipe folder":
                    first = reg.items[kind][name].plugin
                    reg.conflicts.setdefault((kind, name), [first]).append(plugin)
                    continue
                reg.items[kind][name] = Registered(Path(obj) if kind == "recipe folder" else obj, plugin)
                info.provides.setdefault(kind, []).append(name)
    # a plugin whose later hook failed provides nothing: drop its earlier registrations
    for kind, items in reg.items.items():
        for name in [n for n, r in items.items() if reg.plugins[r.plugin].error]:
            del items[name]
    _registry = reg
    return reg


def register_commands(cli: Any) -> list[str]:
    """Let plugins add CLI commands; returns problems (one line each)."""
    pm = plugin_manager()
    problems = []
    for impl in pm.hook.alice_register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:
            problems.append(f"plugin {impl.plugin_name!r}: alice_register_commands failed: {_describe(exc)}")
    return problems
