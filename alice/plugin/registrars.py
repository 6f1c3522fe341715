"""What a registration hook is handed: one typed registrar per hook, one method per thing registered.

::

    @hookimpl
    def alice_register_backbones(registrar: BackboneRegistrar) -> None:
        registrar.backbone(ScanNet)                                    # the class itself
        registrar.backbone("scan-net", "alice_scanner.nets:ScanNet")   # or by name and place, imported on first use

A class registered by name and place (``"package.module:Class"``) is imported,
and checked, the first time the name is used, so listing plugins imports
nothing heavy. Each method checks the form of what it is given at once; a
malformed registration raises ``TypeError``, and its plugin is left out whole.

Hooks of earlier releases took a ``register`` callable instead; it is still
passed, with an :class:`AliceDeprecationWarning`, to an implementation that
asks for it (one release more), and it takes the same arguments as the
registrar's method.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, overload

if TYPE_CHECKING:
    from alice.core.interventions import Intervention
    from alice.plugin.backbone import Backbone
    from alice.plugin.dataset import DataSet
    from alice.plugin.tracker import Tracker

#: a label mapper: ``mapper(source, reference, aliases=aliases)`` -> source label -> reference label or None
LabelMapper = Callable[..., dict[str, "str | None"]]


class AliceDeprecationWarning(DeprecationWarning):
    """A plugin uses something ALICE will stop supporting in its next release."""


@dataclass
class Registration:
    """One thing a hook registered: ``obj`` itself, or (lazily) the ``place`` it is imported from."""

    name: str
    obj: Any
    place: str | None = None


def check_place(place: Any) -> str:
    """``place`` if it has the form ``"package.module:attribute"``; ``TypeError`` otherwise."""
    if not isinstance(place, str) or place.count(":") != 1 or not all(place.split(":")):
        raise TypeError(f"a lazy registration names its object as 'package.module:attribute', got {place!r}")
    return place


def validate(kind: str, obj: Any) -> str:
    """The registered class's name, or ``TypeError`` saying what is wrong with it."""
    if kind == "intervention":  # a torch module: torch is imported only for a registration of this kind
        from alice.core.interventions import Intervention as base
    else:
        from alice.plugin.backbone import Backbone
        from alice.plugin.dataset import DataSet
        from alice.plugin.tracker import Tracker

        base = {"backbone": Backbone, "dataset": DataSet, "tracker": Tracker}[kind]
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise TypeError(
            f"registered {obj!r} as a {kind}, but it is not a subclass of {base.__module__}.{base.__name__}"
        )
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{kind} class {obj.__name__} has no string attribute 'name'")
    if kind in ("backbone", "dataset") and not isinstance(getattr(obj, "modality", None), str):
        raise TypeError(f"{kind} class {obj.__name__} has no string attribute 'modality'")
    return name


class Registrar:
    """What one registration hook registered, in order; ``method`` names its one public method."""

    kind: ClassVar[str]
    method: ClassVar[str]

    def __init__(self) -> None:
        self.registrations: list[Registration] = []

    @property
    def register(self) -> Callable[..., None]:
        """The ``register`` callable of earlier releases: the registrar's method, which takes the same arguments."""
        return getattr(self, self.method)

    def _add_class(self, cls_or_name: Any, place: Any) -> None:
        if place is None:
            self.registrations.append(Registration(validate(self.kind, cls_or_name), cls_or_name))
        elif not isinstance(cls_or_name, str) or not cls_or_name:
            raise TypeError(f"a lazy {self.kind} is registered by name and 'module:Class', got name {cls_or_name!r}")
        else:
            self.registrations.append(Registration(cls_or_name, None, check_place(place)))


class BackboneRegistrar(Registrar):
    """Handed to ``alice_register_backbones``: register feature extractors."""

    kind, method = "backbone", "backbone"

    @overload
    def backbone(self, cls: type[Backbone], /) -> None: ...
    @overload
    def backbone(self, name: str, place: str, /) -> None: ...
    def backbone(self, cls_or_name: Any, place: str | None = None, /) -> None:
        """A subclass of :class:`alice.plugin.Backbone`, or its name and ``"package.module:Class"``."""
        self._add_class(cls_or_name, place)


class DataSetRegistrar(Registrar):
    """Handed to ``alice_register_datasets``: register labelled data sets."""

    kind, method = "dataset", "dataset"

    @overload
    def dataset(self, cls: type[DataSet], /) -> None: ...
    @overload
    def dataset(self, name: str, place: str, /) -> None: ...
    def dataset(self, cls_or_name: Any, place: str | None = None, /) -> None:
        """A subclass of :class:`alice.plugin.DataSet`, or its name and ``"package.module:Class"``."""
        self._add_class(cls_or_name, place)


class InterventionRegistrar(Registrar):
    """Handed to ``alice_register_interventions``: register intervention designs."""

    kind, method = "intervention", "intervention"

    @overload
    def intervention(self, cls: type[Intervention], /) -> None: ...
    @overload
    def intervention(self, name: str, place: str, /) -> None: ...
    def intervention(self, cls_or_name: Any, place: str | None = None, /) -> None:
        """A subclass of :class:`alice.plugin.Intervention`, or its name and ``"package.module:Class"``
        (which imports torch only when the design is first used)."""
        self._add_class(cls_or_name, place)


class LabelMapperRegistrar(Registrar):
    """Handed to ``alice_register_label_mappers``: register label mappers."""

    kind, method = "label mapper", "label_mapper"

    def label_mapper(self, name: str, mapper: LabelMapper | str, /) -> None:
        """``mapper`` under ``name``: the function, or ``"package.module:function"`` to import on first use."""
        if not isinstance(name, str) or not (callable(mapper) or isinstance(mapper, str)):
            raise TypeError("a label mapper is registered by name and a function or 'module:function'")
        lazy = isinstance(mapper, str)
        self.registrations.append(Registration(name, None if lazy else mapper, check_place(mapper) if lazy else None))


class RecipeFolderRegistrar(Registrar):
    """Handed to ``alice_register_recipe_dirs``: register folders of recipe files."""

    kind, method = "recipe folder", "recipe_folder"

    def recipe_folder(self, path: str | os.PathLike[str], /) -> None:
        """A folder of recipe TOML files that ``alice reference build NAME`` searches."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"a recipe folder is registered as a path, got {path!r}")
        self.registrations.append(Registration(str(path), Path(path)))


class TrackerRegistrar(Registrar):
    """Handed to ``alice_register_trackers``: register trackers, the places a training run reports to."""

    kind, method = "tracker", "tracker"

    @overload
    def tracker(self, cls: type[Tracker], /) -> None: ...
    @overload
    def tracker(self, name: str, place: str, /) -> None: ...
    def tracker(self, cls_or_name: Any, place: str | None = None, /) -> None:
        """A subclass of :class:`alice.plugin.Tracker`, or its name and ``"package.module:Class"`` (which imports
        it, and its library, only when a run logs to it)."""
        self._add_class(cls_or_name, place)
