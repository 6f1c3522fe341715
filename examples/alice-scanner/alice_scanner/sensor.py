"""A simulated line-scan sensor: a bar of photodiodes swept across a 20x20 scene.

Only numpy. The bar stands upright (one photodiode per band of rows, each
with a Gaussian aperture) and moves left to right at a slightly uneven speed,
one sample per clock tick. What the sensor records is not the scene but a
multichannel time series ``[channels, ticks]`` with everything a cheap sensor
adds:

* a random start offset: the bar starts somewhere 0..``MAX_OFFSET`` px before
  the scene's left edge, so the scene begins at an unknown tick;
* a random speed (``SPEED`` px per tick), so the number of ticks varies;
* a dark current per photodiode (an offset), a gain per photodiode, a global
  gain, and a gain that drifts linearly over the sweep;
* Gaussian read noise.
"""

from __future__ import annotations

import numpy as np

CHANNELS = 8  # photodiodes on the bar
CANVAS = 20  # the digit scenes are 20x20 (alice_plugins.digits.public.CANVAS)
APERTURE_ROWS = 1.2  # Gaussian sigma of each photodiode across rows, in px
APERTURE_COLS = 0.6  # ... and along the sweep (motion blur), in px
SPEED = (0.35, 0.45)  # px per tick
MAX_OFFSET = 6.0  # px of dark before the scene
TAIL = 2.0  # px swept after the scene's right edge
GAIN = (0.7, 1.3)
DRIFT = (-0.2, 0.2)  # relative gain change from the first tick to the last
DARK = (0.0, 0.1)


def _row_weights(channels: int) -> np.ndarray:
    """[channels, CANVAS]: how much each photodiode sees of each row."""
    centres = (np.arange(channels) + 0.5) * CANVAS / channels
    rows = np.arange(CANVAS) + 0.5
    w = np.exp(-0.5 * ((rows[None, :] - centres[:, None]) / APERTURE_ROWS) ** 2)
    return w / w.sum(1, keepdims=True)


def sweep(
    images: np.ndarray, gen: np.random.Generator, noise: float = 0.03, channels: int = CHANNELS
) -> list[np.ndarray]:
    """One reading per image: float32 ``[channels, ticks]``, ticks between about 50 and 80."""
    rows = _row_weights(channels)
    cols = np.arange(CANVAS) + 0.5
    out = []
    for image in images:
        profile = rows @ image  # [channels, CANVAS]: each photodiode's view of each column
        speed = gen.uniform(*SPEED)
        offset = gen.uniform(0.0, MAX_OFFSET)
        ticks = int(np.ceil((CANVAS + offset + TAIL) / speed))
        x = -offset + speed * np.arange(ticks)  # the bar's position at each tick
        kernel = np.exp(-0.5 * ((x[:, None] - cols[None, :]) / APERTURE_COLS) ** 2) / (
            np.sqrt(2 * np.pi) * APERTURE_COLS
        )
        signal = profile @ kernel.T  # [channels, ticks]
        gain = gen.uniform(*GAIN) * (1.0 + 0.05 * gen.standard_normal(channels))[:, None]
        drift = 1.0 + gen.uniform(*DRIFT) * np.linspace(0.0, 1.0, ticks)[None, :]
        dark = gen.uniform(*DARK, size=(channels, 1))
        reading = dark + gain * drift * signal + noise * gen.standard_normal((channels, ticks))
        out.append(reading.astype(np.float32))
    return out
