"""The on-disk format of a reference space: where each file goes (``layout``), what its manifests say
(``manifests``) and how an adapter's training history is written (``history``). Torch-free."""
