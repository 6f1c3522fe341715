"""Evaluation of a reference space and its adapters: Tables 1-3, baselines, paired fine-tuning and the sweep.

This package's ``__init__`` and :mod:`alice.evaluation.tables` import no ML library (nor do its settings,
:mod:`alice.config.evaluation`), so the CLI can build its options and render tables without loading torch.
"""
