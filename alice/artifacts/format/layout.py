"""What a reference folder holds, by name: the one place these names are written.

::

    <reference>/
        reference.safetensors    C_ref and M_ref (and M_ref's prompt table)
        reference.json           manifest: vocabulary, latent size, design, training, metrics, sha256
        space.json               every file's path, size and sha256; the space's digest (a Merkle root)
        adapters/<name>/
            adapter.safetensors  E_m, D_m, feature mean and std
            adapter.json         backbone, data set, label mapping, thresholds, reference digest
            history.jsonl        the training curves of the jobs that trained it (alice.artifacts.format.history)
            history.png          a small picture of them, shown by the model card (documentation)
            README.md            model card (documentation)
        README.md                model card, rewritten by ``alice eval``
        eval.json                written by ``alice eval``
        indexes/                 search indexes (``alice index build``), derived
        report/                  ``alice report``'s page, derived

The space's digest covers the files that decide what it computes (weights and
manifests); documentation and derived files are listed in ``space.json`` with
their own hashes, checked by ``alice reference verify``, and may be rewritten
without changing the digest. ``alice reference export`` leaves derived folders out.
"""

from __future__ import annotations

import re

FORMAT_VERSION = 1
REFERENCE_WEIGHTS, REFERENCE_MANIFEST = "reference.safetensors", "reference.json"
ADAPTER_WEIGHTS, ADAPTER_MANIFEST = "adapter.safetensors", "adapter.json"
ADAPTERS_FOLDER = "adapters"
HISTORY_FILE, CURVE_FILE = "history.jsonl", "history.png"
#: what an adapter may be named (its folder's name under adapters/)
ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CARD = "README.md"
EVAL_FILE = "eval.json"
SPACE_RECORD = "space.json"
#: files a reference folder may hold besides the ones its manifests name
KNOWN_EXTRA = (EVAL_FILE, CARD)
INDEX_FOLDER, REPORT_FOLDER = "indexes", "report"
DERIVED_FOLDERS = (INDEX_FOLDER, REPORT_FOLDER)
#: the reference modality's latent statistics sit in reference.safetensors under this prefix (hashed with C_ref, M_ref)
STATISTICS_PREFIX = "statistics"
#: an adapter's own mean latent, in adapter.safetensors when its manifest declares search centring
SEARCH_MEAN = "search.mean"
