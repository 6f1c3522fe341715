"""``digits-scanner``: the built-in digit scenes, read by a simulated line-scan sensor.

The scenes come from the built-in digits plugin's public module
(``alice_plugins.digits.public``, scikit-learn's ``load_digits`` underneath), so the data is offline and the
pairing with ``digits-image`` and ``digits-text`` is exact: the test (and
paired) scenes are the shared streams ``test-scenes`` (``paired-scenes``), with
pair ids ``test-i`` (``paired-i``); training and validation scenes are this
modality's own draws (``scanner-train-scenes``, ``scanner-val-scenes``), so
no training reading depicts a scene another modality trained on.
"""

from __future__ import annotations

from typing import Any

from alice.plugin import PAIRED, SPLITS, DataSet, Split
from alice_plugins.digits import public as S
from alice_scanner import sensor


class DigitsScanner(DataSet):
    name = "digits-scanner"
    modality = "scanner"
    description = "digit scenes swept by a simulated 8-photodiode line-scan sensor (noise, gain drift, random start)"

    def __init__(
        self,
        seed: int = 0,
        train: int = 8000,
        val: int = 1000,
        test: int = 1000,
        paired: int = 20000,
        max_digits: int = 4,
        noise: float = 0.03,
    ) -> None:
        sizes = {"train": train, "val": val, "test": test, PAIRED: paired}
        for key, value in {"seed": seed, "max_digits": max_digits, **sizes}.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"option {key} must be an integer, got {value!r}")
        for key, value in sizes.items():
            if value <= 0:
                raise ValueError(f"option {key} must be a positive integer, got {value!r}")
        if not 1 <= max_digits <= 4:
            raise ValueError(f"option max_digits must be between 1 and 4, got {max_digits!r}")
        if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not 0 <= noise <= 1:
            raise ValueError(f"option noise must be a number between 0 and 1 (std of the read noise), got {noise!r}")
        self.seed, self.max_digits, self.noise = seed, max_digits, float(noise)
        self.sizes = sizes

    @property
    def vocabulary(self) -> list[str]:
        return list(S.VOCABULARY)

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seed": self.seed,
            "sizes": self.sizes,
            "max_digits": self.max_digits,
            "noise": self.noise,
            "channels": sensor.CHANNELS,
            "version": 1,
        }

    def split(self, name: str) -> Split:
        if name not in (*SPLITS, PAIRED):
            raise ValueError(f"unknown split {name!r} (known: {', '.join((*SPLITS, PAIRED))})")
        sets = S.draw_label_sets(
            self.sizes[name], S.rng(self.seed, S.scene_streams(self.modality, name)), self.max_digits
        )
        canvases = S.render(sets, S.writers(name), S.rng(self.seed, f"{self.modality}-{name}-render"))
        readings = sensor.sweep(canvases, S.rng(self.seed, f"{self.modality}-{name}-sensor"), self.noise)
        pair_ids = [f"{name}-{i}" for i in range(len(sets))] if name in ("test", PAIRED) else None
        return Split(readings, S.multi_hot(sets), pair_ids)
