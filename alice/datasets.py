"""Kept for plugins written against ALICE 0.1: import from :mod:`alice.plugin` instead."""

from alice.plugin.dataset import PAIRED, SPLITS, DataSet, Split  # noqa: F401
