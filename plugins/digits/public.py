"""What another plugin may import from the digits plugin: the digit scenes, drawn as every modality draws them.

A plugin imports ALICE from ``alice.plugin`` alone. A plugin whose data pairs with the built-in
``digits-image``, ``digits-text`` and ``digits-speech`` (it reads the same scenes with another
sensor: ``examples/alice-scanner``, the guide's ``alice-shadow``) imports these names from this
module, and only from it; the names below stay as they are, the rest of ``alice_plugins.digits``
may change. They come with ALICE itself (the distribution ``alice-align``), so such a plugin
depends on nothing more.

- :class:`DigitScenes`: a base data set with the digits options (``seed``, ``train``, ``val``,
  ``test``, ``paired``, ``max_digits``, ...); ``label_sets(split)`` gives the class indices of each
  scene, the very scenes of the other digits modalities for ``test`` and ``paired`` (pair ids
  ``test-<i>``, ``paired-<i>``), this modality's own draws for ``train`` and ``val``.
- :func:`scene_streams`, :func:`rng`, :func:`draw_label_sets`: the same draws without the base class.
- :func:`render`, :func:`writers`: ``[n, 20, 20]`` images of scenes (``CANVAS`` pixels a side),
  from the writers of a split (test writers are held out of training).
- :func:`multi_hot`, ``VOCABULARY``: labels as a ``[n, 10]`` array, and the ten class names.
- :func:`caption`: one caption of a scene, in the varied wording of ``digits-text``.

Importing this module imports numpy (and scikit-learn's digits on first use): import it inside a
plugin's hooks or modules, not at the top of the module its entry point names.
"""

from alice_plugins.digits.datasets import DigitScenes
from alice_plugins.digits.scenes import (
    CANVAS,
    VOCABULARY,
    caption,
    draw_label_sets,
    multi_hot,
    render,
    rng,
    scene_streams,
    writers,
)

__all__ = [
    "CANVAS",
    "VOCABULARY",
    "DigitScenes",
    "caption",
    "draw_label_sets",
    "multi_hot",
    "render",
    "rng",
    "scene_streams",
    "writers",
]
