"""``scanner-stats``: a fixed-size feature vector from one line-scan reading. Needs no weights.

Per reading ``[channels, ticks]`` (any number of ticks):

1. dark current: subtract each photodiode's 10th percentile (most of a scene is blank);
2. gain: divide by the reading's 99th percentile, so the global gain cancels;
3. start offset and speed: keep the span from the first to the last tick whose
   summed signal exceeds ``threshold`` times its maximum, and resample it to
   ``length`` ticks (linear interpolation);
4. features: the resampled signal (``channels * length``), the magnitudes of
   its first ``fft_bins`` Fourier coefficients per photodiode (shift-invariant),
   and four statistics per photodiode (mean, std, max, fraction above 0.3).

The gain drift within a sweep is left for the encoder to cope with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from alice.plugin import AliceError, Backbone

STATS = 4


class ScannerStats(Backbone):
    name = "scanner-stats"
    modality = "scanner"
    description = (
        "line-scan readings: dark/gain-corrected, span resampled, FFT magnitudes and per-photodiode statistics "
        "(no weights)"
    )
    batch_size = 512

    def __init__(self, channels: int = 8, length: int = 32, fft_bins: int = 8, threshold: float = 0.15) -> None:
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"option channels must be a positive integer, got {channels!r}")
        if not isinstance(length, int) or isinstance(length, bool) or length < 2:
            raise ValueError(f"option length must be an integer of at least 2, got {length!r}")
        if not isinstance(fft_bins, int) or isinstance(fft_bins, bool) or not 0 <= fft_bins <= length // 2 + 1:
            raise ValueError(
                f"option fft_bins must be an integer from 0 to length // 2 + 1 = {length // 2 + 1}, got {fft_bins!r}"
            )
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 < threshold < 1:
            raise ValueError(f"option threshold must be a number between 0 and 1 (exclusive), got {threshold!r}")
        self.channels, self.length, self.fft_bins, self.threshold = channels, length, fft_bins, float(threshold)

    @property
    def feature_dim(self) -> int:
        return self.channels * (self.length + self.fft_bins + STATS)

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channels": self.channels,
            "length": self.length,
            "fft_bins": self.fft_bins,
            "threshold": self.threshold,
            "version": 1,
        }

    def _one(self, reading: Any) -> np.ndarray:
        x = np.asarray(reading, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.channels or x.shape[1] < 2:
            raise AliceError(
                f"backbone {self.name!r} expects readings [channels={self.channels}, ticks>=2], got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise AliceError(f"backbone {self.name!r} was given a reading with NaN or infinite values")
        x = x - np.percentile(x, 10, axis=1, keepdims=True)
        x = x / max(float(np.percentile(x, 99)), 1e-6)
        energy = x.sum(0)
        active = np.nonzero(energy > self.threshold * energy.max())[0] if energy.max() > 0 else np.array([])
        span = x[:, active[0] : active[-1] + 1] if len(active) >= 2 else x
        grid = np.linspace(0, span.shape[1] - 1, self.length)
        ticks = np.arange(span.shape[1])
        resampled = np.stack([np.interp(grid, ticks, c) for c in span])
        spectrum = np.abs(np.fft.rfft(resampled, axis=1))[:, : self.fft_bins] / self.length
        stats = np.stack([span.mean(1), span.std(1), span.max(1), (span > 0.3).mean(1)], axis=1)
        return np.concatenate([resampled.ravel(), spectrum.ravel(), stats.ravel()])

    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._one(r) for r in inputs]).astype(np.float32))

    def preview(self, item: Any) -> np.ndarray:
        """A reading as a picture (what `alice report` shows): a row of pixels per photodiode, darker where brighter."""
        x = np.asarray(item, dtype=np.float64)
        x = (x - x.min()) / max(float(np.ptp(x)), 1e-9)
        rows = np.repeat((255 * (1 - x)).astype(np.uint8), 4, axis=0)  # 4 pixels high per photodiode
        return np.repeat(rows[:, :, None], 3, axis=2)
