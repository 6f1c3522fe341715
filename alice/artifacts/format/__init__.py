"""The on-disk format of a reference space: where each file goes (``layout``) and what its manifests say
(``manifests``). Torch-free."""
