"""Backbones from the Hugging Face ecosystem's own libraries: ``hf`` (any transformers model with its own
processor: text, images or audio) and ``sentence-transformers`` (any sentence-transformers model)."""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    # by name and place: the module (and torch) is imported when a backbone is first used
    register("hf", "alice_plugins.hub:HFBackbone")
    register("sentence-transformers", "alice_plugins.hf.sentences:SentenceTransformersBackbone")
