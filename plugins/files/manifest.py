"""The one manifest format of the file data sets (``image-folder``, ``text-file``, ``audio-folder``,
``embeddings``, ``hf-dataset``), and the data set they share.

A manifest is a CSV file (a header line, then one row per item) or JSON lines (one object per line):

=============  ==========================================================================================
column         what it holds
=============  ==========================================================================================
(the input)    ``path`` (a file, relative to the data set's folder) or ``text``; the data set names it
``labels``     the item's labels: a JSON list, or one string with the labels separated by ``;``
``split``      optional: ``train``, ``val``, ``test`` or ``paired``; empty: drawn (seeded ``val_fraction``
               and ``test_fraction``)
``pair_id``    optional: the scene the item shows; items of two modalities with one pair id are a pair
               (evaluation only: training never reads it)
=============  ==========================================================================================

Bad input is one :class:`AliceError` line naming the file, the line and the fix, raised before
anything is extracted or written.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alice.plugin import PAIRED, SPLITS, AliceError, DataSet, Split, label_key, parse_json, warn

SPLIT_NAMES = (*SPLITS, PAIRED)
TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
#: the manifest names a data set looks for in its folder when none is given
DEFAULT_MANIFESTS = ("labels.csv", "labels.jsonl")


@dataclass
class Row:
    """One item: its input as the manifest gives it, its labels, its split and pair id, and where it is."""

    item: Any
    labels: list[str]
    split: str | None
    pair_id: str | None
    where: str  # "labels.csv line 7": how an error names it


def read_records(path: Path, what: str, columns: tuple[str, ...] = ()) -> Iterator[tuple[dict[str, Any], str]]:
    """Each record of a CSV or JSON-lines file with where it is (``file line n``).

    A CSV needs a header naming ``columns``; a byte-order mark (Excel's UTF-8 CSV) and spaces
    around the header's names are ignored.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AliceError(f"{what}: cannot read {path}: {exc}") from None
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            record = parse_json(line, f"{what}: {path} line {n}", hint="; one object per line")
            if not isinstance(record, dict):
                raise AliceError(f"{what}: {path} line {n} is not a JSON object; one object per line")
            yield record, f"{path} line {n}"
        return
    reader = csv.DictReader(text.splitlines())
    try:
        if reader.fieldnames:
            reader.fieldnames = [f.strip() for f in reader.fieldnames]
        if not set(columns) <= set(reader.fieldnames or ()):
            raise AliceError(
                f"{what}: {path} needs a header with the columns {' and '.join(columns)} (found: "
                f"{', '.join(reader.fieldnames or ()) or 'nothing'})"
            )
        for record in reader:
            n = reader.line_num
            if None in record:
                raise AliceError(
                    f"{what}: {path} line {n} has more fields than the header; separate labels with ';' or quote "
                    "the field"
                )
            yield record, f"{path} line {n}"
    except csv.Error as exc:  # a NUL byte, a field longer than csv reads
        raise AliceError(f"{what}: {path} line {reader.line_num} is not CSV ({exc}); fix the file") from None


def parse_labels(value: Any, where: str, what: str) -> list[str]:
    """A JSON list of strings, or one string of labels separated by ``;``; at least one label."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # a JSON list inside a CSV cell
            try:
                value = parse_json(text, f"{what}: {where}: labels")
            except AliceError:
                raise AliceError(
                    f'{what}: {where}: labels {text!r} is not a JSON list; write a;b or ["a", "b"]'
                ) from None
        else:
            value = [s.strip() for s in text.split(";") if s.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise AliceError(f"{what}: {where}: labels must be a list of strings or a ';'-separated string, got {value!r}")
    labels = [s.strip() for s in value]
    if not labels or not all(labels):
        raise AliceError(f"{what}: {where} has an empty label; give each item at least one label, or leave the row out")
    return list(dict.fromkeys(labels))


def parse_split(value: Any, where: str, what: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    split = str(value).strip()
    if split not in SPLIT_NAMES:
        raise AliceError(
            f"{what}: {where}: split must be one of {', '.join(SPLIT_NAMES)} (or empty, to draw it), got {split!r}"
        )
    return split


def parse_pair_id(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def row_from_record(record: dict[str, Any], where: str, column: str, what: str, path: Path) -> Row:
    """A manifest record as a :class:`Row`; a record without the input or labels is refused."""
    for key in (column, "labels"):
        if key not in record:
            raise AliceError(f"{what}: {where} has no {key!r}; {path} needs the columns {column} and labels")
    return Row(
        record[column],
        parse_labels(record["labels"], where, what),
        parse_split(record.get("split"), where, what),
        parse_pair_id(record.get("pair_id")),
        where,
    )


def read_manifest(path: Path, column: str, what: str) -> list[Row]:
    """Every row of a manifest whose input is in ``column``."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise AliceError(f"{what}: {path} is not a CSV or JSON-lines file ({', '.join(TABLE_SUFFIXES)})")
    if not path.is_file():
        raise AliceError(f"{what}: labels file {path} does not exist")
    rows = [
        row_from_record(record, where, column, what, path)
        for record, where in read_records(path, what, (column, "labels"))
    ]
    if not rows:
        raise AliceError(f"{what}: {path} lists no items")
    return rows


def file_rows(rows: list[Row], root: Path, what: str, kind: str) -> list[Row]:
    """Rows whose input is a file under ``root``: each file must exist, and be listed once."""
    seen: dict[Path, str] = {}
    for r in rows:
        text = str(r.item or "").strip()
        if not text:
            raise AliceError(f"{what}: {r.where} has no {kind} file; give its path, or leave the row out")
        file = root / text
        if not file.is_file():
            raise AliceError(
                f"{what}: {r.where}: {kind} file {file} does not exist; fix the path, or leave the row out"
            )
        if file in seen:
            raise AliceError(
                f"{what}: {r.where} lists {file} again (first at {seen[file]}); give one row with all its labels"
            )
        seen[file] = r.where
        r.item = file
    return rows


def files_digest(paths: Sequence[Path]) -> str:
    """What a change to any of these files changes: their names, sizes and modification times."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def file_stamp(path: Path) -> dict[str, Any]:
    """What identifies one file's content in a cache key: its absolute path, modification time and size."""
    stat = path.stat()
    return {"path": str(path.resolve()), "mtime": stat.st_mtime_ns, "size": stat.st_size}


def check_fraction(key: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"option {key} must be a number in [0, 1), got {value!r}")
    return float(value)


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


class LabelledRows(DataSet):
    """A data set of :class:`Row` s: vocabulary, split assignment and pair-id checks shared by the file data sets.

    A subclass reads its rows into ``self.rows`` (``_set_rows``) and turns a split's rows into
    inputs (``inputs``). Options ``vocabulary`` (the label list; default: the sorted labels found),
    ``seed``, ``val_fraction`` and ``test_fraction`` (for rows without a split).
    """

    #: what names the data set in errors: "image-folder: labels.csv line 7: ..."
    source: Path

    def _options(
        self,
        vocabulary: list[str] | None = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
    ) -> None:
        """The options every file data set takes (an unknown one is refused by name, as a data set's own)."""
        if vocabulary is not None and (
            not isinstance(vocabulary, list) or not vocabulary or not all(isinstance(v, str) and v for v in vocabulary)
        ):
            raise ValueError(f"option vocabulary must be a list of label names, got {vocabulary!r}")
        seen: dict[str, str] = {}
        for v in vocabulary or ():
            if label_key(v) in seen:
                raise ValueError(
                    f"option vocabulary names one label twice, {seen[label_key(v)]!r} and {v!r} (labels are compared "
                    "without case or surrounding spaces)"
                )
            seen[label_key(v)] = v
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"option seed must be an integer, got {seed!r}")
        self.vocabulary_option, self.seed = vocabulary, seed
        self.val_fraction = check_fraction("val_fraction", val_fraction)
        self.test_fraction = check_fraction("test_fraction", test_fraction)
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("options val_fraction and test_fraction must leave some rows for training")

    def _set_rows(self, rows: list[Row]) -> None:
        self.rows = rows
        self._one_spelling(rows)
        found = sorted({label for r in rows for label in r.labels})
        if self.vocabulary_option is None:
            self._vocabulary = found
        else:
            known = set(self.vocabulary_option)
            for r in rows:
                for label in r.labels:
                    if label not in known:
                        raise AliceError(
                            f"{self.name}: label {label!r} in {r.where} is not in the vocabulary option; add it there, "
                            "or correct the label"
                        )
            self._vocabulary = list(self.vocabulary_option)
        self._splits = self._assign()

    def _one_spelling(self, rows: list[Row]) -> None:
        """Give each label one spelling (:func:`label_key`: labels are compared without case or surrounding spaces).

        'Coins' in one row and 'coins' in forty are one class, written the way the ``vocabulary`` option
        writes it, else the way most rows do (the first seen on a tie); each label taken as another
        spelling is said in one warning line naming its rows. A label mapper matches labels the same way,
        so two classes that differ only in case could never be told apart by a second modality.
        """
        from collections import Counter

        counts = Counter(label for r in rows for label in r.labels)
        spellings: dict[str, list[str]] = {}
        for label in counts:  # first seen first
            spellings.setdefault(label_key(label), []).append(label)
        chosen = {label_key(v): v for v in self.vocabulary_option or ()}
        renamed: dict[str, str] = {}
        for key, found in spellings.items():
            target = chosen.get(key) or max(found, key=lambda v: counts[v])  # max keeps the first on a tie
            renamed |= {v: target for v in found if v != target}
        if not renamed:
            return
        where: dict[str, list[str]] = {}
        for r in rows:
            for label in r.labels:
                if label in renamed:
                    where.setdefault(label, []).append(r.where)
            r.labels = list(dict.fromkeys(renamed.get(label, label) for label in r.labels))
        for old, new in renamed.items():
            lines = where[old]
            shown = ", ".join(lines[:3]) + (f" and {len(lines) - 3} more" if len(lines) > 3 else "")
            whose = "the vocabulary option's spelling" if new in chosen.values() else _rows(counts[new])
            warn(
                f"{self.name}: label {old!r} ({_rows(len(lines))}: {shown}) taken as {new!r} ({whose}); labels are "
                "compared without case or surrounding spaces, so they are one class"
            )

    @property
    def vocabulary(self) -> list[str]:
        return self._vocabulary

    def _assign(self) -> list[str]:
        """Each row's split: its own, or drawn (seeded); rows sharing a pair id share one draw."""
        rows = self.rows
        if all(r.split for r in rows):
            out = [r.split for r in rows]
        else:
            import numpy as np

            u = np.random.default_rng(self.seed).random(len(rows))
            first: dict[str, int] = {}
            for i, r in enumerate(rows):
                if r.pair_id is not None:
                    u[i] = u[first.setdefault(r.pair_id, i)]
            test, val = self.test_fraction, self.test_fraction + self.val_fraction
            auto = np.where(u < test, "test", np.where(u < val, "val", "train"))
            out = [r.split or str(a) for r, a in zip(rows, auto)]
        where: dict[str, tuple[str, str]] = {}
        for r, s in zip(rows, out):
            if r.pair_id is None:
                continue
            seen = where.setdefault(r.pair_id, (s, r.where))
            if seen[0] != s:
                raise AliceError(
                    f"{self.name}: pair id {r.pair_id!r} is in {seen[0]} ({seen[1]}) and in {s} ({r.where}); a pair id "
                    "names one scene, so give its rows one split"
                )
        return out

    def split_rows(self, name: str) -> list[Row]:
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}")
        rows = [r for r, s in zip(self.rows, self._splits) if s == name]
        if not rows and name in SPLITS:
            if all(r.split for r in self.rows):
                raise AliceError(
                    f"{self.name}: {self.source} has no {name} rows; mark some rows {name} in its split column, or "
                    f"leave the split column empty to draw a seeded {name}_fraction"
                )
            raise AliceError(
                f"{self.name}: no row of {self.source} was drawn into {name} ({len(self.rows)} rows, val_fraction "
                f"{self.val_fraction}, test_fraction {self.test_fraction}); add rows, raise the fraction, or mark rows "
                f"{name} in a split column"
            )
        return rows

    def counts(self) -> dict[str, int]:
        return {s: self._splits.count(s) for s in SPLIT_NAMES if s in self._splits}

    def inputs(self, rows: list[Row]) -> Sequence[Any]:
        """The backbone's inputs of these rows (default: the manifest's values as they are)."""
        return [r.item for r in rows]

    def default_pair_id(self, row: Row) -> str:
        """The pair id of a row that names none, when other rows do."""
        return row.where

    def split(self, name: str) -> Split:
        import numpy as np

        rows = self.split_rows(name)
        index = {c: i for i, c in enumerate(self._vocabulary)}
        y = np.zeros((len(rows), len(self._vocabulary)), dtype=np.float32)
        for i, r in enumerate(rows):
            y[i, [index[c] for c in r.labels]] = 1.0
        pair_ids = [r.pair_id or self.default_pair_id(r) for r in rows] if any(r.pair_id for r in rows) else None
        return Split(self.inputs(rows), y, pair_ids)

    def common_identity(self) -> dict[str, Any]:
        return {
            "vocabulary": self._vocabulary,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
        }


def find_manifest(root: Path, labels: str | None) -> Path | None:
    """The manifest a folder data set reads: ``labels`` (relative to ``root``, or absolute), else the first of
    :data:`DEFAULT_MANIFESTS` present, else None."""
    if labels is not None:
        p = Path(labels).expanduser()
        return p if p.is_absolute() else root / p
    return next((root / n for n in DEFAULT_MANIFESTS if (root / n).is_file()), None)
