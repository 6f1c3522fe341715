"""Settings, one dataclass each, their defaults written once; the CLI, the library and the tests read them here.

- ``modality``: what a modality reads (``DataSpec``, ``BackboneSpec``, ``LabelSpec``, ``ModalitySpec``) and how
  ``alice recipe init`` measures backbones (``ProbeSpec``);
- ``training``: a recipe's model, intervention, training, alignment and logging settings, and the ``Recipe`` itself;
- ``evaluation``: ``EvalSpec`` and paired fine-tuning's ``PairedSpec``;
- ``search``: how an approximate index is built and searched (``AnnSpec``);
- ``report``: what ``alice report`` shows (``ReportSpec``); ``serve``: ``alice serve``'s settings (``ServeSpec``);
- ``limits``: what ``alice reference import`` accepts (``ImportLimits``).

Nothing here imports torch or any ML library (``tests/test_layers.py`` checks), so the CLI builds its options
from these defaults without loading one.
"""
