"""The built-in offline data set ``digits``: scenes of handwritten digits, as images, captions and speech.

Registers the data sets ``digits-image``, ``digits-text`` and ``digits-speech`` (spoken offline by espeak-ng).
"""

from alice.plugin import hookimpl


@hookimpl
def alice_register_datasets(register):
    from alice_plugins.digits.datasets import DigitsImage, DigitsText
    from alice_plugins.digits.speech import DigitsSpeech

    register(DigitsImage)
    register(DigitsText)
    register(DigitsSpeech)
