"""``audio-folder``: your audio files and a labels file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from alice.plugin import PAIRED, SPLITS, AliceError, DataSet, Split


class AudioFolder(DataSet):
    """Your audio files with labels: a CSV (columns ``path``, ``labels``, optional ``split`` and
    ``pair_id``; labels separated by ``;``) or JSON lines (the same keys; ``labels`` a list or a
    ``;``-separated string). Paths are relative to ``root``. Without a ``split`` column, a seeded
    ``val_fraction`` and ``test_fraction`` of the rows become val and test."""

    name = "audio-folder"
    modality = "audio"
    description = "a folder of audio files (WAV/FLAC/OGG via soundfile) with a CSV or JSON-lines labels file"

    def __init__(
        self,
        root: str,
        labels: str = "labels.csv",
        vocabulary: list[str] | None = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
    ) -> None:
        self.root = Path(root).expanduser()
        self.labels_file = (self.root / labels) if not Path(labels).is_absolute() else Path(labels)
        if not self.root.is_dir():
            raise AliceError(f"audio-folder: root {self.root} is not a folder")
        if not self.labels_file.is_file():
            raise AliceError(f"audio-folder: labels file {self.labels_file} does not exist")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"option {key} must be a number in [0, 1), got {value!r}")
        self.seed, self.val_fraction, self.test_fraction = seed, float(val_fraction), float(test_fraction)
        self.rows = self._read_rows()
        found = sorted({label for row in self.rows for label in row["labels"]})
        if vocabulary is None:
            self._vocabulary = found
        else:
            unknown = sorted(set(found) - set(vocabulary))
            if unknown:
                raise AliceError(
                    f"audio-folder: label {unknown[0]!r} in {self.labels_file} is not in the vocabulary option"
                )
            self._vocabulary = list(vocabulary)

    def _read_rows(self) -> list[dict[str, Any]]:
        path = self.labels_file
        rows: list[dict[str, Any]] = []
        try:
            text = path.read_text(
                encoding="utf-8-sig"
            )  # a byte-order mark (Excel's UTF-8 CSV) is not part of the header
        except (OSError, UnicodeDecodeError) as exc:
            raise AliceError(f"audio-folder: cannot read {path}: {exc}") from None
        if path.suffix in (".jsonl", ".json", ".ndjson"):
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise AliceError(f"audio-folder: {path} line {n} is not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise AliceError(f"audio-folder: {path} line {n} is not a JSON object")
                rows.append(self._row(record, f"{path} line {n}"))
        else:
            reader = csv.DictReader(text.splitlines())
            if reader.fieldnames:
                reader.fieldnames = [f.strip() for f in reader.fieldnames]
            if not reader.fieldnames or not {"path", "labels"} <= set(reader.fieldnames):
                raise AliceError(f"audio-folder: {path} needs a header with the columns path and labels")
            for n, record in enumerate(reader, 2):
                if None in record:
                    raise AliceError(
                        f"audio-folder: {path} line {n} has more fields than the header; separate labels with ';' or "
                        "quote the field"
                    )
                rows.append(self._row(record, f"{path} line {n}"))
        if not rows:
            raise AliceError(f"audio-folder: {path} lists no audio files")
        return rows

    def _row(self, record: dict[str, Any], where: str) -> dict[str, Any]:
        if not record.get("path"):
            raise AliceError(f"audio-folder: {where} has no path")
        labels = record.get("labels")
        if isinstance(labels, str):
            labels = [s.strip() for s in labels.split(";") if s.strip()]
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise AliceError(f"audio-folder: {where}: labels must be a list of strings or a ';'-separated string")
        file = self.root / str(record["path"])
        if not file.is_file():
            raise AliceError(f"audio-folder: {where}: audio file {file} does not exist")
        split = None if record.get("split") in (None, "") else str(record["split"])
        if split is not None and split not in (*SPLITS, PAIRED):
            raise AliceError(
                f"audio-folder: {where}: split must be one of {', '.join((*SPLITS, PAIRED))}, got {split!r}"
            )
        pair_id = None if record.get("pair_id") in (None, "") else str(record["pair_id"])
        return {"path": file, "labels": labels, "split": split, "pair_id": pair_id}

    @property
    def vocabulary(self) -> list[str]:
        return self._vocabulary

    def identity(self) -> dict[str, Any]:
        stat = self.labels_file.stat()
        return {
            "name": self.name,
            "root": str(self.root.resolve()),
            "labels": str(self.labels_file.resolve()),
            "labels_mtime": stat.st_mtime_ns,
            "vocabulary": self._vocabulary,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
        }

    def _assign(self) -> list[str]:
        if all(r["split"] for r in self.rows):
            return [r["split"] for r in self.rows]
        u = np.random.default_rng(self.seed).random(len(self.rows))
        auto = np.where(
            u < self.test_fraction, "test", np.where(u < self.test_fraction + self.val_fraction, "val", "train")
        )
        return [r["split"] or str(a) for r, a in zip(self.rows, auto)]

    def split(self, name: str) -> Split:
        if name not in (*SPLITS, PAIRED):
            raise ValueError(f"unknown split {name!r}")
        rows = [r for r, s in zip(self.rows, self._assign()) if s == name]
        index = {c: i for i, c in enumerate(self._vocabulary)}
        y = np.zeros((len(rows), len(self._vocabulary)), dtype=np.float32)
        for i, r in enumerate(rows):
            y[i, [index[c] for c in r["labels"]]] = 1.0
        pair_ids = [r["pair_id"] or r["path"].stem for r in rows] if any(r["pair_id"] for r in rows) else None
        return Split([str(r["path"]) for r in rows], y, pair_ids)
