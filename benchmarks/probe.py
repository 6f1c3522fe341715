"""The two image folders `alice recipe init`'s backbone probe is shown on in docs/your-data.md.

    python benchmarks/probe.py --work probe-data     # writes probe-data/coco-photos and probe-data/digits
    alice recipe init probe-data/coco-photos --out coco-photos.toml
    alice recipe init probe-data/digits --out digits.toml

``coco-photos``: the 19 real photos of the COCO-format sample (``alice coco sample``), copied into an
``image-folder`` with a ``labels.csv`` of their COCO categories (a photo with none is left out), the
split column empty so that the image-folder draws its splits (most of the 15 photos train).
``digits``: the built-in digit scenes at ``benchmarks/parity.py --small``'s sizes, written as PNG files
the way ``parity.py`` writes them.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path


def _parity():
    spec = importlib.util.spec_from_file_location("parity", Path(__file__).with_name("parity.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder to write the two image folders into")
    args = parser.parse_args()
    from alice.data.loading import make_dataset
    from alice.data.recipes import DataSpec
    from alice_plugins.coco.cli import write_sample

    parity = _parity()
    start = time.perf_counter()
    sample = write_sample(args.work / "coco-sample")
    coco = make_dataset(DataSpec("coco-image", {"root": str(sample), "val_fraction": 0.2}))
    parity.write_images(coco, args.work / "coco-photos", splits=False)  # 15 photos: image-folder draws 10 % val, test
    train, val, test = parity.SMALL["image"]
    digits = make_dataset(DataSpec("digits-image", {"train": train, "val": val, "test": test}))
    parity.write_images(digits, args.work / "digits")
    print(f"wrote {args.work / 'coco-photos'} and {args.work / 'digits'} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
