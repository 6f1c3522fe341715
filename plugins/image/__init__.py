"""The image modality: backbones ``pixels``, ``mobilenet-v2`` (offline weights) and ``vit`` (transformers)."""

from alice.plugin import BackboneRegistrar, hookimpl


@hookimpl
def alice_register_backbones(registrar: BackboneRegistrar) -> None:
    # by name and place: the module (and torch) is imported when a backbone is first used
    registrar.backbone("pixels", "alice_plugins.image.backbones:PixelBackbone")
    registrar.backbone("mobilenet-v2", "alice_plugins.image.backbones:MobileNetV2Backbone")
    registrar.backbone("vit", "alice_plugins.image.backbones:ViTBackbone")
