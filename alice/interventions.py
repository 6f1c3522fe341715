"""Kept for plugins written against ALICE 0.1: import from :mod:`alice.plugin` instead."""

from alice.core.interventions import *  # noqa: F403
from alice.core.interventions import Intervention, InterventionBatch, sample_interventions  # noqa: F401
