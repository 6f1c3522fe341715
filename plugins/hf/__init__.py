"""Backbones from the Hugging Face ecosystem's own libraries: ``hf`` (any transformers model with its own
processor: text, images or audio) and ``sentence-transformers`` (any sentence-transformers model)."""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    from alice_plugins.hf.sentences import SentenceTransformersBackbone
    from alice_plugins.hub import HFBackbone

    register(HFBackbone)
    register(SentenceTransformersBackbone)
