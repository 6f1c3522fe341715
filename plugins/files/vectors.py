"""``embeddings``: vectors some other model already computed, and ``identity``, the backbone that reads them.

Any modality joins a space this way without a backbone plugin: compute its vectors with whatever
model suits it, store them as ``.npy``, ``.safetensors`` or Parquet, and name the modality.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alice.plugin import AliceError, Backbone, Found
from alice_plugins.files.manifest import (
    LabelledRows,
    Row,
    file_stamp,
    parse_labels,
    parse_pair_id,
    parse_split,
    read_records,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

VECTOR_SUFFIXES = (".npy", ".safetensors", ".parquet")
MODALITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def parquet_schema(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError
        raise AliceError(f"embeddings: cannot read Parquet file {path}: {_first_line(exc)}") from None


def vector_columns(schema: Any) -> list[str]:
    """The columns of a Parquet schema that hold lists of numbers."""
    import pyarrow as pa

    out = []
    for f in schema:
        t = f.type
        if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) and (
            pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)
        ):
            out.append(f.name)
    return out


class Embeddings(LabelledRows):
    """Vectors from ``path``: a ``.npy`` array ``[n, d]``, a ``.safetensors`` tensor (``column``: its name;
    default the only one) or a Parquet column of number lists (``column``; default the only such
    column). Labels, splits and pair ids come from the Parquet file's ``labels``, ``split`` and
    ``pair_id`` columns, or from a manifest named by ``labels`` with one row per vector, in order
    (columns ``labels``, optional ``split`` and ``pair_id``). ``modality`` names what the vectors are
    of; the ``identity`` backbone reads them."""

    name = "embeddings"
    modality = "embeddings"
    description = "vectors computed by any model (.npy, .safetensors or Parquet) with labels; backbone identity"

    def __init__(
        self,
        path: str,
        modality: str = "embeddings",
        column: str | None = None,
        labels: str | None = None,
        **split_options: Any,  # vocabulary, seed, val_fraction, test_fraction: LabelledRows._options
    ) -> None:
        if not isinstance(modality, str) or not MODALITY_NAME.match(modality):
            raise ValueError(f"option modality must be a name of letters, digits, '.', '_' or '-', got {modality!r}")
        self._options(**split_options)
        self.path, self.modality, self.column = Path(path).expanduser(), modality, column
        if self.path.suffix.lower() not in VECTOR_SUFFIXES:
            raise AliceError(f"embeddings: {self.path} is not a .npy, .safetensors or .parquet file")
        if not self.path.is_file():
            raise AliceError(f"embeddings: {self.path} does not exist")
        self.labels_file = None if labels is None else Path(labels).expanduser()
        if self.path.suffix.lower() == ".parquet":
            self.column = self._parquet_column()
        if self.labels_file is not None:
            self.source = self.labels_file
            rows = self._manifest_rows()
        elif self.path.suffix.lower() == ".parquet":
            self.source = self.path
            rows = self._parquet_rows()
        else:
            raise AliceError(
                f"embeddings: {self.path} holds vectors only; name a labels file (data.labels) with one row per vector"
            )
        self._set_rows(rows)

    # ------------------------------------------------------------------ labels

    def _parquet_column(self) -> str:
        schema = parquet_schema(self.path)
        if self.column is not None:
            if self.column not in schema.names:
                raise AliceError(
                    f"embeddings: {self.path} has no column {self.column!r} (columns: {', '.join(schema.names)}); "
                    "set data.column to the one holding the vectors"
                )
            return self.column
        found = vector_columns(schema)
        if len(found) != 1:
            raise AliceError(
                f"embeddings: {self.path} has {len(found)} columns of number lists ({', '.join(found) or 'none'}); "
                "set data.column to the one holding the vectors"
            )
        return found[0]

    def _parquet_rows(self) -> list[Row]:
        import pyarrow.parquet as pq

        schema = parquet_schema(self.path)
        if "labels" not in schema.names:
            raise AliceError(
                f"embeddings: {self.path} has no column 'labels' (columns: {', '.join(schema.names)}); add one, or "
                "name a labels file with data.labels"
            )
        wanted = [c for c in ("labels", "split", "pair_id") if c in schema.names]
        table = pq.read_table(self.path, columns=wanted).to_pydict()
        n = len(table["labels"])
        rows = []
        for i in range(n):
            where = f"{self.path} row {i + 1}"
            rows.append(
                Row(
                    i,
                    parse_labels(table["labels"][i], where, self.name),
                    parse_split(table.get("split", [None] * n)[i], where, self.name),
                    parse_pair_id(table.get("pair_id", [None] * n)[i]),
                    where,
                )
            )
        if not rows:
            raise AliceError(f"embeddings: {self.path} holds no rows")
        return rows

    def _manifest_rows(self) -> list[Row]:
        if not self.labels_file.is_file():
            raise AliceError(f"embeddings: labels file {self.labels_file} does not exist")
        rows = []
        for i, (record, where) in enumerate(read_records(self.labels_file, self.name, ("labels",))):
            if "labels" not in record:
                raise AliceError(f"embeddings: {where} has no 'labels'; {self.labels_file} needs a labels column")
            rows.append(
                Row(
                    i,
                    parse_labels(record["labels"], where, self.name),
                    parse_split(record.get("split"), where, self.name),
                    parse_pair_id(record.get("pair_id")),
                    where,
                )
            )
        return rows

    # ------------------------------------------------------------------ vectors

    @cached_property
    def vectors(self) -> np.ndarray:
        """All vectors, float32 ``[n, d]``, checked: one width, finite, one per labelled row."""
        import numpy as np

        suffix = self.path.suffix.lower()
        try:
            if suffix == ".npy":
                array = np.load(self.path, mmap_mode="r", allow_pickle=False)
            elif suffix == ".safetensors":
                array = self._safetensors()
            else:
                array = self._parquet_vectors()
        except AliceError:
            raise
        except Exception as exc:
            raise AliceError(f"embeddings: cannot read vectors from {self.path}: {_first_line(exc)}") from None
        if array.ndim != 2 or array.shape[1] == 0 or not np.issubdtype(array.dtype, np.number):
            raise AliceError(
                f"embeddings: {self.path} holds an array of shape {tuple(array.shape)} ({array.dtype}); expected "
                "numbers [vectors, width]"
            )
        if array.shape[0] != len(self.rows):
            raise AliceError(
                f"embeddings: {self.path} holds {array.shape[0]} vectors but {self.source} has {len(self.rows)} rows; "
                "give one row per vector, in order"
            )
        array = np.ascontiguousarray(array, dtype=np.float32)
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
        if bad.size:
            raise AliceError(
                f"embeddings: {self.rows[int(bad[0])].where}: its vector holds NaN or inf ({bad.size} of the "
                f"{len(self.rows)} vectors do); recompute them, or leave those rows out"
            )
        return array

    def _safetensors(self) -> np.ndarray:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="numpy") as f:
            keys = list(f.keys())
            key = self.column or (keys[0] if len(keys) == 1 else None)
            if key not in keys:
                raise AliceError(
                    f"embeddings: {self.path} holds tensors {', '.join(keys)}; set data.column to the one holding "
                    "the vectors"
                )
            return f.get_tensor(key)

    def _parquet_vectors(self) -> np.ndarray:
        import numpy as np
        import pyarrow.parquet as pq

        column = pq.read_table(self.path, columns=[self.column]).column(self.column).combine_chunks()
        lengths = column.value_lengths().to_numpy(zero_copy_only=False) if hasattr(column, "value_lengths") else None
        if lengths is None:
            raise AliceError(f"embeddings: column {self.column!r} of {self.path} does not hold lists of numbers")
        if column.null_count:
            i = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise AliceError(
                f"embeddings: {self.path} row {i + 1} has no vector in column {self.column!r}; compute it, or leave "
                "the row out"
            )
        width = int(lengths[0]) if len(lengths) else 0
        odd = np.flatnonzero(lengths != width)
        if odd.size:
            i = int(odd[0])
            raise AliceError(
                f"embeddings: {self.path} row {i + 1} has a vector of {int(lengths[i])} numbers, row 1 one of {width}; "
                "every vector of a data set has one width"
            )
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def inputs(self, rows: list[Row]) -> np.ndarray:
        return self.vectors[[r.item for r in rows]]

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **file_stamp(self.path),
            "column": self.column,
            "labels": None if self.labels_file is None else file_stamp(self.labels_file),
            "modality": self.modality,
            **self.common_identity(),
        }

    @classmethod
    def inspect(cls, path: Path) -> Found | None:
        if not (path.is_file() and path.suffix.lower() in VECTOR_SUFFIXES):
            return None
        options: dict[str, Any] = {"path": str(path), "modality": path.stem}
        if path.suffix.lower() == ".parquet":
            schema = parquet_schema(path)
            if not vector_columns(schema):
                return None
            if "labels" in schema.names:
                return Found(options, path.stem, "identity", note=f"vectors and labels in {path.name}")
        candidates = [path.with_suffix(".csv"), path.with_suffix(".jsonl"), path.parent / "labels.csv"]
        labels = next((c for c in candidates if c.is_file()), None)
        if labels is None:
            return None
        return Found(options | {"labels": str(labels)}, path.stem, "identity", note=f"vectors in {path.name}")


class IdentityBackbone(Backbone):
    """Vectors as they are: the features of the ``embeddings`` data set (or of any data set whose inputs are
    vectors). Its width is the data's (``dim`` fixes it); it reads every modality."""

    name = "identity"
    modality = "any"
    description = "precomputed vectors as they are (data set embeddings); any modality"
    file_suffixes = (".npy",)  # a search query: one vector saved with numpy.save
    batch_size = 4096

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0):
            raise ValueError(f"option dim must be a positive integer, got {dim!r}")
        self.dim = dim

    def reads(self, modality: str) -> bool:
        return True

    @classmethod
    def candidates(cls, modality: str, sample: Any, models: Any = ()) -> list[dict[str, Any]]:
        """Vectors (lists of numbers of one width), of any modality."""
        import numpy as np

        try:
            rows = [np.asarray(item) for item in sample if not isinstance(item, (str, Path, tuple, dict))]
        except (TypeError, ValueError):
            return []
        ok = len(rows) == len(sample) > 0 and all(
            r.ndim == 1 and r.dtype.kind in "fiu" and r.shape == rows[0].shape for r in rows
        )
        return [{}] if ok else []

    def bind(self, *, inputs: Any = None, feature_dim: int | None = None) -> None:
        width = feature_dim
        if width is None and inputs is not None and len(inputs):
            width = int(self._matrix(inputs[:1]).shape[1])
        if width is None:
            return
        if self.dim is None:
            self.dim = width
        elif width != self.dim:
            raise AliceError(
                f"backbone 'identity' takes vectors of {self.dim} numbers (option dim), the data has {width}; set dim "
                f"to {width}, or leave it out"
            )

    @property
    def feature_dim(self) -> int:
        if self.dim is None:
            raise AliceError("backbone 'identity' has not seen its vectors yet; set the option dim to their width")
        return self.dim

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.feature_dim}

    def _matrix(self, inputs: Any) -> np.ndarray:
        import numpy as np

        rows = []
        for item in inputs:
            if isinstance(item, (str, Path)):
                item = np.load(item, allow_pickle=False)
            if isinstance(item, str) or not hasattr(item, "__len__"):
                raise AliceError(
                    f"backbone 'identity' reads vectors (lists of numbers), got {type(item).__name__}; use it with "
                    "the embeddings data set"
                )
            rows.append(np.asarray(item, dtype=np.float32).reshape(-1))
        try:
            return np.stack(rows)
        except ValueError:
            widths = sorted({r.shape[0] for r in rows})
            raise AliceError(f"backbone 'identity' got vectors of several widths: {widths}") from None

    def extract(self, inputs: Any, device: torch.device) -> torch.Tensor:
        import torch

        x = self._matrix(inputs)
        if x.shape[1] != self.feature_dim:
            raise AliceError(f"backbone 'identity' takes vectors of {self.feature_dim} numbers, got {x.shape[1]}")
        return torch.from_numpy(x).to(device)

    def preview(self, item: Any) -> str:
        import numpy as np

        v = np.asarray(item, dtype=np.float32).reshape(-1)
        head = " ".join(f"{x:.3f}" for x in v[:6])
        return f"[{v.size} numbers] {head}{' …' if v.size > 6 else ''}"
