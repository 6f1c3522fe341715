"""The image modality: backbones ``pixels``, ``mobilenet-v2`` (offline weights) and ``vit`` (transformers)."""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    # by name and place: the module (and torch) is imported when a backbone is first used
    register("pixels", "alice_plugins.image.backbones:PixelBackbone")
    register("mobilenet-v2", "alice_plugins.image.backbones:MobileNetV2Backbone")
    register("vit", "alice_plugins.image.backbones:ViTBackbone")
