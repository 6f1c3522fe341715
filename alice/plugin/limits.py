"""How large one image or sound may be before it is decoded: the caps every reader of media files applies.

A PNG of a few hundred kilobytes can claim 20,000 x 20,000 pixels (1.2 GB as RGB bytes, 4.8 GB as
the float32 array the image backbones take); a FLAC of a few kilobytes can hold hours of silence.
Every built-in reader of image and sound files reads the header first (the pixel count, or the
duration, sample rate and channels) and refuses a file over these caps with one line naming it,
before any pixel or sample is decoded: the server (``alice serve --max-pixels/--max-seconds``), the
file data sets (``image-folder``, ``audio-folder``, ``hf-dataset``) and so ``alice recipe init``,
and the backbones reading a file path. The backbones never look at more than a few hundred pixels
a side or a minute of sound: the defaults leave a phone photo (48 megapixels) and a long speech
clip (a minute) room, and keep decoding one of them under a gigabyte.
"""

from __future__ import annotations

from dataclasses import dataclass

from alice.errors import AliceError

#: the samples per second (all channels) of the densest sound a reader takes whole: 96 kHz stereo
SAMPLES_PER_SECOND = 96_000 * 2


class TooLarge(AliceError):
    """An image or sound over :class:`InputLimits` (the server answers it with 413)."""


@dataclass(frozen=True)
class InputLimits:
    """The largest image and sound a reader decodes; ``alice serve`` takes its defaults from here."""

    #: width x height of one image (a 48-megapixel phone photo is 8000 x 6000)
    max_pixels: int = 50_000_000
    #: the duration of one sound, in seconds (wav2vec2 attends over every 20 ms frame of a clip at once); and at
    #: most as many samples, all channels together, as that long in 96 kHz stereo
    max_seconds: float = 60.0

    @property
    def max_samples(self) -> int:
        """The most samples of one sound, all channels together: ``max_seconds`` of 96 kHz stereo (a file at a
        higher rate or with more channels is refused sooner)."""
        return int(self.max_seconds * SAMPLES_PER_SECOND)

    def check_pixels(self, width: int, height: int, what: str, hint: str = "") -> None:
        """Refuse an image of more than ``max_pixels`` pixels, naming it (``what``) and how to get past (``hint``)."""
        if width * height > self.max_pixels:
            raise TooLarge(
                f"{what} is {width:,} x {height:,} pixels, more than the {self.max_pixels:,} allowed"
                f"{hint or '; make it smaller (the backbones see a few hundred pixels a side)'}"
            )

    def check_sound(self, frames: int, rate: int, channels: int, what: str, hint: str = "") -> None:
        """Refuse a sound longer than ``max_seconds`` or of more than ``max_samples`` samples, naming it."""
        seconds = frames / rate if rate > 0 else float("inf")
        fix = hint or "; cut it into shorter clips"
        if seconds > self.max_seconds:
            raise TooLarge(f"{what} lasts {seconds:,.1f} s, more than the {self.max_seconds:g} s allowed{fix}")
        if frames * channels > self.max_samples:
            raise TooLarge(
                f"{what} holds {frames * channels:,} samples ({channels} channels at {rate:,} Hz), more than the "
                f"{self.max_samples:,} allowed{fix}"
            )
