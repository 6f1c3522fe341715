"""The text modality: backbones ``minilm`` (offline all-MiniLM-L6-v2) and ``bert`` (transformers)."""

from alice.plugin import BackboneRegistrar, hookimpl


@hookimpl
def alice_register_backbones(registrar: BackboneRegistrar) -> None:
    # by name and place: the module (and torch) is imported when a backbone is first used
    registrar.backbone("minilm", "alice_plugins.text.backbones:MiniLMBackbone")
    registrar.backbone("bert", "alice_plugins.text.backbones:BertBackbone")
