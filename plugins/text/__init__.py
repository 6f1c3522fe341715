"""The text modality: backbones ``minilm`` (offline all-MiniLM-L6-v2) and ``bert`` (transformers)."""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    from alice_plugins.text.backbones import BertBackbone, MiniLMBackbone

    register(MiniLMBackbone)
    register(BertBackbone)
