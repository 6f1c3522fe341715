"""Scenes of 1 to 4 distinct handwritten digits (up to 9 for shifted tests), drawn reproducibly.

The digit images are scikit-learn's ``load_digits``: 1,797 real 8x8 digits,
the test part of UCI's optical digits, written by 13 people. scikit-learn
ships no writer ids, but the file keeps each writer's digits together (the
first rows cycle 0..9 like one form), so contiguous blocks are the closest
available to a split by writer: rows [0, 70%) train, [70%, 80%) val,
[80%, 100%) test. Test scenes thus use digit images written by people whose
writing training never saw.

Every scene set is drawn from its own named random stream, so the image
training scenes and the text training scenes are different draws (no pairs),
while the test scenes are one list that both modalities render: those are
the pairs evaluation uses, and nothing else.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

VOCABULARY = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WRITER_BLOCKS = {"train": (0.0, 0.7), "val": (0.7, 0.8), "test": (0.8, 1.0)}
SLOT = 10  # each digit sits in a 10x10 slot of a 2x2 grid, at a random 0..2 px offset
CANVAS = 2 * SLOT
#: scenes of more than 4 digits use a 3x3 grid on the same canvas: 8x8 digits 6 px apart, no offset
MAX_DIGITS, GRID3_STEP = 9, (CANVAS - 8) // 2


def rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per (seed, purpose)."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def draw_label_sets(
    n: int, gen: np.random.Generator, max_digits: int = 4, min_digits: int = 1, companion: float = 0.0
) -> list[list[int]]:
    """n scenes, each min_digits..max_digits distinct digit classes (count uniform, classes uniform).

    ``companion`` > 0 correlates the classes, as objects are in photographs: each digit drawn
    brings its companion (c + 5) % 10 along with that probability, while the count allows.
    """
    counts = gen.integers(min_digits, max_digits + 1, size=n)
    if companion <= 0:
        return [sorted(gen.choice(10, size=c, replace=False).tolist()) for c in counts]
    sets = []
    for c in counts:
        chosen: list[int] = []
        while len(chosen) < c:
            d = int(gen.choice([x for x in range(10) if x not in chosen]))
            chosen.append(d)
            mate = (d + 5) % 10
            if len(chosen) < c and mate not in chosen and gen.random() < companion:
                chosen.append(mate)
        sets.append(sorted(chosen))
    return sets


def scene_streams(modality: str, split: str) -> str:
    # test and paired scenes are shared by every modality: that is what pairs them
    return f"{split}-scenes" if split in ("test", "paired") else f"{modality}-{split}-scenes"


def writers(split: str) -> str:
    """Which writers' digits a split uses: paired scenes are training data."""
    return "train" if split == "paired" else split


def multi_hot(label_sets: list[list[int]]) -> np.ndarray:
    y = np.zeros((len(label_sets), 10), dtype=np.float32)
    for i, s in enumerate(label_sets):
        y[i, s] = 1.0
    return y


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def digit_pool(split: str) -> dict[int, np.ndarray]:
    """class -> [k, 8, 8] digit images from the writers of ``split``."""
    images, targets = _digits()
    lo, hi = WRITER_BLOCKS[split]
    a, b = int(lo * len(images)), int(hi * len(images))
    return {c: images[a:b][targets[a:b] == c] for c in range(10)}


def render(label_sets: list[list[int]], split: str, gen: np.random.Generator, grid: int = 2) -> np.ndarray:
    """[n, 20, 20] float32 images in [0, 1]: each digit in its own random slot of a ``grid`` x ``grid`` layout.

    ``grid=2``: 10x10 slots, each digit at a random 0..2 px offset in its slot. ``grid=3`` (scenes
    of up to 9 digits, same canvas): slots 6 px apart, no offset, neighbours overlapping by 2 px.
    """
    pool = digit_pool(split)
    out = np.zeros((len(label_sets), CANVAS, CANVAS), dtype=np.float32)
    for i, classes in enumerate(label_sets):
        slots = gen.permutation(grid * grid)[: len(classes)]
        for c, slot in zip(classes, slots):
            digit = pool[c][gen.integers(len(pool[c]))]
            r, q = divmod(int(slot), grid)
            if grid == 2:
                dy, dx = gen.integers(0, SLOT - 8 + 1, size=2)
                y0, x0 = r * SLOT + dy, q * SLOT + dx
            else:
                y0, x0 = r * GRID3_STEP, q * GRID3_STEP
            np.maximum(out[i, y0 : y0 + 8, x0 : x0 + 8], digit, out=out[i, y0 : y0 + 8, x0 : x0 + 8])
    return out


NUMERALS = [str(i) for i in range(10)]
TEMPLATES = {
    1: [
        "{A} {a}",
        "the digit {a}",
        "{A} handwritten {a}",
        "just {A} {a}",
        "a single {a}",
        "one digit: {a}",
        "{a}",
        "a picture of {A} {a}",
    ],
    2: [
        "{A} {a} next to {B} {b}",
        "the digits {a} and {b}",
        "{a} and {b}",
        "{A} {a} beside {B} {b}",
        "two digits, {a} and {b}",
        "{A} {a} with {B} {b}",
        "{a} together with {b}",
        "handwritten {a} and {b}",
    ],
    3: [
        "{a}, {b} and {c}",
        "the digits {a}, {b} and {c}",
        "{A} {a}, {B} {b} and {C} {c}",
        "three digits: {a}, {b}, {c}",
        "{A} {a} next to {B} {b} and {C} {c}",
        "handwritten {a}, {b} and {c}",
    ],
    4: [
        "{a}, {b}, {c} and {d}",
        "the digits {a}, {b}, {c} and {d}",
        "four digits: {a}, {b}, {c}, {d}",
        "{A} {a}, {B} {b}, {C} {c} and {D} {d}",
        "handwritten {a}, {b}, {c} and {d}",
    ],
}


#: captions of more than 4 digits; {list}: "a, b, c and d", {count}: the number in words
LONG_TEMPLATES = ["{list}", "the digits {list}", "{count} digits: {commas}", "handwritten {list}"]
COUNTS = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def _article(word: str) -> str:
    return "an" if word in ("eight", "8") else "a"


def caption(classes: list[int], gen: np.random.Generator) -> str:
    """One caption in varied wording; digits as numerals or words, in random order."""
    order = gen.permutation(len(classes))
    words = [NUMERALS[classes[i]] if gen.random() < 0.5 else VOCABULARY[classes[i]] for i in order]
    if len(words) > 4:
        template = LONG_TEMPLATES[gen.integers(len(LONG_TEMPLATES))]
        text = template.format(
            list=", ".join(words[:-1]) + " and " + words[-1], commas=", ".join(words), count=COUNTS[len(words)]
        )
        return text[0].upper() + text[1:] if gen.random() < 0.5 else text
    template = TEMPLATES[len(words)][gen.integers(len(TEMPLATES[len(words)]))]
    keys = "abcd"
    fill = {keys[i]: w for i, w in enumerate(words)} | {keys[i].upper(): _article(w) for i, w in enumerate(words)}
    text = template.format(**fill)
    return text[0].upper() + text[1:] if gen.random() < 0.5 else text
