"""Building a search index: one split of a modality's own data set, embedded by its adapter."""

from __future__ import annotations

from pathlib import Path

import torch

from alice import console
from alice.artifacts.indexes import default_index_path, write_index
from alice.artifacts.store import ReferenceSpace, refuse_existing
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.plugin.dataset import SPLITS


def build_index(
    reference_path: Path,
    modality: str,
    split: str = "test",
    out: Path | None = None,
    overwrite: bool = False,
    device_name: str = "auto",
    batch_size: int = 8192,
) -> Path:
    """Embed one split of a modality's own data set (features from the cache) into an index file."""
    ref = ReferenceSpace.load(reference_path)
    if modality not in ref.adapter_names():
        raise AliceError(
            f"reference {ref.path} has no {modality!r} adapter (it has {', '.join(ref.adapter_names()) or 'none'})"
        )
    if split not in SPLITS:
        raise AliceError(f"unknown split {split!r} (train, val or test)")
    out = Path(out) if out is not None else default_index_path(ref.path, modality, split)
    if out.is_dir():
        raise AliceError(f"{out} is a folder; give the index a file name (….safetensors)")
    refuse_existing(out, overwrite)
    device = pick_device(device_name)
    adapter = ref.load_adapter(modality).to(device)
    data = adapter.load_data((split,), device)
    feats = data.features[split]
    chunks = []
    with torch.no_grad(), console.progress(f"embedding {modality} ({split})", feats.shape[0]) as bar:
        for lo in range(0, feats.shape[0], batch_size):
            chunks.append(adapter.search_latents(adapter.encode(feats[lo : lo + batch_size])).cpu())
            bar.advance(min(batch_size, feats.shape[0] - lo))
    inputs = data.inputs(split)
    texts = list(inputs) if len(inputs) and isinstance(inputs[0], str) else None
    source = adapter.manifest.data
    meta = {
        "modality": modality,
        "split": split,
        "reference_sha256": ref.sha256,
        "adapter_sha256": adapter.sha256,
        "search": adapter.manifest.search or {},  # the items are search latents (Adapter.search_latents)
        "dataset": {"name": source.dataset, "options": source.options},
    }
    return write_index(
        out, torch.cat(chunks), meta, data.labels[split], data.mapping.annotated, texts, data.pair_ids[split], overwrite
    )
