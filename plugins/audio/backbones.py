"""Audio backbones: log-mel statistics (torchaudio, or torch.stft plus transformers' mel filters) and
wav2vec2 (transformers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from alice.plugin import AliceError, Backbone
from alice_plugins.audio.waveform import AUDIO_SUFFIXES, as_waveform, resample
from alice_plugins.hub import HubBackbone


def torchaudio_available() -> bool:
    try:
        import torchaudio  # noqa: F401
    except Exception:  # ImportError, or an ABI mismatch with the installed torch (OSError, RuntimeError)
        return False
    return True


def _waveforms(inputs: Sequence[Any], rate: int) -> list[np.ndarray]:
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


class AudioBackbone(Backbone):
    """What every audio backbone reads: waveforms, ``(samples, rate)`` or sound files; shown as the sound."""

    modality = "audio"
    also_reads = ("speech",)
    file_suffixes = AUDIO_SUFFIXES

    def preview(self, item: Any) -> tuple[np.ndarray, int]:
        wave = as_waveform(item)
        return wave.samples, wave.sample_rate


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
        for samples in _waveforms(inputs, self.sample_rate):
            x = torch.from_numpy(samples).to(device)
            if x.shape[0] < self.n_fft:
                x = torch.nn.functional.pad(x, (0, self.n_fft - x.shape[0]))
            logmel = torch.log(self.mel_spectrogram(x) + 1e-6)  # [mels, frames]
            frames = logmel.shape[1]
            bounds = np.linspace(0, frames, self.segments + 1).round().astype(int)
            segments = [logmel[:, a : max(b, a + 1)].mean(1) for a, b in zip(bounds[:-1], bounds[1:])]
            rows.append(torch.cat([logmel.mean(1), logmel.std(1, unbiased=False), *segments]))
        return torch.stack(rows).float()


class Wav2Vec2Backbone(HubBackbone, AudioBackbone):
    """A transformers wav2vec 2.0 encoder: the last hidden state averaged over time, with the model's
    own feature extractor (16 kHz, normalised). ``model`` is a Hub id or a local folder."""

    name = "wav2vec2"
    description = "transformers wav2vec 2.0, mean-pooled last hidden state (default facebook/wav2vec2-base)"
    batch_size = 16
    default_model = "facebook/wav2vec2-base"
    processor_class = "AutoFeatureExtractor"

    @torch.no_grad()
    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        model, processor = self.load(device)
        rate = int(processor.sampling_rate)
        waves = _waveforms(inputs, rate)
        if not getattr(processor, "return_attention_mask", False):
            # models trained without an attention mask (wav2vec2-base) must not see padding: one clip at a time
            return torch.cat([self._pooled(model, processor, [w], rate, device) for w in waves])
        return self._pooled(model, processor, waves, rate, device)

    @staticmethod
    def _pooled(model, processor, waves: list[np.ndarray], rate: int, device: torch.device) -> torch.Tensor:
        batch = processor(waves, sampling_rate=rate, padding=True, return_attention_mask=True, return_tensors="pt").to(
            device
        )
        masked = len(waves) > 1
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            hidden = model(
                batch["input_values"], attention_mask=batch["attention_mask"] if masked else None
            ).last_hidden_state.float()
        # the attention mask is per sample; the hidden states are per frame of the convolutional front end
        frames = model._get_feat_extract_output_lengths(batch["attention_mask"].sum(1)).clamp(
            min=1, max=hidden.shape[1]
        )
        mask = (torch.arange(hidden.shape[1], device=device)[None, :] < frames[:, None]).unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1)
