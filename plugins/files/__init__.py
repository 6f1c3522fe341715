"""Your own data from files, any modality, no code: the data sets ``image-folder``, ``text-file``,
``audio-folder``, ``embeddings`` and ``hf-dataset``, all reading one manifest format
(:mod:`alice_plugins.files.manifest`), and the backbone ``identity`` for vectors computed elsewhere.
"""

from alice.plugin import BackboneRegistrar, DataSetRegistrar, hookimpl


@hookimpl
def alice_register_datasets(registrar: DataSetRegistrar) -> None:
    # by name and place: the module (and torch) is imported when a data set is first used
    registrar.dataset("image-folder", "alice_plugins.files.images:ImageFolder")
    registrar.dataset("text-file", "alice_plugins.files.texts:TextFile")
    registrar.dataset("audio-folder", "alice_plugins.files.audio:AudioFolder")
    registrar.dataset("embeddings", "alice_plugins.files.vectors:Embeddings")
    registrar.dataset("hf-dataset", "alice_plugins.files.hfdata:HFDataset")


@hookimpl
def alice_register_backbones(registrar: BackboneRegistrar) -> None:
    registrar.backbone("identity", "alice_plugins.files.vectors:IdentityBackbone")
