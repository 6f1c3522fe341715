"""``digits-speech``: the digit scenes spoken by espeak-ng ("three and seven"), with held-out voices at test.

Each item is a ``(samples, sample_rate)`` tuple, synthesised when it is read:
the features are cached, the audio never is. Any audio backbone reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alice.plugin import PAIRED, Split
from alice_plugins.digits import scenes as S
from alice_plugins.digits.datasets import DigitScenes

# espeak-ng English voices and voice variants. Test scenes are spoken by variants that training never
# hears, the way digits-image's test scenes use writers absent from training.
LANGUAGES = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029"]
TRAIN_VARIANTS = [
    "",
    "+m1",
    "+m2",
    "+m3",
    "+m4",
    "+m6",
    "+f1",
    "+f2",
    "+f4",
    "+klatt",
    "+klatt3",
    "+croak",
    "+whisper",
    "+john",
    "+linda",
    "+Andy",
]
TEST_VARIANTS = ["+m5", "+m7", "+f3", "+f5", "+klatt2", "+max", "+belinda", "+Mike"]


class SpokenScenes(Sequence):
    """Captions spoken on demand (about 5 ms each): the features are cached, the audio never is."""

    def __init__(self, texts: list[str], voices: list[str], rates: np.ndarray, pitches: np.ndarray) -> None:
        self.texts, self.voices, self.rates, self.pitches = texts, voices, rates, pitches

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        from alice_plugins.digits.espeak import speaker

        return speaker().say(self.texts[i], self.voices[i], int(self.rates[i]), int(self.pitches[i]))


class DigitsSpeech(DigitScenes):
    name = "digits-speech"
    modality = "speech"
    description = "digit scenes spoken by espeak-ng ('three and seven'), varied voices, rates and pitches"

    def identity(self) -> dict[str, Any]:
        return super().identity() | {"voices": [LANGUAGES, TRAIN_VARIANTS, TEST_VARIANTS], "speech_version": 1}

    def utterances(self, name: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        sets = self.label_sets(name)
        gen = S.rng(self.seed, f"speech-{name}-voices")
        captions = [S.caption(c, gen) for c in sets]
        variants = TEST_VARIANTS if name == "test" else TRAIN_VARIANTS
        voices = [LANGUAGES[gen.integers(len(LANGUAGES))] + variants[gen.integers(len(variants))] for _ in sets]
        return captions, voices, gen.integers(120, 230, size=len(sets)), gen.integers(25, 80, size=len(sets))

    def split(self, name: str) -> Split:
        sets = self.label_sets(name)
        texts, voices, rates, pitches = self.utterances(name)
        pair_ids = [f"{name}-{i}" for i in range(len(sets))] if name in ("test", PAIRED) else None
        return Split(SpokenScenes(texts, voices, rates, pitches), S.multi_hot(sets), pair_ids)
