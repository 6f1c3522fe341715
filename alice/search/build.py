"""Building a search index: one split of a modality's own data set, embedded by its adapter."""

from __future__ import annotations

from pathlib import Path

import torch

from alice import console
from alice.artifacts.format.layout import INDEX_FOLDER
from alice.artifacts.loaded import ReferenceSpace
from alice.artifacts.publish import inside, is_reference_folder, scratch_beside, update_space
from alice.config.search import STREAMED_KINDS, AnnSpec
from alice.data.loading import make_backbone
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.files import refuse_to_replace
from alice.plugin.dataset import SPLITS
from alice.search.indexes import Index, default_index_path, index_extras, write_index
from alice.search.streamed import write_streamed


def is_index(path: Path) -> bool:
    """A file `alice index build` wrote (an ALICE index header), the only kind of file --overwrite replaces here."""
    try:
        Index.open(path)
    except AliceError:
        return False
    return True


def build_index(
    reference_path: Path,
    modality: str,
    split: str = "test",
    out: Path | None = None,
    overwrite: bool = False,
    device_name: str = "auto",
    batch_size: int = 8192,
    approximate: AnnSpec | None = None,
) -> Path:
    """Embed one split of a modality's own data set (features from the cache) into an index file.

    ``approximate`` (kind ivf or hnsw, see :mod:`alice.search.ann`) adds a FAISS index of the same embeddings.
    """
    if approximate is not None:
        approximate.check()  # a wrong setting is refused before any work
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
    rel = inside(out, ref.path)
    parts = rel.split("/") if rel is not None else []
    if rel is not None and (len(parts) != 2 or parts[0] != INDEX_FOLDER or not out.name.endswith(".safetensors")):
        where = f"{INDEX_FOLDER}/<name>.safetensors"
        raise AliceError(f"{out} is inside reference {ref.path}: an index there goes in {where}")
    foreign = next((p for p in Path(out).absolute().parents if is_reference_folder(p)), None)
    if rel is None and foreign is not None:
        raise AliceError(f"{out} is inside another reference space ({foreign}); write the index outside it")
    refuse_to_replace(out, overwrite, "index", is_index, folder=False)
    device = pick_device(device_name)
    adapter = ref.load_adapter(modality).to(device)
    data = adapter.load_data((split,), device)
    feats = data.features[split]

    def latents():  # the search latents, one batch at a time
        with torch.no_grad():
            for lo in range(0, feats.shape[0], batch_size):
                yield adapter.search_latents(adapter.encode(feats[lo : lo + batch_size])).cpu()

    inputs = data.inputs(split)
    strings = list(inputs) if len(inputs) and isinstance(inputs[0], str) else None
    # strings are texts, or the paths of the files the backbone reads (an image folder): its word says which
    as_text = strings is not None and _reads_text(adapter)
    texts, files = (strings, None) if as_text else (None, strings)
    source = adapter.manifest.data
    meta = {
        "modality": modality,
        "split": split,
        "reference_sha256": ref.sha256,
        "adapter_sha256": adapter.sha256,
        "search": adapter.manifest.search or {},  # the items are search latents (Adapter.search_latents)
        "dataset": {"name": source.dataset, "options": source.options},
    }
    if approximate is not None and approximate.kind in STREAMED_KINDS:  # latents streamed to the file

        def write(path: Path, overwrite: bool = False) -> Path:
            chunks = (z.numpy() for z in latents())
            extra = index_extras(data.labels[split], data.mapping.annotated, texts, data.pair_ids[split], files)
            return write_streamed(path, chunks, int(feats.shape[0]), meta, approximate, extra, overwrite)

    else:

        def write(path: Path, overwrite: bool = False) -> Path:
            chunks = []
            with console.progress(f"embedding {modality} ({split})", feats.shape[0]) as bar:
                for chunk in latents():
                    chunks.append(chunk)
                    bar.advance(len(chunk))
            content = (torch.cat(chunks), meta, data.labels[split], data.mapping.annotated, texts, data.pair_ids[split])
            return write_index(path, *content, overwrite, approximate, files)

    if rel is None:
        return write(out, overwrite)
    with scratch_beside(ref.path) as tmp:  # an index inside the space comes with the space's next version
        update_space(ref.path, {rel: write(tmp / out.name)})
    return out


def _reads_text(adapter) -> bool:
    """Whether the adapter's backbone reads text (its strings are texts, not file paths); a backbone whose plugin
    is not installed here cannot say, and its strings are kept as texts."""
    try:
        backbone, _ = make_backbone(adapter.manifest.modality_spec().backbone)
    except AliceError:
        return True
    return bool(backbone.reads_text)
