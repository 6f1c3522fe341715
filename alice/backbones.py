"""What a feature extractor (a *backbone*) is, as plugins register it.

ALICE never trains a backbone: features are extracted once, cached
(see :mod:`alice.features`), and the encoders learn on top of them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch


class Backbone:
    """A frozen feature extractor for one modality.

    Subclasses set ``name`` and ``modality`` and implement ``feature_dim`` and
    ``extract``. Options come from the recipe's ``[backbone]`` table and are
    passed to ``__init__`` as keyword arguments; load weights lazily (on the
    first ``extract``) so that listing plugins stays fast.
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    description: ClassVar[str] = ""
    #: further data set modalities this backbone reads (an audio backbone reads "speech" too)
    also_reads: ClassVar[tuple[str, ...]] = ()
    #: how many raw inputs ``extract`` receives at once
    batch_size: int = 64

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown option(s) {sorted(options)}")

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What determines the features: name plus every option that changes them.

        Used as the feature-cache key and written into adapter manifests.
        """
        return {"name": self.name}

    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        """Return float32 features ``[len(inputs), feature_dim]`` for one batch."""
        raise NotImplementedError
