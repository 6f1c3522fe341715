"""The one boundary between the core and plugin code: a failure there names the plugin and the call.

The registry never hands the core a plugin's class as it was registered: it hands
out a *guarded* subclass (:func:`guard_class`) whose members of the plugin
interface (``INTERFACE``: ``extract``, ``split``, ``vocabulary``, ``forward``, ...)
run the plugin's own code inside one ``try``. A label mapper and a CLI command are
wrapped the same way (:func:`guard_call`). An ordinary exception raised there
becomes one :class:`PluginError` line,
``plugin 'scanner' failed in backbone 'scan-net'.extract: ValueError: ...``,
with the plugin's exception chained behind it (``alice --debug`` prints the
traceback). An :class:`~alice.errors.AliceError` a plugin raises (a user's
mistake, said in its own words), Ctrl-C and other ``BaseException`` pass
through unchanged.

A constructor is the one place where ``ValueError`` and ``TypeError`` are not
bugs: they refuse the recipe's options (``data set 'digits-shadow': option noise
must be between 0 and 1, got 7``; an option the class does not take is an
``unknown option``).
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

from alice.errors import AliceError

#: the members of each registered kind that the core calls (methods, properties, class methods)
INTERFACE: dict[str, tuple[str, ...]] = {
    "backbone": (
        "__init__",
        "feature_dim",
        "reads",
        "bind",
        "identity",
        "extract",
        "preview",
        "file_suffixes",
        "reads_text",
        "candidates",
        "read_file",
    ),
    "dataset": ("__init__", "vocabulary", "identity", "split", "inspect"),
    "intervention": ("__init__", "setting_names", "settings", "set_prompt_embeddings", "forward"),
    "tracker": ("__init__", "start", "log", "end"),
}

#: how each kind is named to a user
LABELS = {
    "backbone": "backbone",
    "dataset": "data set",
    "intervention": "intervention design",
    "label mapper": "label mapper",
    "command": "command",
    "tracker": "tracker",
}


class PluginError(AliceError):
    """Plugin code raised an ordinary exception: one line naming the plugin and what it was doing."""

    exit_code = 1  # a fault in the plugin, not in the user's input

    def __init__(self, plugin: str, where: str, exc: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in {where}: {describe(exc)}")
        self.plugin, self.where = plugin, where


def describe(exc: BaseException) -> str:
    """``TypeName: first line of the message``: how a plugin's failure is shown."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def guard_call(function: Callable, plugin: str, where: str) -> Callable:
    """``function`` with any ordinary exception it raises turned into a :class:`PluginError`."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except AliceError:
            raise
        except Exception as exc:
            raise PluginError(plugin, where, exc) from exc

    return guarded


def _constructor(function: Callable, plugin: str, kind: str, name: str) -> Callable:
    """``__init__``: ValueError and TypeError refuse the recipe's options; anything else is the plugin's failure."""
    label = f"{LABELS[kind]} {name!r}"

    @functools.wraps(function)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            function(self, *args, **kwargs)
        except AliceError:
            raise
        except TypeError as exc:  # an option the class does not take, or one of the wrong type
            text = str(exc)
            if "unexpected keyword argument" in text:
                text = "unknown option " + text.split("unexpected keyword argument", 1)[1].strip()
            raise AliceError(f"{label}: {text}") from exc
        except ValueError as exc:
            raise AliceError(f"{label}: {exc}") from exc
        except Exception as exc:
            raise PluginError(plugin, f"{label}.__init__", exc) from exc

    return __init__


def _forward(function: Callable, plugin: str, where: str) -> Callable:
    """A torch module's ``forward``: guarded when run eagerly; traced as it is under ``torch.compile``."""
    from torch.compiler import is_compiling

    guarded = guard_call(function, plugin, where)

    @functools.wraps(function)
    def forward(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs) if is_compiling() else guarded(*args, **kwargs)

    return forward


def guard_class(kind: str, name: str, plugin: str, cls: type) -> type:
    """A subclass of the registered ``cls`` whose interface members name ``plugin`` when they fail.

    Same name, module and docstring as ``cls``; ``issubclass(guarded, cls)`` holds, and instances
    are instances of ``cls``.
    """
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__alice_registered__": cls,
    }
    for member in INTERFACE[kind]:
        try:
            value = inspect.getattr_static(cls, member)
        except AttributeError:
            continue
        where = f"{LABELS[kind]} {name!r}.{member}"
        if member == "__init__" and inspect.isfunction(value):
            namespace[member] = _constructor(value, plugin, kind, name)
        elif member == "forward" and inspect.isfunction(value):
            namespace[member] = _forward(value, plugin, where)
        elif inspect.isfunction(value):
            namespace[member] = guard_call(value, plugin, where)
        elif isinstance(value, property) and value.fget is not None:
            namespace[member] = property(guard_call(value.fget, plugin, where), value.fset, value.fdel, value.__doc__)
        elif isinstance(value, classmethod):
            namespace[member] = classmethod(guard_call(value.__func__, plugin, where))
        elif isinstance(value, staticmethod):
            namespace[member] = staticmethod(guard_call(value.__func__, plugin, where))
        # a plain class attribute (file_suffixes = (".png",)) runs no code: left as it is
    return types.new_class(cls.__name__, (cls,), exec_body=lambda ns: ns.update(namespace))


def registered_class(cls: type) -> type:
    """The class a plugin registered, behind its guarded subclass (``cls`` itself if it is not one)."""
    return cls.__dict__.get("__alice_registered__", cls)
