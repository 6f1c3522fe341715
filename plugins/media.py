"""Images and sounds as the built-in backbones take them; shared by every built-in plugin (like :mod:`.hub`).

An image is an array (grey or RGB, [0, 1] floats or uint8), a PIL image or a file path; a sound is a
:class:`Waveform`, a file path (read with soundfile, which needs no system libraries for WAV, FLAC and
OGG) or a ``(samples, sample_rate)`` tuple.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alice.plugin import AliceError

#: image files Pillow reads
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: sound files soundfile reads without system libraries (MP3 with libsndfile 1.1 and newer)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _pil_array(im: Any) -> np.ndarray:
    """An RGB array of a PIL image: uint8, or float32 in [0, 1] for 16-bit and float images (which
    Pillow's own conversion to RGB would clip at 255)."""
    from PIL import ImageOps

    im = ImageOps.exif_transpose(im)  # a phone photo stored sideways is shown upright
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(im, dtype=np.float32) / 65535.0
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)
    return np.asarray(im.convert("RGB"))


def to_rgb_array(image: Any) -> np.ndarray:
    """float32 [H, W, 3] in [0, 1] from an array (grey or RGB, [0,1] floats or uint8), a PIL image or a path."""
    if isinstance(image, (str, Path)):
        from PIL import Image

        try:
            with Image.open(image) as im:
                image = _pil_array(im)
        except (OSError, ValueError) as exc:
            raise AliceError(f"cannot read image {image}: {exc}; replace the file or leave it out") from None
    elif not isinstance(image, np.ndarray):  # a PIL image, or anything array-like
        image = _pil_array(image) if hasattr(image, "convert") else np.asarray(image)
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


@dataclass(frozen=True)
class Waveform:
    samples: np.ndarray  # [n] float32 in [-1, 1]
    sample_rate: int


def read_audio(path: str | Path) -> Waveform:
    """Read a file as mono float32; a clear ValueError for a missing or unreadable file."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file {path} does not exist")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError with a message
        raise ValueError(f"cannot read audio file {path}: {str(exc).splitlines()[0]}") from None
    if samples.shape[0] == 0:
        raise ValueError(f"audio file {path} is empty")
    return Waveform(samples.mean(axis=1), int(rate))


def as_waveform(item: Any) -> Waveform:
    if isinstance(item, Waveform):
        return item
    if isinstance(item, (str, Path)):
        return read_audio(item)
    if isinstance(item, dict) and "array" in item and "sampling_rate" in item:  # a decoded Hugging Face Audio cell
        item = (item["array"], item["sampling_rate"])
    if isinstance(item, tuple) and len(item) == 2:
        samples, rate = item
        samples = np.asarray(samples)
        if np.issubdtype(samples.dtype, np.integer):  # PCM integers: scale to [-1, 1]
            samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
        samples = samples.astype(np.float32)
        if samples.ndim == 2:
            samples = samples.mean(axis=1) if samples.shape[1] <= 8 else samples.mean(axis=0)
        return Waveform(samples, int(rate))
    raise ValueError(
        f"an audio input must be a Waveform, a file path or (samples, sample_rate), got {type(item).__name__}"
    )


def resample(wave: Waveform, rate: int) -> np.ndarray:
    """The samples at ``rate`` Hz (polyphase filtering from scipy, which scikit-learn already needs)."""
    if wave.sample_rate == rate:
        return wave.samples
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(wave.sample_rate, rate)
    return resample_poly(wave.samples, rate // g, wave.sample_rate // g).astype(np.float32)


def waveforms(inputs: Any, rate: int) -> list[np.ndarray]:
    """Each input as float32 samples at ``rate`` Hz; a one-line error for an unreadable, empty or NaN clip."""
    out = []
    for item in inputs:
        try:
            samples = np.ascontiguousarray(resample(as_waveform(item), rate), dtype=np.float32)
        except ValueError as exc:
            raise AliceError(str(exc)) from None
        if samples.size == 0 or not np.isfinite(samples).all():
            raise AliceError("an audio input is empty or holds NaN/inf samples")
        out.append(samples)
    return out


def image_preview(item: Any) -> np.ndarray:
    """An image as a person sees it: RGB uint8 [H, W, 3]."""
    return (to_rgb_array(item) * 255).round().astype(np.uint8)


def sound_preview(item: Any) -> tuple[np.ndarray, int]:
    wave = as_waveform(item)
    return wave.samples, wave.sample_rate


# ---------------------------------------------------------------------------- what a data set's inputs are
# (asked by the backbones' ``candidates``, on a few inputs: cheap, no model)


def image_side(sample: Any) -> int | None:
    """The longer side of the first input read as an image, or None when the inputs are no images."""
    if not len(sample) or isinstance(sample[0], (tuple, dict)):
        return None
    try:
        return int(max(to_rgb_array(sample[0]).shape[:2]))
    except (AliceError, ValueError, TypeError):
        return None


def are_sounds(sample: Any) -> bool:
    """Whether the first input reads as a sound (a sound file, a waveform, ``(samples, rate)``)."""
    if not len(sample):
        return False
    item = sample[0]
    if isinstance(item, (str, Path)) and not str(item).lower().endswith(AUDIO_SUFFIXES):
        return False
    try:
        return as_waveform(item).samples.size > 0
    except (ValueError, TypeError):
        return False


def are_texts(sample: Any) -> bool:
    """Whether the inputs are strings of text (not paths of files some other backbone reads)."""
    return bool(len(sample)) and all(
        isinstance(t, str) and not t.lower().endswith(IMAGE_SUFFIXES + AUDIO_SUFFIXES) for t in sample
    )
