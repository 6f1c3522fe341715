"""What a reference folder holds, by name: the one place these names are written.

::

    <reference>/
        reference.safetensors    C_ref and M_ref (and M_ref's prompt table)
        reference.json           manifest: vocabulary, latent size, design, training, metrics, sha256
        adapters/<name>/
            adapter.safetensors  E_m, D_m, feature mean and std
            adapter.json         backbone, data set, label mapping, thresholds, reference sha256
            README.md            model card (documentation, not hashed)
        README.md                model card, rewritten by ``alice eval``
        eval.json                written by ``alice eval``
        indexes/                 search indexes (``alice index build``), derived
        report/                  ``alice report``'s page, derived

Derived folders are checked against the reference but are not part of it:
``alice reference export`` leaves them out.
"""

from __future__ import annotations

FORMAT_VERSION = 1
REFERENCE_WEIGHTS, REFERENCE_MANIFEST = "reference.safetensors", "reference.json"
ADAPTER_WEIGHTS, ADAPTER_MANIFEST = "adapter.safetensors", "adapter.json"
ADAPTERS_FOLDER = "adapters"
CARD = "README.md"
EVAL_FILE = "eval.json"
#: files a reference folder may hold besides the ones its manifests name
KNOWN_EXTRA = (EVAL_FILE, CARD)
INDEX_FOLDER, REPORT_FOLDER = "indexes", "report"
DERIVED_FOLDERS = (INDEX_FOLDER, REPORT_FOLDER)
