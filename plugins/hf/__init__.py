"""Backbones from the Hugging Face ecosystem's own libraries: ``hf`` (any transformers model with its own
processor: text, images or audio) and ``sentence-transformers`` (any sentence-transformers model)."""

from alice.plugin import BackboneRegistrar, hookimpl


@hookimpl
def alice_register_backbones(registrar: BackboneRegistrar) -> None:
    # by name and place: the module (and torch) is imported when a backbone is first used
    registrar.backbone("hf", "alice_plugins.hub:HFBackbone")
    registrar.backbone("sentence-transformers", "alice_plugins.hf.sentences:SentenceTransformersBackbone")
