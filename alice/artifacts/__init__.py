"""Reference spaces and adapters on disk, one idea per module:

- :mod:`alice.artifacts.format`: the on-disk format: folder layout (``layout``), typed manifests (``manifests``) and
  an adapter's training history (``history``);
- :mod:`alice.artifacts.integrity`: ``space.json`` and the digest (``record``), what a space says about itself
  read without torch (``describe``), and the end-to-end check (``verify``);
- :mod:`alice.artifacts.publish`: writing a space whole, and its next version, atomically;
- :mod:`alice.artifacts.loaded`: a space read back: ``ReferenceSpace`` and its ``Adapter`` modules;
- :mod:`alice.artifacts.sharing`: ``alice reference export`` and ``import``;
- :mod:`alice.artifacts.modelcard`: the model cards, and :mod:`alice.artifacts.curves` the curve picture they show.

Each public name is imported from the module that defines it. Importing this package, ``format`` or ``integrity``
does not import torch.
"""
