"""COCO as ALICE data sets.

Layout (paths relative to ``root``, each overridable by an option)::

    annotations/instances_train2017.json   class presence per image
    annotations/captions_train2017.json    captions (they follow their image)
    train2017/                             the images
    (the same for val2017)

Splits: ``train`` and ``val`` come from train2017, ``val`` being a seeded
``val_fraction`` of its image ids; ``test`` is val2017. Labels are the 80
categories present in an image (any instance annotation). A caption's labels are
its image's. Test items carry their image id as pair id, so evaluation can pair
images and captions; training never sees it.

Bad input is named or counted: a missing or malformed file is an error; an
image listed but absent from the folder, an annotation naming an unknown
category or image, and an empty caption are skipped and reported with counts.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from alice.plugin import PAIRED, SPLITS, AliceError, DataSet, Split, parse_json, warn


@dataclass(frozen=True)
class CocoFiles:
    instances: Path
    captions: Path
    images: Path


@lru_cache(maxsize=8)
def _read(path: str, mtime: float, kind: str):
    """A pycocotools COCO index of one annotation file (cached per path and modification time)."""
    from pycocotools.coco import COCO

    try:
        with open(path, "rb") as f:
            data = parse_json(f.read(), f"COCO {kind} file {path}")
    except OSError as exc:
        raise AliceError(f"cannot read COCO {kind} file {path}: {exc.strerror}") from None
    need = ("images", "annotations") + (("categories",) if kind == "instances" else ())
    missing = [k for k in need if not isinstance(data, dict) or k not in data]
    if missing:
        raise AliceError(f"COCO {kind} file {path} is not in COCO format: no {', '.join(repr(k) for k in missing)}")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        try:
            coco.createIndex()
        except (KeyError, TypeError) as exc:
            raise AliceError(f"COCO {kind} file {path} is malformed: an entry lacks {exc}") from None
    return coco


def _part(split: str) -> str:
    """Which annotation files a split reads: val2017's for test, train2017's for train, val and paired."""
    return "test" if split == "test" else "train"


def _pair_ids(split: str, ids: list) -> list[str] | None:
    """An item's image id names its scene; only the splits evaluation and paired fine-tuning read carry it."""
    return [str(i) for i in ids] if split in ("test", PAIRED) else None


class _Coco(DataSet):
    def __init__(
        self,
        root: str | None = None,
        train_split: str = "train2017",
        test_split: str = "val2017",
        val_fraction: float = 0.1,
        seed: int = 0,
        limit: int = 0,
        train_instances: str | None = None,
        train_captions: str | None = None,
        train_images: str | None = None,
        test_instances: str | None = None,
        test_captions: str | None = None,
        test_images: str | None = None,
    ) -> None:
        if root is None and not (train_instances and test_instances):
            raise ValueError("needs the COCO folder: set option root (for example --set data.root=/data/coco)")
        if not 0 < val_fraction < 1:
            raise ValueError(f"option val_fraction must be between 0 and 1, got {val_fraction!r}")
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"option limit must be a non-negative integer, got {limit!r}")
        base = Path(root).expanduser() if root else Path(".")
        ann = base / "annotations"
        self.files = {
            "train": CocoFiles(
                Path(train_instances or ann / f"instances_{train_split}.json"),
                Path(train_captions or ann / f"captions_{train_split}.json"),
                Path(train_images or base / train_split),
            ),
            "test": CocoFiles(
                Path(test_instances or ann / f"instances_{test_split}.json"),
                Path(test_captions or ann / f"captions_{test_split}.json"),
                Path(test_images or base / test_split),
            ),
        }
        self.val_fraction, self.seed, self.limit = val_fraction, seed, limit

    def _coco(self, part: str, kind: str):
        path = getattr(self.files[part], kind)
        if not path.is_file():
            raise AliceError(f"COCO {kind} file {path} does not exist")
        return _read(str(path.resolve()), path.stat().st_mtime, kind)

    @property
    def vocabulary(self) -> list[str]:
        cats = self._coco("train", "instances").dataset["categories"]
        return [c["name"] for c in sorted(cats, key=lambda c: c["id"])]

    def identity(self) -> dict[str, Any]:
        files = {}
        for part, f in self.files.items():
            for kind in ("instances", "captions"):
                p = getattr(f, kind)
                files[f"{part}_{kind}"] = [str(p.resolve()), p.stat().st_size if p.is_file() else None]
            files[f"{part}_images"] = str(f.images.resolve())
        return {
            "name": self.name,
            "files": files,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "limit": self.limit,
        }

    def _image_ids(self, split: str) -> list[int]:
        if split not in (*SPLITS, PAIRED):
            raise ValueError(f"unknown split {split!r}")
        coco = self._coco(_part(split), "instances")
        if split == PAIRED:  # the training images with their captions
            split = "train"
        ids = sorted(coco.imgs)
        if split != "test":
            order = np.random.default_rng(self.seed).permutation(len(ids))
            n_val = max(1, int(round(self.val_fraction * len(ids))))
            chosen = order[:n_val] if split == "val" else order[n_val:]
            ids = sorted(ids[i] for i in chosen)
        return ids[: self.limit] if self.limit else ids

    def _labels(self, part: str, image_ids: list[int]) -> np.ndarray:
        coco = self._coco(part, "instances")
        cat_index = {c["id"]: i for i, c in enumerate(sorted(coco.dataset["categories"], key=lambda c: c["id"]))}
        y = np.zeros((len(image_ids), len(cat_index)), dtype=np.float32)
        unknown = 0
        row = {img: r for r, img in enumerate(image_ids)}
        for img in image_ids:
            for ann in coco.imgToAnns.get(img, []):
                c = cat_index.get(ann.get("category_id"))
                if c is None:
                    unknown += 1
                else:
                    y[row[img], c] = 1.0
        orphans = sum(1 for a in coco.dataset["annotations"] if a.get("image_id") not in coco.imgs)
        if unknown or orphans:
            warn(
                f"{self.files[part].instances.name}: skipped {unknown} annotation(s) naming an unknown category"
                f" and {orphans} naming an unknown image"
            )
        return y

    def _present(self, part: str, image_ids: list[int]) -> list[int]:
        """Image ids whose file exists; the others are counted and reported."""
        coco, folder = self._coco(part, "instances"), self.files[part].images
        if not folder.is_dir():
            raise AliceError(f"COCO image folder {folder} does not exist")
        present = [i for i in image_ids if (folder / coco.imgs[i]["file_name"]).is_file()]
        if len(present) < len(image_ids):
            warn(
                f"skipped {len(image_ids) - len(present)} image(s) listed in {self.files[part].instances.name} but "
                f"absent from {folder}"
            )
        if not present:
            raise AliceError(f"none of the images listed in {self.files[part].instances} is in {folder}")
        return present


class CocoImage(_Coco):
    name = "coco-image"
    modality = "image"
    description = "COCO images (pycocotools), 80 object classes; options root, val_fraction, seed, limit"

    def split(self, name: str) -> Split:
        part = _part(name)
        ids = self._present(part, self._image_ids(name))
        coco = self._coco(part, "instances")
        paths = [str(self.files[part].images / coco.imgs[i]["file_name"]) for i in ids]
        return Split(paths, self._labels(part, ids), _pair_ids(name, ids))


class CocoText(_Coco):
    name = "coco-text"
    modality = "text"
    description = "COCO captions (pycocotools), labelled with their image's 80 object classes"

    def split(self, name: str) -> Split:
        part = _part(name)
        ids = self._image_ids(name)
        labels = self._labels(part, ids)
        caps = self._coco(part, "captions")
        texts, rows, pairs, empty = [], [], [], 0
        for r, img in enumerate(ids):
            for ann in caps.imgToAnns.get(img, []):
                text = str(ann.get("caption") or "").strip()
                if not text:
                    empty += 1
                    continue
                texts.append(text)
                rows.append(r)
                pairs.append(str(img))
        if empty:
            warn(f"{self.files[part].captions.name}: skipped {empty} empty caption(s)")
        if not texts:
            raise AliceError(f"COCO captions file {self.files[part].captions} has no caption for the {name} split")
        return Split(texts, labels[rows], _pair_ids(name, pairs))
