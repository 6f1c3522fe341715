"""ALICE: alignment via interventional consistency.

A shared embedding space for modalities that were never paired: a frozen
*reference space* (classifier C_ref and intervention module M_ref) is built
from one labelled modality, and every further modality trains only its own
encoder and decoder against it.
"""

from alice._version import __version__

__all__ = ["Space", "__version__", "load"]


def __getattr__(name: str):
    """``alice.load`` and ``alice.Space`` on first use: ``import alice`` (and ``alice --help``) stays free of torch."""
    if name in ("load", "Space"):
        from alice import api

        return getattr(api, name)
    raise AttributeError(f"module 'alice' has no attribute {name!r}")
