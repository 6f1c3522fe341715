"""Mapping a data set's label vocabulary onto the reference vocabulary."""

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
