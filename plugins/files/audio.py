"""``audio-folder``: your audio files and a labels file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alice.plugin import AliceError, Found, InputLimits, TooLarge
from alice_plugins.files.manifest import LabelledRows, Row, file_rows, find_manifest, read_manifest, read_records
from alice_plugins.media import AUDIO_SUFFIXES, check_sound


class AudioFolder(LabelledRows):
    """Your audio files with labels: a manifest (:mod:`alice_plugins.files.manifest`: columns ``path``,
    ``labels``, optional ``split`` and ``pair_id``) named by ``labels``. Paths are relative to
    ``root``. Without a ``split`` column, a seeded ``val_fraction`` and ``test_fraction`` of the rows
    become val and test. Every file's header is read when the first split is made: one soundfile cannot open, or
    longer than :class:`alice.plugin.InputLimits` allow, is named with its row before any feature is extracted."""

    name = "audio-folder"
    modality = "audio"
    description = "a folder of audio files (WAV/FLAC/OGG via soundfile) with a CSV or JSON-lines labels file"

    def __init__(
        self,
        root: str,
        labels: str = "labels.csv",
        **split_options: Any,  # vocabulary, seed, val_fraction, test_fraction: LabelledRows._options
    ) -> None:
        self.root = Path(root).expanduser()
        self.labels_file = (self.root / labels) if not Path(labels).is_absolute() else Path(labels)
        if not self.root.is_dir():
            raise AliceError(f"audio-folder: root {self.root} is not a folder")
        if not self.labels_file.is_file():
            raise AliceError(f"audio-folder: labels file {self.labels_file} does not exist")
        self._options(**split_options)
        self.source = self.labels_file
        self._set_rows(file_rows(read_manifest(self.labels_file, "path", self.name), self.root, self.name, "audio"))
        self._checked = False

    def inputs(self, rows: list[Row]) -> list[str]:
        if not self._checked:  # every split's files, when the first split is made: a bad test clip stops a build
            limits = InputLimits()
            for r in self.rows:
                try:
                    check_sound(r.item, limits, f"sound {r.item}")
                except TooLarge as exc:
                    raise TooLarge(f"audio-folder: {r.where}: {exc}") from None
                except ValueError as exc:
                    raise AliceError(f"audio-folder: {r.where}: {exc}; replace the file, or leave it out") from None
            self._checked = True
        return [str(r.item) for r in rows]

    def default_pair_id(self, row: Row) -> str:
        return Path(row.item).stem

    def identity(self) -> dict[str, Any]:
        stat = self.labels_file.stat()
        return {
            "name": self.name,
            "root": str(self.root.resolve()),
            "labels": str(self.labels_file.resolve()),
            "labels_mtime": stat.st_mtime_ns,
            **self.common_identity(),
        }

    @classmethod
    def inspect(cls, path: Path) -> Found | None:
        root, labels = (path.parent, path.name) if path.is_file() else (path, None)
        manifest = find_manifest(root, labels) if root.is_dir() else None
        if manifest is None:
            return None
        record = next(iter(read_records(manifest, cls.name)), ({}, ""))[0]
        if not str(record.get("path", "")).lower().endswith(AUDIO_SUFFIXES):
            return None
        return Found(
            {"root": str(root), "labels": manifest.name},
            cls.modality,
            "logmel",
            note=f"sound files with {manifest.name}",
        )
