"""Losses of ALICE (paper section 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """L_rec = MSE(D(E(x)), x)."""
    return F.mse_loss(x_hat, x)


def masked_bce(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, denominator: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean binary cross-entropy over the entries where ``mask`` is true.

    ``mask`` broadcasts against ``logits``: a [C] class mask leaves out the
    classes a modality does not annotate (unknown, not negative); a [B, C]
    mask also leaves out samples without a usable intervention.
    ``denominator`` replaces the count of masked-in entries: a process that holds
    one slice of a global batch divides by its share of the global count
    (:mod:`alice.distributed`).
    """
    per_entry = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    # the mask in the loss's dtype (float32 under bf16 autocast too: counts stay exact)
    mask = mask.to(per_entry.dtype).expand_as(per_entry)
    if denominator is None:
        denominator = mask.sum().clamp_min(1.0)
    return (per_entry * mask).sum() / denominator
