"""Audio as the audio backbones take it: a mono float32 waveform and its sample rate.

A backbone input is a :class:`Waveform`, a path to an audio file (read with
soundfile, which needs no system libraries for WAV/FLAC/OGG), or a
``(samples, sample_rate)`` tuple.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: sound files soundfile reads without system libraries (MP3 with libsndfile 1.1 and newer)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


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
