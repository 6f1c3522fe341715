"""Latents out of a space into Parquet (``alice embed``): for vector databases, data frames and streamed indexes.

One row per item, written a batch at a time (pyarrow's ``ParquetWriter``), never all in memory:

- ``id``: the item's row in its split (or its place among the files given);
- ``labels``: its labels in the reference vocabulary, when its data set gives them;
- ``text`` or ``file``: what the item is (a caption; the path of an image or sound);
- ``pair_id``: the scene it shows, when the data set names one;
- ``search``: its search latent (what an index holds and a query is compared with; :meth:`Space.search_latents`);
- ``latent``: its raw latent E_m(x) (:meth:`Space.encode`), which C_ref and M_ref read.

The file's metadata (key ``alice``) names the space's digest, the reference and adapter sha256 and the
modality, so a file of latents is never taken for another space's: ``alice index build --parquet``
checks them as an index's pins are checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice import console
from alice._version import __version__
from alice.api import Space
from alice.config.modality import DataSpec
from alice.errors import AliceError
from alice.files import atomic_file
from alice.plugin.dataset import SPLITS

LATENTS_FORMAT = "alice.latents"
#: the two latent columns
SEARCH, RAW = "search", "latent"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise AliceError("Parquet files need pyarrow: pip install pyarrow") from None
    return pa, pq


def embed_to_parquet(
    space: Space,
    modality: str,
    out: Path,
    split: str | None = None,
    files: Sequence[str | Path] | None = None,
    batch_size: int = 1024,
    overwrite: bool = False,
    data: str | None = None,
) -> tuple[Path, int]:
    """Write the latents of one split of ``modality``'s own data set, of the data set recipe ``data`` names
    (its ``split``, default test), or of ``files``, to ``out``; ``(out, rows)``."""
    pa, pq = _pyarrow()
    if (split is None and data is None) == (files is None):
        raise AliceError(
            "embed one thing: a split of the modality's data set (--split), another data set (--data RECIPE), "
            "or files (--files)"
        )
    adapter = space.adapter(modality)
    dataset = None
    if data is not None:
        from alice.data.recipes import load_recipe

        recipe = load_recipe(data)
        if recipe.modality != modality:
            raise AliceError(f"recipe {recipe.name!r} reads modality {recipe.modality!r}, not {modality!r}")
        dataset, split = recipe.data, split or "test"
    out = Path(out)
    if out.is_dir():
        raise AliceError(f"{out} is a folder; give the latents a file name (….parquet)")
    if out.exists() and not overwrite:
        raise AliceError(f"{out} already exists; pass --overwrite to replace it")
    if split is not None:
        if split not in SPLITS:
            raise AliceError(f"unknown split {split!r} (train, val or test)")
        batches, total = _split_batches(space, modality, split, batch_size, dataset)
    else:
        paths = [str(f) for f in files]
        missing = next((p for p in paths if not Path(p).is_file()), None)
        if not paths or missing is not None:
            raise AliceError(f"no file at {missing}" if missing else "--files names no file")
        batches, total = _file_batches(space, modality, paths, batch_size), len(paths)
    meta = {
        "format": LATENTS_FORMAT,
        "alice_version": __version__,
        "space_digest": space.digest,
        "reference_sha256": space.reference.sha256,
        "adapter_sha256": adapter.sha256,
        "modality": modality,
        "split": split,
        "dataset": {"name": dataset.dataset, "options": dataset.options} if dataset is not None else None,
        "search": adapter.manifest.search or {},
        "latent_dim": space.latent_dim,
        "count": total,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    written = 0
    with atomic_file(out, "latents") as tmp, console.progress(f"embedding {modality}", total) as bar:
        try:
            for columns in batches:
                table = pa.table(
                    {
                        **{k: v for k, v in columns.items() if k not in (SEARCH, RAW)},
                        SEARCH: _vectors(pa, columns[SEARCH]),
                        RAW: _vectors(pa, columns[RAW]),
                    }
                )
                if writer is None:
                    schema = table.schema.with_metadata({"alice": json.dumps(meta, sort_keys=True)})
                    writer = pq.ParquetWriter(str(tmp), schema)
                writer.write_table(table.cast(writer.schema))
                written += table.num_rows
                bar.advance(table.num_rows)
        finally:
            if writer is not None:
                writer.close()
    return out, written


def _vectors(pa: Any, z: torch.Tensor) -> Any:
    """``[n, d]`` float32 as a column of fixed-size lists (what vector databases and Arrow readers take)."""
    flat = pa.array(z.detach().to("cpu", torch.float32).contiguous().numpy().reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, int(z.shape[1]))


def _split_batches(
    space: Space, modality: str, split: str, batch_size: int, dataset: DataSpec | None = None
) -> tuple[Iterator[dict], int]:
    adapter = space.adapter(modality)
    data = adapter.load_data((split,), space.device, dataset=dataset)
    feats, labels = data.features[split], data.labels[split]
    inputs = data.inputs(split)
    strings = list(inputs) if len(inputs) and isinstance(inputs[0], str) else None
    what = "text" if strings is not None and space.reads(modality).reads_text else "file"
    vocabulary = space.vocabulary
    pair_ids = data.pair_ids[split]

    def batches() -> Iterator[dict]:
        with torch.no_grad():
            for lo in range(0, feats.shape[0], batch_size):
                raw = adapter.encode(feats[lo : lo + batch_size])
                hi = lo + len(raw)
                columns: dict[str, Any] = {
                    "id": np.arange(lo, hi, dtype=np.int64),
                    "labels": [
                        [vocabulary[c] for c in np.flatnonzero(row > 0.5)] for row in labels[lo:hi].cpu().numpy()
                    ],
                }
                if strings is not None:
                    columns[what] = strings[lo:hi]
                if pair_ids is not None:
                    columns["pair_id"] = [str(p) for p in pair_ids[lo:hi]]
                columns[SEARCH], columns[RAW] = adapter.search_latents(raw), raw
                yield columns

    return batches(), int(feats.shape[0])


def _file_batches(space: Space, modality: str, paths: list[str], batch_size: int) -> Iterator[dict]:
    for lo in range(0, len(paths), batch_size):
        chunk = paths[lo : lo + batch_size]
        raw = space.encode(modality, chunk)
        yield {
            "id": np.arange(lo, lo + len(chunk), dtype=np.int64),
            "file": chunk,
            SEARCH: space.search_latents(modality, raw),
            RAW: raw,
        }


def read_latents_meta(path: Path) -> dict[str, Any]:
    """The ``alice`` metadata of a Parquet file of latents; refused when it is not one ``alice embed`` wrote."""
    _, pq = _pyarrow()
    if not Path(path).is_file():
        raise AliceError(f"no Parquet file at {path}; write one with `alice embed`")
    try:
        schema = pq.read_schema(str(path))
    except (OSError, ValueError) as exc:
        raise AliceError(f"{path} is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    raw = (schema.metadata or {}).get(b"alice")
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != LATENTS_FORMAT or SEARCH not in schema.names:
        raise AliceError(f"{path} holds no latents `alice embed` wrote (no 'alice' metadata or no 'search' column)")
    return meta


def index_from_parquet(
    space: Space, modality: str, parquet: Path, out: Path, spec: Any, overwrite: bool = False, rows: int = 65_536
) -> Path:
    """A streamed (``ivfpq``) index of the ``search`` latents of a Parquet file ``alice embed`` wrote from this
    space, read a batch at a time; refused when the file's reference or adapter is not this space's."""
    from alice.artifacts.publish import inside
    from alice.search.indexes import index_extras
    from alice.search.streamed import write_streamed

    _, pq = _pyarrow()
    meta = read_latents_meta(parquet)
    if meta.get("modality") != modality:
        raise AliceError(f"{parquet} holds {meta.get('modality')!r} latents, not {modality!r}")
    adapter = space.adapter(modality)
    if meta.get("reference_sha256") != space.reference.sha256 or meta.get("adapter_sha256") != adapter.sha256:
        raise AliceError(
            f"{parquet} holds latents of another reference or {modality!r} adapter than this space's; embed again"
        )
    if spec.kind != "ivfpq":
        raise AliceError(f"an index from Parquet is written streamed: --kind ivfpq, not {spec.kind!r}")
    if inside(Path(out), space.path) is not None:
        raise AliceError(f"{out} is inside the space: write an index from Parquet beside it and pin it")
    f = pq.ParquetFile(str(parquet))
    names = f.schema_arrow.names
    count = f.metadata.num_rows
    small = [c for c in ("labels", "text", "file", "pair_id") if c in names]
    table = f.read(columns=small) if small else None
    labels = None
    if table is not None and "labels" in small:
        position = {name: i for i, name in enumerate(space.vocabulary)}
        labels = torch.zeros(count, len(position), dtype=torch.uint8)
        for i, names_of in enumerate(table.column("labels").to_pylist()):
            labels[i, [position[n] for n in names_of or () if n in position]] = 1

    def strings(name: str) -> list[str] | None:
        return table.column(name).to_pylist() if table is not None and name in small else None

    extra = index_extras(labels, None, strings("text"), strings("pair_id"), strings("file"))
    chunks = (b.column(0).flatten().to_numpy().reshape(b.num_rows, -1) for b in f.iter_batches(rows, columns=[SEARCH]))
    index_meta = {
        "modality": modality,
        "split": meta.get("split") or "files",
        "reference_sha256": space.reference.sha256,
        "adapter_sha256": adapter.sha256,
        "search": adapter.manifest.search or {},
        "dataset": {"parquet": Path(parquet).name},
    }
    return write_streamed(Path(out), chunks, count, index_meta, spec, extra, overwrite)
