"""What C_ref reads in latents: probabilities, calibrated predictions and label names, and the warning when a
reading rests on a class the latents' modality does not annotate. :class:`Readings` is a part of
:class:`alice.api.Space`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch

#: anything that becomes a float tensor: a tensor, a numpy array, nested lists
ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Any]]


class UnannotatedReadingWarning(UserWarning):
    """C_ref reads latents of a modality as a class that modality's data set does not annotate.

    The adapter never learnt what that class looks like in its modality (it was masked out of its
    losses), so the reading is unfounded: ``labels`` leaves the class out, and a search with such a
    latent may return that class's items. Typical cause: the data set holds a class the reference
    lacks (aliased to ``""``), whose items C_ref can only read as one of the classes the modality
    does not annotate. :meth:`Space.warnings` gives the lines row by row.
    """


class Readings:
    """The part of :class:`alice.api.Space` that reads latents through C_ref."""

    @torch.no_grad()
    def classify(self, z: ArrayLike, modality: str | None = None) -> torch.Tensor:
        """Per-class probabilities ``[n, classes]``: sigmoid(C_ref(z)), classes in ``vocabulary`` order.

        With ``modality`` (the adapter the latents came from), rows that read as a class it does not
        annotate raise an :class:`UnannotatedReadingWarning` (see :meth:`warnings`).
        """
        p = torch.sigmoid(self.reference.classifier(self._latents(z)))
        if modality is not None:
            self._warn(p, modality)
        return p

    def predict(self, z: ArrayLike, modality: str | None = None, warn: bool = True) -> torch.Tensor:
        """Multi-hot predictions ``[n, classes]`` (bool): ``classify(z) >= thresholds(modality)``.

        ``modality`` picks whose calibrated thresholds to use (default: the
        reference modality's); pass the modality the latents were encoded from.
        Classes that modality does not annotate (:meth:`annotated`) are never
        predicted: they are False in every row. A row that C_ref reads as such a
        class raises an :class:`UnannotatedReadingWarning` (``warn=False``: not).
        """
        p = self.classify(z)
        if warn:
            self._warn(p, modality)
        return (p >= self.thresholds(modality)) & self._annotated_mask(modality)

    def labels(self, z: ArrayLike, modality: str | None = None, warn: bool = True) -> list[list[str]]:
        """The predicted label names of each row, in vocabulary order (see ``predict``)."""
        vocab = self.vocabulary
        rows = self.predict(z, modality, warn).cpu().numpy()
        return [[vocab[c] for c in np.flatnonzero(row)] for row in rows]

    def warnings(self, z: ArrayLike, modality: str | None = None) -> list[list[str]]:
        """Per row, one line for a reading of ``z`` that rests on classes ``modality`` does not annotate ([] if none).

        A row is flagged when C_ref's probability of a class the modality's data set does not
        annotate reaches that class's threshold in the reference modality (where C_ref was
        calibrated): C_ref reads the latent as that class, but the adapter was never taught what it
        looks like, so ``labels`` leaves it out and a search with the latent may return its items.
        The reference modality annotates every class: its latents are never flagged.
        """
        return self._unfounded(self.classify(z), modality)

    def _annotated_mask(self, modality: str | None) -> torch.Tensor:
        known = set(self.annotated(modality))
        return torch.tensor([c in known for c in self.vocabulary], dtype=torch.bool, device=self.device)

    def _unfounded(self, p: torch.Tensor, modality: str | None) -> list[list[str]]:
        name = self.reference_modality if modality is None else modality
        return [[self._unfounded_line(name, read)] if read else [] for read in self._unannotated_readings(p, name)]

    def _unannotated_readings(self, p: torch.Tensor, name: str) -> list[list[tuple[str, float]]]:
        """Per row, the classes ``name`` does not annotate that C_ref reads in it, most probable first."""
        masked = ~self._annotated_mask(name)
        if not bool(masked.any()):
            return [[] for _ in range(p.shape[0])]
        # where C_ref was calibrated: the reference modality's thresholds (every class annotated there)
        cut = self.thresholds(self.reference_modality) if self.reference_modality in self.adapters else 0.5
        over = ((p >= cut) & masked).cpu().numpy()
        probs = p.cpu().numpy()
        return [
            sorted(((self.vocabulary[c], float(row[c])) for c in np.flatnonzero(flags)), key=lambda x: -x[1])
            for row, flags in zip(probs, over)
        ]

    @staticmethod
    def _unfounded_line(name: str, read: list[tuple[str, float]]) -> str:
        shown = ", ".join(f"{c} (p {p:.2f})" for c, p in read[:3]) + (
            f" and {len(read) - 3} more" if len(read) > 3 else ""
        )
        return (
            f"C_ref reads this {name} input as {shown}, a class adapter {name!r} does not annotate: the reading is "
            "unfounded (labels leave it out; search results may rest on it); the input may hold a class the "
            "reference lacks"
        )

    def _warn(self, p: torch.Tensor, modality: str | None) -> None:
        """One :class:`UnannotatedReadingWarning` for the rows of ``p`` read as unannotated classes (none: nothing)."""
        name = self.reference_modality if modality is None else modality
        readings = self._unannotated_readings(p, name)
        flagged = [read for read in readings if read]
        if not flagged:
            return
        if len(readings) == 1:
            message = self._unfounded_line(name, flagged[0])
        else:
            classes = sorted({c for read in flagged for c, _ in read}, key=self.vocabulary.index)
            message = (
                f"C_ref reads {len(flagged)} of {len(readings)} {name} inputs as {', '.join(classes)}, which adapter "
                f"{name!r} does not annotate: unfounded readings (labels leave them out; search results may rest on "
                f"them); Space.warnings(z, {name!r}) gives them row by row"
            )
        warnings.warn(message, UnannotatedReadingWarning, stacklevel=3)
