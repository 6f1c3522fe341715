"""``alice coco sample``: write the small real COCO-format sample data set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer

app = typer.Typer(help="COCO helpers.", no_args_is_help=True)

SAMPLE = Path(__file__).parent / "sample"


@app.command("sample")
def sample(
    out: Path = typer.Option(
        Path("data/coco-sample"), "--out", "-o", help="Folder to write the sample COCO layout into."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder."),
) -> None:
    """Write 19 real photos (from scikit-image, some cropped or mirrored) with hand-made COCO annotations."""
    from alice.plugin import AliceError, info

    if out.exists() and not overwrite:
        raise AliceError(f"{out} already exists; pass --overwrite to replace it")
    write_sample(out)
    info(f"wrote a COCO-format sample to {out} (annotations/, train2017/, val2017/)")


def write_sample(out: Path) -> Path:
    """Materialise the sample: images from skimage.data, annotation files as shipped."""
    import numpy as np
    from PIL import Image

    from alice.plugin import AliceError

    try:
        import skimage
    except ImportError:
        raise AliceError("the COCO sample needs scikit-image (pip install scikit-image)") from None
    source = Path(skimage.__file__).parent / "data"
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        for kind in ("instances", "captions"):
            shutil.copy(SAMPLE / f"{kind}_{split}.json", tmp / "annotations" / f"{kind}_{split}.json")
        (tmp / split).mkdir()
        for img in json.loads((SAMPLE / f"instances_{split}.json").read_text())["images"]:
            im = Image.open(source / img["source"].split("/", 1)[1]).convert("RGB")
            if img["crop"]:
                im = im.crop(tuple(img["crop"]))
            if img["mirrored"]:
                im = Image.fromarray(np.ascontiguousarray(np.asarray(im)[:, ::-1]))
            im.save(tmp / split / img["file_name"])
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
