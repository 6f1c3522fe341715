"""Everything a plugin author imports, from one module.

::

    from alice.plugin import hookimpl, Backbone, BackboneRegistrar, DataSet, Split, AliceError

The rest of ALICE may change between versions; these names do not. Importing
this module is cheap (no torch, no numpy): ``Intervention`` and
``InterventionBatch``, which are torch modules, load on first use.

- :data:`hookimpl` marks a hook implementation (hooks: :mod:`alice.plugin.hookspecs`);
- :class:`BackboneRegistrar`, :class:`DataSetRegistrar`, :class:`LabelMapperRegistrar`,
  :class:`InterventionRegistrar`, :class:`RecipeFolderRegistrar`, :class:`TrackerRegistrar` are what the
  registration hooks are handed, one method per thing registered (``registrar.backbone(...)``);
  :class:`AliceDeprecationWarning` is what a plugin still taking the old ``register`` callable is warned with;
- :class:`Backbone`, :class:`DataSet`, :class:`Split`, :class:`Intervention`, :class:`Tracker` are what
  the hooks register (a tracker is told of a training :class:`Run`); ``SPLITS`` and ``PAIRED`` name the
  splits; :class:`Found` is what a
  data set makes of a file or folder (``alice recipe init``);
- :func:`label_key` is how labels are compared (case and surrounding spaces ignored);
- :class:`AliceError` is the error to raise for a user's mistake (one line, no traceback);
- :func:`parse_json` reads JSON a user or someone else wrote (a labels file's line, an annotation
  file), bounded in nesting, with one line for anything that is not JSON;
- :class:`InputLimits` caps the images and sounds a reader decodes (check the header first), and
  :class:`TooLarge` is the error for a file over them;
- :func:`warn` and :func:`info` print a warning (a skipped file, say) or a status line the way the CLI does;
- :func:`register_plugin` / :func:`unregister_plugin` register a plugin object in a
  test or a notebook, :func:`get_registry` shows what is registered (each class behind
  the guard of :mod:`alice.plugin.guard`: a subclass whose failures name the plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alice.console import info, warn
from alice.errors import AliceError
from alice.plugin.backbone import Backbone, Preview
from alice.plugin.dataset import PAIRED, SPLITS, DataSet, Found, Split, label_key
from alice.plugin.hookspecs import hookimpl
from alice.plugin.limits import InputLimits, TooLarge
from alice.plugin.manager import get_registry, register_plugin, unregister_plugin
from alice.plugin.registrars import (
    AliceDeprecationWarning,
    BackboneRegistrar,
    DataSetRegistrar,
    InterventionRegistrar,
    LabelMapperRegistrar,
    RecipeFolderRegistrar,
    TrackerRegistrar,
)
from alice.plugin.tracker import Run, Tracker
from alice.reading import parse_json

if TYPE_CHECKING:
    from alice.core.interventions import Intervention, InterventionBatch

__all__ = [
    "PAIRED",
    "SPLITS",
    "AliceDeprecationWarning",
    "AliceError",
    "Backbone",
    "BackboneRegistrar",
    "DataSet",
    "DataSetRegistrar",
    "Found",
    "InputLimits",
    "Intervention",
    "InterventionBatch",
    "InterventionRegistrar",
    "LabelMapperRegistrar",
    "Preview",
    "RecipeFolderRegistrar",
    "Run",
    "Split",
    "TooLarge",
    "Tracker",
    "TrackerRegistrar",
    "get_registry",
    "hookimpl",
    "info",
    "label_key",
    "parse_json",
    "register_plugin",
    "unregister_plugin",
    "warn",
]

_TORCH_NAMES = ("Intervention", "InterventionBatch")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from alice.core import interventions

        return getattr(interventions, name)
    raise AttributeError(f"module 'alice.plugin' has no attribute {name!r}")
