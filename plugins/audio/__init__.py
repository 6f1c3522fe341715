"""The audio modality: backbones ``logmel`` (torchaudio, or a fallback without it) and ``wav2vec2``
(transformers). Your own sound files go through the ``files`` plugin's ``audio-folder``.
"""

from alice.plugin import BackboneRegistrar, hookimpl


@hookimpl
def alice_register_backbones(registrar: BackboneRegistrar) -> None:
    # by name and place: the module (and torch) is imported when a backbone is first used
    registrar.backbone("logmel", "alice_plugins.audio.backbones:LogMelBackbone")
    registrar.backbone("wav2vec2", "alice_plugins.audio.backbones:Wav2Vec2Backbone")
