"""The audio modality: backbones ``logmel`` (torchaudio, or a fallback without it) and ``wav2vec2``
(transformers), and the data set ``audio-folder`` (your files plus a labels file).
"""

from alice.plugin import hookimpl


@hookimpl
def alice_register_backbones(register):
    from alice_plugins.audio.backbones import LogMelBackbone, Wav2Vec2Backbone

    register(LogMelBackbone)
    register(Wav2Vec2Backbone)


@hookimpl
def alice_register_datasets(register):
    from alice_plugins.audio.datasets import AudioFolder

    register(AudioFolder)
