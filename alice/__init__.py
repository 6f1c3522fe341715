"""ALICE: alignment via interventional consistency.

A shared embedding space for modalities that were never paired: a frozen
*reference space* (classifier C_ref and intervention module M_ref) is built
from one labelled modality, and every further modality trains only its own
encoder and decoder against it.
"""

__version__ = "0.1.0"
