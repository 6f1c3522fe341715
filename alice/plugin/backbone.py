"""What a feature extractor (a *backbone*) is, as plugins register it.

ALICE never trains a backbone: features are extracted once, cached
(see :mod:`alice.data.features`), and the encoders learn on top of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Union

from alice.plugin.limits import InputLimits

if TYPE_CHECKING:  # torch and numpy are imported by backbones when they run, not when plugins load
    import numpy as np
    import torch

#: how a report or a search page shows one input: its text, an RGB image ``[H, W, 3]`` uint8
#: array, or a sound ``(samples [n] float32 in [-1, 1], sample rate)``
Preview = Union[str, "np.ndarray", tuple["np.ndarray", int]]


class Backbone:
    """A frozen feature extractor for one modality.

    Subclasses set ``name`` and ``modality`` and implement ``feature_dim`` and
    ``extract``. Options come from the recipe's ``[backbone]`` table and are
    passed to ``__init__`` as keyword arguments; load weights lazily (on the
    first ``extract``) so that listing plugins stays fast.

    What its inputs are is the backbone's word, never the core's: search sends
    a query that names a file ending in one of ``file_suffixes`` to it, a query
    that is plain text to a backbone with ``reads_text``, and the report shows
    an input the way ``preview`` returns it. Which data sets it reads is
    ``reads(modality)``: by default its ``modality`` and ``also_reads``; a
    backbone whose inputs depend on its options (``hf`` reads what its model
    reads) or that reads vectors of any modality (``identity``) answers per
    instance.
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    description: ClassVar[str] = ""
    #: further data set modalities this backbone reads (an audio backbone reads "speech" too)
    also_reads: ClassVar[tuple[str, ...]] = ()
    #: file name endings (lower case, with the dot) of the files it reads, e.g. (".png", ".jpg")
    file_suffixes: ClassVar[tuple[str, ...]] = ()
    #: True when an input is a string of text
    reads_text: ClassVar[bool] = False
    #: how many raw inputs ``extract`` receives at once
    batch_size: int = 64

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown option(s) {sorted(options)}")

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    def reads(self, modality: str) -> bool:
        """Whether this backbone reads a data set of ``modality``; asked before any extraction, so keep it cheap
        (no weights)."""
        return modality == self.modality or modality in self.also_reads

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The option sets under which this backbone would read ``sample`` here, each one candidate that
        ``alice recipe init`` measures.

        ``sample`` is a few inputs of a data set of ``modality``; ``models`` are the model folders the user
        named (``--model``). A candidate must work with nothing to download (weights installed, or a folder on
        disk): the probe extracts features of a few hundred items with each. Keep this cheap (no weights; a
        config file at most). Default: none, so a backbone takes part only by saying it reads such inputs.
        """
        return []

    def bind(self, *, inputs: Sequence[Any] | None = None, feature_dim: int | None = None) -> None:
        """Told, before any extraction, what this backbone will read.

        ``inputs``: a split of the data set it is about to extract (training, evaluation, an
        index); ``feature_dim``: the feature size a saved adapter was trained on, when it is used
        without its data (a search query, the report). Most backbones need neither (the default
        ignores both); one whose width is its data's, as ``identity``'s, takes it from here.
        """

    def identity(self) -> dict[str, Any]:
        """What determines the features: name plus every option that changes them.

        Used as the feature-cache key and written into adapter manifests.
        """
        return {"name": self.name}

    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        """Return float32 features ``[len(inputs), feature_dim]`` for one batch."""
        raise NotImplementedError

    def read_file(self, path: Path, limits: InputLimits) -> Any:
        """One file ending in one of ``file_suffixes``, decoded into an input ``extract`` takes.

        Refuse a file whose header says it is over ``limits`` with :class:`alice.plugin.TooLarge`
        before decoding it, and one that cannot be read with :class:`AliceError`. The server decodes
        an upload here, outside the lock its models run under. By default the path itself, which
        ``extract`` reads.
        """
        return str(path)

    def preview(self, item: Any) -> Preview:
        """How a person sees one input (see :data:`Preview`); by default its text."""
        return str(item)
