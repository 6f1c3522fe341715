"""The built-in offline data set ``digits``: scenes of handwritten digits, as images, captions and speech.

Registers the data sets ``digits-image``, ``digits-text`` and ``digits-speech`` (spoken offline by espeak-ng).
"""

from alice.plugin import DataSetRegistrar, hookimpl


@hookimpl
def alice_register_datasets(registrar: DataSetRegistrar) -> None:
    # by name and place: the modules are imported when a data set is first used
    registrar.dataset("digits-image", "alice_plugins.digits.datasets:DigitsImage")
    registrar.dataset("digits-text", "alice_plugins.digits.datasets:DigitsText")
    registrar.dataset("digits-speech", "alice_plugins.digits.speech:DigitsSpeech")
