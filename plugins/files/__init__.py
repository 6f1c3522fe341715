"""Your own data from files, any modality, no code: the data sets ``image-folder``, ``text-file``,
``audio-folder``, ``embeddings`` and ``hf-dataset``, all reading one manifest format
(:mod:`alice_plugins.files.manifest`), and the backbone ``identity`` for vectors computed elsewhere.
"""

from alice.plugin import hookimpl


@hookimpl
def alice_register_datasets(register):
    from alice_plugins.files.audio import AudioFolder
    from alice_plugins.files.hfdata import HFDataset
    from alice_plugins.files.images import ImageFolder
    from alice_plugins.files.texts import TextFile
    from alice_plugins.files.vectors import Embeddings

    for cls in (ImageFolder, TextFile, AudioFolder, Embeddings, HFDataset):
        register(cls)


@hookimpl
def alice_register_backbones(register):
    from alice_plugins.files.vectors import IdentityBackbone

    register(IdentityBackbone)
