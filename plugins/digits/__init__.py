"""The built-in offline data set ``digits``: scenes of handwritten digits, as images and as captions.

Registers the data sets ``digits-image`` and ``digits-text``.
"""

from alice.hookspecs import hookimpl


@hookimpl
def alice_register_datasets(register):
    from alice_plugins.digits.datasets import DigitsImage, DigitsText

    register(DigitsImage)
    register(DigitsText)
