"""Audio backbones: log-mel statistics (torchaudio, or torch.stft plus transformers' mel filters) and
wav2vec2 (transformers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice.plugin import Backbone, InputLimits
from alice_plugins.hub import HFBackbone
from alice_plugins.media import AUDIO_SUFFIXES, Waveform, are_sounds, read_media, sound_preview, waveforms


def torchaudio_available() -> bool:
    try:
        import torchaudio  # noqa: F401
    except Exception:  # ImportError, or an ABI mismatch with the installed torch (OSError, RuntimeError)
        return False
    return True


class AudioBackbone(Backbone):
    """What every audio backbone reads: waveforms, ``(samples, rate)`` or sound files; shown as the sound."""

    modality = "audio"
    also_reads = ("speech",)
    file_suffixes = AUDIO_SUFFIXES

    def read_file(self, path: Path, limits: InputLimits) -> Waveform:
        return read_media(path, "audio", limits)

    def preview(self, item: Any) -> tuple[np.ndarray, int]:
        return sound_preview(item)


class LogMelBackbone(AudioBackbone):
    """Log-mel spectrogram statistics: per mel band the mean and standard deviation over the whole
    clip, and the mean over ``segments`` equal stretches of time (so word order leaves a trace).
    ``n_mels * (2 + segments)`` features.

    ``impl``: "torchaudio" (``torchaudio.transforms.MelSpectrogram``, extra ``alice[audio]``),
    "torch" (``torch.stft`` with ``transformers.audio_utils.mel_filter_bank``, no torchaudio), or
    "auto" (torchaudio when it imports). Both compute the same HTK-scale power mel spectrogram, so
    features do not depend on which one ran; the cache key leaves ``impl`` out for that reason.
    """

    name = "logmel"
    description = "log-mel statistics, 16 kHz (torchaudio when installed, else torch.stft + transformers mel filters)"
    batch_size = 64

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 40,
        n_fft: int = 400,
        hop_length: int = 160,
        segments: int = 8,
        impl: str = "auto",
    ) -> None:
        for key, value in (
            ("sample_rate", sample_rate),
            ("n_mels", n_mels),
            ("n_fft", n_fft),
            ("hop_length", hop_length),
            ("segments", segments),
        ):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"option {key} must be a positive integer, got {value!r}")
        if impl not in ("auto", "torchaudio", "torch"):
            raise ValueError(f"option impl must be 'auto', 'torchaudio' or 'torch', got {impl!r}")
        if impl == "torchaudio" and not torchaudio_available():
            raise ValueError(
                "option impl='torchaudio' but torchaudio is not installed (pip install 'alice-align[audio]')"
            )
        self.sample_rate, self.n_mels, self.n_fft, self.hop_length, self.segments = (
            sample_rate,
            n_mels,
            n_fft,
            hop_length,
            segments,
        )
        self.impl = ("torchaudio" if torchaudio_available() else "torch") if impl == "auto" else impl
        self._mel = None

    @property
    def feature_dim(self) -> int:
        return self.n_mels * (2 + self.segments)

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Any sounds: no weights to install."""
        reads = modality == cls.modality or modality in cls.also_reads
        return [{}] if reads and are_sounds(sample) else []

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "segments": self.segments,
        }

    def mel_spectrogram(self, samples: torch.Tensor) -> torch.Tensor:
        """[n_mels, frames] power mel spectrogram of one mono clip."""
        if self.impl == "torchaudio":
            if self._mel is None:
                import torchaudio

                self._mel = torchaudio.transforms.MelSpectrogram(
                    sample_rate=self.sample_rate,
                    n_fft=self.n_fft,
                    hop_length=self.hop_length,
                    n_mels=self.n_mels,
                    power=2.0,
                    center=True,
                    pad_mode="reflect",
                    norm=None,
                    mel_scale="htk",
                )
            return self._mel.to(samples.device)(samples)
        if self._mel is None:
            from transformers.audio_utils import mel_filter_bank

            fb = mel_filter_bank(
                num_frequency_bins=self.n_fft // 2 + 1,
                num_mel_filters=self.n_mels,
                min_frequency=0.0,
                max_frequency=self.sample_rate / 2,
                sampling_rate=self.sample_rate,
                norm=None,
                mel_scale="htk",
            )
            self._mel = torch.from_numpy(fb.astype(np.float32))  # [freq, mels]
        window = torch.hann_window(self.n_fft, device=samples.device)
        spec = torch.stft(
            samples, self.n_fft, self.hop_length, window=window, center=True, pad_mode="reflect", return_complex=True
        )
        return self._mel.to(samples.device).T @ spec.abs().pow(2)

    @torch.no_grad()
    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        # one short clip at a time is too little work to share between threads: on a busy 2-core
        # machine 64 clips took 16.9 s with 2 torch threads and 0.8 s with one (measured)
        threads = torch.get_num_threads()
        if device.type == "cpu":
            torch.set_num_threads(1)
        try:
            return self._extract(inputs, device)
        finally:
            torch.set_num_threads(threads)

    def _extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        rows = []
        for samples in waveforms(inputs, self.sample_rate):
            x = torch.from_numpy(samples).to(device)
            if x.shape[0] < self.n_fft:
                x = torch.nn.functional.pad(x, (0, self.n_fft - x.shape[0]))
            logmel = torch.log(self.mel_spectrogram(x) + 1e-6)  # [mels, frames]
            frames = logmel.shape[1]
            bounds = np.linspace(0, frames, self.segments + 1).round().astype(int)
            segments = [logmel[:, a : max(b, a + 1)].mean(1) for a, b in zip(bounds[:-1], bounds[1:])]
            rows.append(torch.cat([logmel.mean(1), logmel.std(1, unbiased=False), *segments]))
        return torch.stack(rows).float()


class Wav2Vec2Backbone(AudioBackbone, HFBackbone):
    """A transformers wav2vec 2.0 encoder: the last hidden state averaged over time, with the model's
    own feature extractor (16 kHz, normalised). ``model`` is a Hub id or a local folder. The ``hf``
    backbone with ``pooling = "mean"``, under the cache key it always had."""

    name = "wav2vec2"
    description = "transformers wav2vec 2.0, mean-pooled last hidden state (default facebook/wav2vec2-base)"
    batch_size = 16
    default_model = "facebook/wav2vec2-base"
    processor_class = "AutoFeatureExtractor"

    def __init__(self, model: str | None = None, revision: str | None = None) -> None:
        super().__init__(model=model, pooling="mean", modality="audio", revision=revision)

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        return []  # its default model is on the Hub; a model folder given to the probe is measured as hf

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_id, "revision": self.revision}
