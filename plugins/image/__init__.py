"""The image modality: backbones ``pixels``, ``mobilenet-v2`` (offline weights) and ``vit`` (transformers)."""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    from alice_plugins.image.backbones import MobileNetV2Backbone, PixelBackbone, ViTBackbone

    register(PixelBackbone)
    register(MobileNetV2Backbone)
    register(ViTBackbone)
