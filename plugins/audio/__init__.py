"""The audio modality: backbones ``logmel`` (torchaudio, or a fallback without it) and ``wav2vec2``
(transformers). Your own sound files go through the ``files`` plugin's ``audio-folder``.
"""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    # by name and place: the module (and torch) is imported when a backbone is first used
    register("logmel", "alice_plugins.audio.backbones:LogMelBackbone")
    register("wav2vec2", "alice_plugins.audio.backbones:Wav2Vec2Backbone")
