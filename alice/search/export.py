"""An index exported to a vector database: LanceDB (embedded, on disk, Arrow-native; ``pip install lancedb``).

``alice index export INDEX --to lancedb DIR`` writes one LanceDB table, ``items``, a block of rows at a
time: ``row`` (the item's row in the index), ``vector`` (its search latent, float32), ``labels`` (class
numbers in the reference vocabulary), and ``text``, ``file`` or ``pair_id`` where the index has them.
Beside it, a JSON file (``MARKER``) keeps the index's metadata (reference and adapter sha256, modality, count)
and the sha256 of the index file exported, so ``alice search --in DIR`` refuses a database built from
another space, as it refuses such an index.

LanceDB searches the table by a full scan (exact inner products, as ``--exact``) unless asked to
build its own IVF-PQ index (``--lance-index``); ``benchmarks/export.py`` measures how often its top 10
are ALICE's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice.errors import AliceError
from alice.files import sha256_remembered
from alice.reading import parse_json
from alice.search.indexes import Index

TABLE, MARKER = "items", "alice.json"


def lancedb_module() -> Any:
    try:
        import lancedb
    except ImportError:
        raise AliceError("exporting to LanceDB needs lancedb: pip install lancedb") from None
    return lancedb


def export_lancedb(index: Index, folder: Path, overwrite: bool = False, rows: int = 65_536) -> Path:
    """Write ``index``'s items to a LanceDB database at ``folder`` (a new folder, or one this wrote, replaced)."""
    import pyarrow as pa

    lancedb = lancedb_module()
    folder = Path(folder)
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise AliceError(f"{folder} exists and is not a database written by alice index export; name a new folder")
        if not overwrite:
            raise AliceError(f"{folder} already exists; pass --overwrite to replace it")
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    db = lancedb.connect(str(partial))

    def batches():
        for lo, block in index.blocks(rows):
            hi = lo + len(block)
            columns: dict[str, Any] = {
                "row": pa.array(np.arange(lo, hi, dtype=np.int64)),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(block.float().contiguous().numpy().reshape(-1)), index.dim
                ),
            }
            if index.labels is not None:
                columns["labels"] = [np.flatnonzero(r).astype(np.int32).tolist() for r in index.labels[lo:hi].numpy()]
            for name in ("texts", "files", "pair_ids"):
                strings = getattr(index, name)
                if strings is not None:
                    columns[name.removesuffix("s")] = strings[lo:hi]
            yield pa.RecordBatch.from_pydict(columns)

    try:
        first = next(batches())
        table = db.create_table(TABLE, data=iter([first]), schema=first.schema)
        for i, batch in enumerate(batches()):
            if i:
                table.add(pa.Table.from_batches([batch]))
        meta = {**index.meta, "classes": int(index.labels.shape[1]) if index.labels is not None else 0}
        marker = {"index": meta, "index_sha256": sha256_remembered(index.path), "index_file": index.name}
        (partial / MARKER).write_text(json.dumps(marker, sort_keys=True), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def is_export(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MARKER).is_file()


class LanceIndex(Index):
    """A LanceDB database `alice index export` wrote, searched as an index: the same checks, the same results."""

    _table: Any = None

    @classmethod
    def open_export(cls, folder: Path) -> LanceIndex:
        folder = Path(folder)
        marker = parse_json((folder / MARKER).read_bytes(), f"{folder / MARKER}")
        meta = marker.get("index") if isinstance(marker, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("count"), int) or not meta.get("reference_sha256"):
            raise AliceError(f"{folder}: its {MARKER} names no index; export it again with `alice index export`")
        table = lancedb_module().connect(str(folder)).open_table(TABLE)
        if table.count_rows() != meta["count"]:
            raise AliceError(f"{folder} holds {table.count_rows()} items, its {MARKER} says {meta['count']}")
        names = table.schema.names
        strings = {}
        for name in ("text", "file", "pair_id"):
            strings[name] = table.to_arrow().column(name).to_pylist() if name in names else None
        labels = None
        if "labels" in names:
            classes = int(meta.get("classes") or 0)
            rows = table.to_arrow().select(["row", "labels"]).sort_by("row").column("labels").to_pylist()
            labels = torch.zeros(len(rows), max([classes, *(max(r, default=-1) + 1 for r in rows)]), dtype=torch.uint8)
            for i, r in enumerate(rows):
                labels[i, r] = 1
        out = cls(
            path=folder,
            meta={**meta, "kind": "lancedb", "index_sha256": marker.get("index_sha256")},
            count=meta["count"],
            dim=int(meta["latent_dim"]),
            label_classes=int(labels.shape[1]) if labels is not None else None,
            labels=labels,
            texts=strings["text"],
            files=strings["file"],
            pair_ids=strings["pair_id"],
        )
        out._table = table
        return out

    @property
    def name(self) -> str:
        return self.path.name

    def load(self) -> LanceIndex:
        return self

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The search latents of some rows ``[len(ids), d]``, read from the database (an item query's own latent)."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if any(i < 0 or i >= self.count for i in ids):
            raise AliceError(f"{self.path} has rows 0 to {self.count - 1}, not {ids}")
        where = f"row IN ({', '.join(str(i) for i in sorted(set(ids)))})"
        found = self._table.search().where(where).select(["row", "vector"]).limit(len(set(ids))).to_arrow()
        vectors = dict(zip(found.column("row").to_pylist(), found.column("vector").to_pylist()))
        return np.asarray([vectors[i] for i in ids], dtype=np.float32).reshape(len(ids), self.dim)

    def search(
        self, queries: torch.Tensor, k: int = 10, exact: bool = False, **_: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top ``k`` by inner product, as LanceDB answers it (``metric dot``; its distance is 1 - the inner product).

        Several queries go to LanceDB as one batch (its ``query_index`` says whose each result is)."""
        if queries.shape[-1] != self.dim:
            raise AliceError(f"queries have {queries.shape[-1]} dimensions, database {self.path} holds {self.dim}")
        q = queries.detach().to("cpu", torch.float32).reshape(-1, self.dim).numpy()
        k = min(k, self.count)
        if not len(q):
            return torch.zeros(0, k), torch.zeros(0, k, dtype=torch.int64)
        found = (
            self._table.search(q[0] if len(q) == 1 else list(q))
            .distance_type("dot")
            .limit(k)
            .select(["row", "_distance"])
            .to_arrow()
        )
        if found.num_rows != len(q) * k:
            raise AliceError(f"{self.path} answered {found.num_rows} rows for {len(q)} queries of {k}; export it again")
        which = found.column("query_index").to_numpy() if len(q) > 1 else np.zeros(found.num_rows, dtype=np.int64)
        distance = found.column("_distance").to_numpy()
        order = np.lexsort((distance, which))  # each query's rows together, nearest first
        rows = found.column("row").to_numpy()[order].reshape(len(q), k).astype(np.int64)
        scores = (1 - distance[order]).reshape(len(q), k).astype(np.float32)
        return torch.from_numpy(scores), torch.from_numpy(rows)
