"""Reference spaces and adapters on disk: layout, typed manifests, loading, verification, sharing, model cards.

Importing this package (or its torch-free modules: layout, manifests, describe) does not import
torch; ``Adapter``, ``AdapterWeights`` and ``ReferenceSpace`` load :mod:`alice.artifacts.store` on first use.
"""

from typing import Any

from alice.artifacts.layout import (  # noqa: F401
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
)
from alice.artifacts.manifests import AdapterManifest, ReferenceManifest  # noqa: F401

_STORE_NAMES = ("Adapter", "AdapterWeights", "ReferenceSpace")


def __getattr__(name: str) -> Any:
    if name in _STORE_NAMES:
        from alice.artifacts import store

        return getattr(store, name)
    raise AttributeError(f"module 'alice.artifacts' has no attribute {name!r}")
