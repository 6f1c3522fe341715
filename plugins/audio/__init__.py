"""The audio modality: backbones ``logmel`` (torchaudio, or a fallback without it) and ``wav2vec2``
(transformers). Your own sound files go through the ``files`` plugin's ``audio-folder``.
"""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    from alice_plugins.audio.backbones import LogMelBackbone, Wav2Vec2Backbone

    register(LogMelBackbone)
    register(Wav2Vec2Backbone)
