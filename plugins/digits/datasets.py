"""``digits-image`` and ``digits-text``: one scene generator, two modalities (``digits-speech``: :mod:`.speech`).

:class:`DigitScenes` is the base of every digits data set, this plugin's and
others' (the example plugin ``alice-scanner`` reads the same scenes with a
simulated sensor): the same ``seed`` and sizes give the same label sets, and
test and paired scenes are shared by every modality, which is what pairs them.
"""

from __future__ import annotations

from typing import Any

from alice.plugin import PAIRED, SPLITS, DataSet, Split
from alice_plugins.digits import scenes as S


class DigitScenes(DataSet):
    """Scenes of ``min_digits`` to ``max_digits`` distinct digits; subclasses render them in their modality (``split``).

    Up to 4 digits sit in a 2x2 grid; ``max_digits`` 5 to 9 (a test of a space trained on fewer,
    ``alice eval PATH --set data.max_digits=9``) lays every scene out in a 3x3 grid on the same canvas.
    """

    description = ""

    def __init__(
        self,
        seed: int = 0,
        train: int = 8000,
        val: int = 1000,
        test: int = 1000,
        paired: int = 20000,
        max_digits: int = 4,
        min_digits: int = 1,
        companion: float = 0.0,
    ) -> None:
        for key, value in (("train", train), ("val", val), ("test", test), ("paired", paired)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"option {key} must be a positive integer, got {value!r}")
        if not (isinstance(min_digits, int) and isinstance(max_digits, int) and 1 <= min_digits <= max_digits <= 9):
            raise ValueError(
                f"options min_digits and max_digits must satisfy 1 <= min_digits <= max_digits <= {S.MAX_DIGITS}"
            )
        if not isinstance(companion, (int, float)) or not 0 <= companion <= 1:
            raise ValueError(f"option companion must be a probability from 0 to 1, got {companion!r}")
        self.seed, self.max_digits, self.min_digits, self.companion = seed, max_digits, min_digits, float(companion)
        self.grid = 2 if max_digits <= 4 else 3
        self.sizes = {"train": train, "val": val, "test": test, PAIRED: paired}

    @property
    def vocabulary(self) -> list[str]:
        return list(S.VOCABULARY)

    def identity(self) -> dict[str, Any]:
        identity = {
            "name": self.name,
            "seed": self.seed,
            "sizes": self.sizes,
            "max_digits": self.max_digits,
            "version": 1,
        }
        # options at their defaults add nothing: features cached before the options existed stay valid
        if self.min_digits != 1:
            identity["min_digits"] = self.min_digits
        if self.companion != 0:
            identity["companion"] = self.companion
        return identity

    def label_sets(self, split: str) -> list[list[int]]:
        """The class indices of each scene of ``split``; test and paired scenes are the same in every modality."""
        if split not in (*SPLITS, PAIRED):
            raise ValueError(f"unknown split {split!r}")
        gen = S.rng(self.seed, S.scene_streams(self.modality, split))
        return S.draw_label_sets(self.sizes[split], gen, self.max_digits, self.min_digits, self.companion)


class DigitsImage(DigitScenes):
    name = "digits-image"
    modality = "image"
    description = "scenes of 1-4 handwritten digits (scikit-learn load_digits) on a 20x20 canvas"

    def split(self, name: str) -> Split:
        sets = self.label_sets(name)
        images = S.render(sets, S.writers(name), S.rng(self.seed, f"image-{name}-render"), self.grid)
        pair_ids = [f"{name}-{i}" for i in range(len(sets))] if name in ("test", PAIRED) else None
        return Split(list(images), S.multi_hot(sets), pair_ids)


class DigitsText(DigitScenes):
    name = "digits-text"
    modality = "text"
    description = "captions of digit scenes in varied wording ('a 3 next to a seven')"

    def __init__(self, captions_per_scene: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(captions_per_scene, int) or captions_per_scene < 1:
            raise ValueError("option captions_per_scene must be a positive integer")
        self.captions_per_scene = captions_per_scene

    def identity(self) -> dict[str, Any]:
        return super().identity() | {"captions_per_scene": self.captions_per_scene}

    def split(self, name: str) -> Split:
        sets = self.label_sets(name)
        gen = S.rng(self.seed, f"text-{name}-captions")
        # several captions per test scene (as COCO has); one per training scene
        per = self.captions_per_scene if name == "test" else 1
        texts, labels, pair_ids = [], [], []
        for i, classes in enumerate(sets):
            for _ in range(per):
                texts.append(S.caption(classes, gen))
                labels.append(classes)
                pair_ids.append(f"{name}-{i}")
        return Split(texts, S.multi_hot(labels), pair_ids if name in ("test", PAIRED) else None)
