"""Recipes, label mapping, the feature cache, and loading a modality's data onto the training device."""
