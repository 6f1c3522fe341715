"""What a labelled data set is, as plugins register it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # numpy is imported when a split is made, not when plugins load
    import numpy as np

SPLITS = ("train", "val", "test")
#: An optional split of paired items (pair ids shared across modalities, drawn from
#: training data). Only paired fine-tuning (`alice align`, `alice sweep`) reads it;
#: ALICE itself never does.
PAIRED = "paired"


def label_key(label: str) -> str:
    """How two labels are compared everywhere in ALICE: case and surrounding spaces ignored.

    ``"Coins"``, ``"coins"`` and ``" coins "`` are one label: one class of a reference, and one match
    for a reference label in a modality's label mapping. A data set should give each label one
    spelling (the file data sets take the most frequent one, and say so).
    """
    return label.strip().casefold()


@dataclass
class Split:
    """One split of a data set, in the data set's own label vocabulary.

    ``inputs`` are whatever the modality's backbones take (image arrays or
    paths, strings, audio arrays); they may be a lazy sequence. ``labels`` is a
    multi-hot ``[n, len(vocabulary)]`` array. ``pair_ids`` name the scene or
    object each item shows; items of two modalities with the same pair id
    depict the same thing. They are used by evaluation only, never in training.
    """

    inputs: Sequence[Any]
    labels: np.ndarray
    pair_ids: list[str] | None = None

    def __post_init__(self) -> None:
        import numpy as np

        self.labels = np.asarray(self.labels, dtype=np.float32)
        if self.labels.ndim != 2 or self.labels.shape[0] != len(self.inputs):
            raise ValueError(
                f"labels must be [n, classes] with n = {len(self.inputs)} inputs, got shape {self.labels.shape}"
            )
        if self.pair_ids is not None and len(self.pair_ids) != len(self.inputs):
            raise ValueError("pair_ids must have one entry per input")


@dataclass
class Found:
    """How a data set would read a file or folder: what ``alice recipe init`` writes into a recipe.

    ``options`` is the recipe's ``[data]`` table (without ``dataset``), ``modality`` the data
    set's modality with those options, ``backbone`` a backbone that reads it and
    ``backbone_options`` its options; ``note`` says in one line what was recognised (it becomes a
    comment of the recipe).
    """

    options: dict[str, Any]
    modality: str
    backbone: str
    backbone_options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


class DataSet:
    """A labelled data set of one modality.

    Subclasses set ``name``, ``modality`` and implement ``vocabulary`` and
    ``split``. Options come from the recipe's ``[data]`` table. An instance may
    hold another modality than its class (an option, or what its files hold:
    ``embeddings``, ``hf-dataset``); the class's is what listings show.
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown option(s) {sorted(options)}")

    @property
    def vocabulary(self) -> list[str]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What determines the samples: name plus every option that changes them."""
        return {"name": self.name}

    def split(self, name: str) -> Split:
        raise NotImplementedError

    @classmethod
    def inspect(cls, path: Path) -> Found | None:
        """How this data set would read ``path`` (a file or a folder), or None when it would not.

        ``alice recipe init PATH`` asks every registered data set and writes a recipe from the
        answer; keep it cheap (read a header or a few files, load no model).
        """
        return None
