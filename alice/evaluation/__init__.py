"""Evaluation of a reference space and its adapters (DESIGN.md section 2)."""
