"""The method itself (paper section 3) and the measures that score it.

Networks, losses, interventions, exact nearest neighbours on the sphere, and
the metrics that calibrate and score them. Imports no other part of ALICE:
everything above builds on it.
"""
