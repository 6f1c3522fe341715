"""Your own data from files, any modality, no code: the data sets ``image-folder``, ``text-file``,
``audio-folder``, ``embeddings`` and ``hf-dataset``, all reading one manifest format
(:mod:`alice_plugins.files.manifest`), and the backbone ``identity`` for vectors computed elsewhere.
"""

from alice.plugin import hookimpl


@hookimpl
def alice_register_datasets(register):
    # by name and place: the module (and torch) is imported when a data set is first used
    register("image-folder", "alice_plugins.files.images:ImageFolder")
    register("text-file", "alice_plugins.files.texts:TextFile")
    register("audio-folder", "alice_plugins.files.audio:AudioFolder")
    register("embeddings", "alice_plugins.files.vectors:Embeddings")
    register("hf-dataset", "alice_plugins.files.hfdata:HFDataset")


@hookimpl
def alice_register_backbones(register):
    register("identity", "alice_plugins.files.vectors:IdentityBackbone")
