"""Training: the two stages, checkpoints, and the two jobs users run (build a reference, add a modality)."""
