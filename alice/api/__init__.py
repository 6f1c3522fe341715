"""ALICE from Python, in the paper's own terms.

::

    import alice

    space = alice.load("artifacts/digits-image")            # C_ref, M_ref and every adapter, hashes verified
    z = space.encode("text", ["a seven next to a two"])     # E_text(backbone(x)), on the unit sphere
    p = space.classify(z)                                    # sigmoid(C_ref(z)): [n, classes]
    space.labels(z)                                          # [["two", "seven"]] (calibrated thresholds)
    z2 = space.intervene(z, replace=("seven", "three"))      # E(D(M_ref(z))): replace seven with three
    x = space.decode("image", z2)                            # D_image(z2), in the backbone's feature units

Encoding raw inputs runs the adapter's own backbone, rebuilt from its
manifest through the plugin registry (the one training used), and standardises
its features with the adapter's stored mean and std exactly as training did;
``encode_features`` takes backbone features you already have. Every tensor
returned is a plain ``torch.Tensor`` on the space's device, computed without
gradients. Mistakes (an unknown modality or label, features of the wrong
size, an empty input) raise :class:`alice.errors.AliceError` with one line
saying what is wrong.
"""

from alice.api._inputs import Reads, Unread
from alice.api._readings import UnannotatedReadingWarning
from alice.api._space import Space, load

__all__ = ["Reads", "Space", "UnannotatedReadingWarning", "Unread", "load"]
