"""A data set's label vocabulary, and mapping it onto the reference vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alice.errors import AliceError


@dataclass
class LabelMapping:
    """A data set's labels expressed in the reference vocabulary.

    ``annotated[c]`` is true for the reference classes this data set says
    anything about; the others are unknown and masked out of its losses.
    """

    mapping: dict[str, str | None]
    reference: list[str]

    @property
    def annotated(self) -> np.ndarray:
        hit = {t for t in self.mapping.values() if t is not None}
        return np.array([c in hit for c in self.reference], dtype=bool)

    def matrix(self, source: list[str]) -> np.ndarray:
        """[len(source), len(reference)] 0/1 matrix; labels @ matrix maps multi-hot labels."""
        m = np.zeros((len(source), len(self.reference)), dtype=np.float32)
        index = {c: i for i, c in enumerate(self.reference)}
        for s, label in enumerate(source):
            target = self.mapping.get(label)
            if target is not None:
                m[s, index[target]] = 1.0
        return m

    def apply(self, labels: np.ndarray, source: list[str]) -> np.ndarray:
        return (labels @ self.matrix(source) > 0).astype(np.float32)

    def check(self, source_name: str) -> None:
        if not self.annotated.any():
            raise AliceError(f"no label of data set {source_name!r} maps onto the reference vocabulary")


def check_vocabulary(vocabulary: list[str], source_name: str) -> None:
    """A vocabulary is a non-empty list of distinct, non-empty label names (what a reference built from it keeps)."""
    if not vocabulary:
        raise AliceError(f"data set {source_name!r} has no labels")
    bad = [v for v in vocabulary if not isinstance(v, str) or not v.strip()]
    if bad:
        raise AliceError(f"data set {source_name!r}: label {bad[0]!r} is not a name; every label needs one")
    seen: set[str] = set()
    for v in vocabulary:
        if v in seen:
            raise AliceError(f"data set {source_name!r} names label {v!r} twice in its vocabulary")
        seen.add(v)


def uncovered_labels(source: list[str], mapping: dict[str, str | None], aliases: dict[str, str]) -> list[str]:
    """The source labels that neither the mapper (a key of its result) nor an alias accounts for."""
    return [c for c in source if c not in mapping and c not in aliases]


def uncovered_message(source_name: str, uncovered: list[str], reference: list[str]) -> str:
    """One line: which labels have no place in the reference, and the two ways to give them one."""
    shown = ", ".join(repr(c) for c in uncovered[:8]) + (
        f" and {len(uncovered) - 8} more" if len(uncovered) > 8 else ""
    )
    ref = ", ".join(reference[:12]) + (" …" if len(reference) > 12 else "")
    first = uncovered[0]
    key = first if first.replace("-", "").replace("_", "").isalnum() else f'"{first}"'
    return (
        f"data set {source_name!r}: label(s) {shown} match no label of the reference ({ref}); map each in the recipe's "
        f'[labels.aliases] table ({key} = "<reference label>"), or drop it with "" ({key} = "")'
    )
