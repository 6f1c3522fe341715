"""Reference spaces and adapters on disk: layout, typed manifests, writing, loading, verification, sharing, cards."""

from alice.artifacts.layout import (  # noqa: F401
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
)
from alice.artifacts.manifests import AdapterManifest, ReferenceManifest  # noqa: F401
from alice.artifacts.store import Adapter, AdapterWeights, ReferenceSpace  # noqa: F401
