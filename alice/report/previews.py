"""Showing one input to a person: the picture, the sound or the text its backbone says it is.

A backbone turns an input into a *preview* (:data:`alice.plugin.Preview`): a
string, an RGB ``[H, W, 3]`` uint8 array, or a sound ``(samples, rate)``. This
module writes a preview as a small PNG (and a WAV for sound) and gives its
HTML; it never looks at what kind of modality the input came from. The server
(:mod:`alice.serve`) sends the same PNG and WAV bytes.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

THUMBNAIL = 96


def is_image(preview: Any) -> bool:
    return isinstance(preview, np.ndarray) and preview.ndim == 3 and preview.shape[2] == 3


def is_sound(preview: Any) -> bool:
    return (
        isinstance(preview, tuple)
        and len(preview) == 2
        and np.ndim(preview[0]) == 1
        and isinstance(preview[1], (int, np.integer))
    )


def kind(preview: Any) -> str:
    """``image``, ``sound`` or ``text``: how a preview is shown."""
    return "image" if is_image(preview) else "sound" if is_sound(preview) else "text"


def thumbnail_png(rgb: np.ndarray, size: int = THUMBNAIL) -> bytes:
    """A PNG at most ``size`` pixels wide and high; small images (digits are 20 px) are scaled up without blurring."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    if max(image.size) > size:
        image.thumbnail((size, size))
    elif max(image.size) < size:
        scale = size // max(image.size)
        image = image.resize((image.size[0] * scale, image.size[1] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sound_wav(samples: np.ndarray, rate: int) -> bytes:
    """The sound as WAV bytes (16-bit PCM)."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(samples, dtype=np.float32), int(rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def save_thumbnail(rgb: np.ndarray, path: Path, size: int = THUMBNAIL) -> None:
    """:func:`thumbnail_png`, written to ``path``."""
    Path(path).write_bytes(thumbnail_png(rgb, size))


def save_sound(samples: np.ndarray, rate: int, png: Path, wav: Path) -> None:
    """The sound as a WAV file and its waveform as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = np.asarray(samples, dtype=np.float32)
    Path(wav).write_bytes(sound_wav(samples, rate))
    fig, ax = plt.subplots(figsize=(1.6, 0.8), dpi=80)
    ax.plot(np.arange(len(samples)) / rate, samples, linewidth=0.5, color="#345")
    ax.set_axis_off()
    fig.savefig(png, bbox_inches="tight", pad_inches=0.02)
    plt.close(fig)


class Gallery:
    """Writes each shown input once (PNG, or PNG + WAV) under ``items/`` and gives its HTML figure.

    ``preview(modality, item)`` turns an input into its preview (:meth:`alice.Space.preview`).
    """

    def __init__(self, folder: Path, preview: Callable[[str, Any], Any]) -> None:
        self.folder, self.preview = folder, preview
        (folder / "items").mkdir(parents=True, exist_ok=True)
        self._done: dict[tuple[str, int], str] = {}

    def html(self, modality: str, row: int, item: Any, caption: str) -> str:
        key = (modality, row)
        if key not in self._done:
            preview = self.preview(modality, item)
            stem = f"items/{modality}-{row}"
            if is_image(preview):
                save_thumbnail(preview, self.folder / f"{stem}.png")
                body = f'<img src="{stem}.png" alt="{html.escape(modality)} item {row}">'
            elif is_sound(preview):
                save_sound(preview[0], preview[1], self.folder / f"{stem}.png", self.folder / f"{stem}.wav")
                body = (
                    f'<img src="{stem}.png" alt="waveform of {html.escape(modality)} item {row}">'
                    f'<audio controls src="{stem}.wav"></audio>'
                )
            else:
                # escaped, its line breaks kept: the page's style shows p.text with white-space: pre-wrap
                body = f'<p class="text">{html.escape(str(preview))}</p>'
            self._done[key] = body
        return f"<figure>{self._done[key]}<figcaption>{html.escape(caption)}</figcaption></figure>"
