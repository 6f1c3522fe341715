"""Cross-modal and counterfactual search over index files (exact top-k; see :mod:`alice.artifacts.indexes`)."""

from alice.artifacts.indexes import Index, default_index_path, write_index  # noqa: F401
from alice.core.similarity import top_k  # noqa: F401
from alice.search.index import build_index  # noqa: F401
