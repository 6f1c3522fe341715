"""Images as the image backbones take them: arrays, PIL images or file paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from alice.plugin import AliceError

#: image files Pillow reads
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def to_rgb_array(image: Any) -> np.ndarray:
    """float32 [H, W, 3] in [0, 1] from an array (grey or RGB, [0,1] floats or uint8), a PIL image or a path."""
    if isinstance(image, (str, Path)):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow comes with the project
            raise AliceError("reading image files needs Pillow (pip install pillow)") from None
        try:
            with Image.open(image) as im:
                image = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise AliceError(f"cannot read image {image}: {exc}") from None
    elif not isinstance(image, np.ndarray):  # a PIL image, or anything array-like
        if hasattr(image, "convert"):
            image = image.convert("RGB")
        image = np.asarray(image)
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise AliceError(f"an image must be [H, W] or [H, W, 3], got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr[:, :, :3]
