"""``text-file``: labelled texts from one CSV or JSON-lines file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alice.plugin import AliceError, Found
from alice_plugins.files.manifest import LabelledRows, file_stamp, read_manifest, read_records


class TextFile(LabelledRows):
    """Texts with labels: a manifest (:mod:`alice_plugins.files.manifest`) whose ``text`` column
    (``column``) holds each text; multi-label."""

    name = "text-file"
    modality = "text"
    description = "your labelled texts: a CSV or JSON-lines file with a text and a labels column"

    def __init__(
        self,
        path: str,
        column: str = "text",
        **split_options: Any,  # vocabulary, seed, val_fraction, test_fraction: LabelledRows._options
    ) -> None:
        self._options(**split_options)
        self.path, self.column = Path(path).expanduser(), column
        self.source = self.path
        rows = read_manifest(self.path, column, self.name)
        for r in rows:
            if not isinstance(r.item, str) or not r.item.strip():
                raise AliceError(
                    f"text-file: {r.where} has no text in column {column!r}; write it, or leave the row out"
                )
        self._set_rows(rows)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, **file_stamp(self.path), "column": self.column, **self.common_identity()}

    @classmethod
    def inspect(cls, path: Path) -> Found | None:
        if not (path.is_file() and path.suffix.lower() in (".csv", ".jsonl")):
            return None
        record = next(iter(read_records(path, cls.name)), ({}, ""))[0]
        if "text" not in record or "labels" not in record:
            return None
        return Found({"path": str(path)}, cls.modality, "minilm", note=f"texts in the column text of {path.name}")
