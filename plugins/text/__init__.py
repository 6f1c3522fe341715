"""The text modality: backbones ``minilm`` (offline all-MiniLM-L6-v2) and ``bert`` (transformers)."""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    # by name and place: the module (and torch) is imported when a backbone is first used
    register("minilm", "alice_plugins.text.backbones:MiniLMBackbone")
    register("bert", "alice_plugins.text.backbones:BertBackbone")
