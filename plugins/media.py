"""Images and sounds as the built-in backbones take them; shared by every built-in plugin (like :mod:`.hub`).

An image is an array (grey or RGB, [0, 1] floats or uint8), a PIL image or a file path; a sound is a
:class:`Waveform`, a file path (read with soundfile, which needs no system libraries for WAV, FLAC and
OGG) or a ``(samples, sample_rate)`` tuple. A file is read header first and refused over
:class:`alice.plugin.InputLimits` (its pixels; its duration and samples) before it is decoded.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

from alice.plugin import AliceError, InputLimits, TooLarge

#: a file to read: its path, or its bytes as a binary stream (a data set's cell)
Source = Union[str, Path, BinaryIO]

#: image files Pillow reads
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: sound files soundfile reads without system libraries (MP3 with libsndfile 1.1 and newer)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _pil_array(im: Any, owned: bool = False) -> np.ndarray:
    """An array of a PIL image: grey [H, W] or RGB [H, W, 3] uint8, or float32 in [0, 1] for 16-bit and float
    images (which Pillow's own conversion to RGB would clip at 255). ``owned``: the image was opened here, so it is
    turned upright in place rather than copied."""
    from PIL import ImageOps

    if owned:
        ImageOps.exif_transpose(im, in_place=True)  # a phone photo stored sideways is shown upright
    else:
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(im, dtype=np.float32) / 65535.0
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)
    if im.mode == "L":  # grey as it is: its RGB is the same value three times, made when needed
        return np.asarray(im)
    return np.asarray(im.convert("RGB"))


def _named(source: Source, name: str | None) -> str:
    """How an error names a file: ``name``, its path, or a stream's own name."""
    if name or isinstance(source, (str, Path)):
        return name or str(source)
    return str(getattr(source, "name", None) or "(a stream)")


@contextmanager
def open_image(source: Source, limits: InputLimits, what: str) -> Iterator[Any]:
    """An image file opened (its header read, no pixel decoded) and refused with :class:`TooLarge` when it has more
    pixels than ``limits`` allow; ``what`` names it in that line ("image photos/a.png")."""
    from PIL import Image

    with warnings.catch_warnings():  # Pillow warns past 89 megapixels; the cap speaks instead
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(source)
        except Image.DecompressionBombError:  # past twice Pillow's own limit: refused from the header too
            raise TooLarge(
                f"{what} has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, more than the {limits.max_pixels:,} "
                "allowed; make it smaller (the backbones see a few hundred pixels a side)"
            ) from None
        with im:
            limits.check_pixels(*im.size, what)
            yield im


def read_image(source: Source, limits: InputLimits | None = None, name: str | None = None) -> np.ndarray:
    """An image file decoded as :func:`_pil_array` gives it, refused before decoding when its header says it has
    more pixels than ``limits`` allow (:class:`TooLarge`); ``name`` is how an error names it."""
    limits, what = limits or InputLimits(), f"image {_named(source, name)}"
    if isinstance(source, (str, Path)) and not Path(source).is_file():  # a folder or a pipe would never answer
        raise AliceError(f"cannot read {what}: no such file; give the path of an image file")
    try:
        with open_image(source, limits, what) as im:
            return _pil_array(im, owned=True)
    except TooLarge:
        raise
    except Exception as exc:  # Pillow raises many kinds for bytes that are not what their ending says
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AliceError(f"cannot read {what}: {text}; replace the file or leave it out") from None


def _decoded(image: Any, limits: InputLimits | None = None) -> np.ndarray:
    """An image as an array, as it comes: a file decoded (within ``limits``), a PIL image converted, an array."""
    if isinstance(image, (str, Path)):
        return read_image(image, limits)
    if not isinstance(image, np.ndarray):  # a PIL image, or anything array-like
        return _pil_array(image) if hasattr(image, "convert") else np.asarray(image)
    return image


def _three_channels(arr: np.ndarray) -> np.ndarray:
    """[H, W, 3] from a grey [H, W], [H, W, 1], RGB or RGBA array (alpha left out)."""
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise AliceError(f"an image must be [H, W] or [H, W, 3], got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr[:, :, :3]


def rgb_array(image: Any, limits: InputLimits | None = None) -> np.ndarray:
    """[H, W, 3] as decoded, not yet scaled: uint8, or float32 in [0, 1] (an array, a PIL image or a path)."""
    arr = _three_channels(np.asarray(_decoded(image, limits)))
    return arr if arr.dtype == np.uint8 else arr.astype(np.float32, copy=False)


def unit_float(arr: np.ndarray) -> np.ndarray:
    """An image array as float32 in [0, 1], contiguous: uint8 scaled by 1/255, floats as they are."""
    if arr.dtype == np.uint8:
        scaled = arr.astype(np.float32, order="C")  # a contiguous copy, scaled in place: one float copy, not two
        scaled /= 255.0
        return scaled
    return np.ascontiguousarray(arr, dtype=np.float32)


def to_rgb_array(image: Any, limits: InputLimits | None = None) -> np.ndarray:
    """float32 [H, W, 3] in [0, 1] from an array (grey or RGB, [0,1] floats or uint8), a PIL image or a path."""
    return unit_float(rgb_array(image, limits))


@dataclass(frozen=True)
class Waveform:
    samples: np.ndarray  # [n] float32 in [-1, 1]
    sample_rate: int


def read_audio(source: Source, limits: InputLimits | None = None, name: str | None = None) -> Waveform:
    """Read a sound file (a path or a binary stream) as mono float32, refused before decoding when its header says
    it is longer or larger than ``limits`` allow (:class:`TooLarge`); a clear ValueError for a missing or unreadable
    file. ``name`` is how an error names it."""
    import soundfile

    limits, what = limits or InputLimits(), _named(source, name)
    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise ValueError(f"audio file {what} does not exist")
        source = str(source)
    try:
        with soundfile.SoundFile(source) as f:
            limits.check_sound(f.frames, f.samplerate, f.channels, f"sound {what}")
            samples, rate = f.read(dtype="float32", always_2d=True), f.samplerate
    except TooLarge:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError with a message
        raise ValueError(f"cannot read audio file {what}: {str(exc).splitlines()[0]}") from None
    if samples.shape[0] == 0:
        raise ValueError(f"audio file {what} is empty")
    return Waveform(samples.mean(axis=1), int(rate))


def check_sound(source: Source, limits: InputLimits, what: str) -> None:
    """Refuse a sound file whose header says it is longer or larger than ``limits`` allow (:class:`TooLarge`), or
    that soundfile cannot open (ValueError), without decoding it; ``what`` names it ("sound clips/a.wav")."""
    import soundfile

    try:
        with soundfile.SoundFile(str(source) if isinstance(source, Path) else source) as f:
            frames, rate, channels = f.frames, f.samplerate, f.channels
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError with a message
        raise ValueError(f"cannot read {what}: {str(exc).splitlines()[0]}") from None
    limits.check_sound(frames, rate, channels, what)


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


def read_media(path: Path, kind: str, limits: InputLimits) -> Any:
    """A file decoded as the built-in backbones of ``kind`` (image, audio) take it (:meth:`Backbone.read_file`);
    a text backbone's input is the path's text."""
    if kind == "image":
        return read_image(path, limits)
    if kind == "audio":
        try:
            return read_audio(path, limits)
        except ValueError as exc:
            raise AliceError(str(exc)) from None
    return str(path)


def image_preview(item: Any, limits: InputLimits | None = None) -> np.ndarray:
    """An image as a person sees it: RGB uint8 [H, W, 3]."""
    arr = rgb_array(item, limits)
    if arr.dtype == np.uint8:  # the very pixels the round trip through [0, 1] floats gives, without its copies
        return np.ascontiguousarray(arr)
    return (unit_float(arr) * 255).round().astype(np.uint8)


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
