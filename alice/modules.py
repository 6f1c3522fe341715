"""The per-modality networks of ALICE (paper section 3): encoder, decoder, classifier.

Sizes default to the paper's: MLPs with hidden layers [1024, 1024] and ELU,
a 512-d latent on the unit sphere, dropout 0.1 in the classifier only.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers joined by ELU (and dropout); no activation after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ELU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """E: backbone features x -> latent z on the unit sphere."""

    def __init__(self, feature_dim: int, latent_dim: int = 512, hidden: Sequence[int] = (1024, 1024)) -> None:
        super().__init__()
        self.net = mlp([feature_dim, *hidden, latent_dim])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


class Decoder(nn.Module):
    """D: latent z -> backbone features x (the encoder's mirror)."""

    def __init__(self, feature_dim: int, latent_dim: int = 512, hidden: Sequence[int] = (1024, 1024)) -> None:
        super().__init__()
        self.net = mlp([latent_dim, *reversed(hidden), feature_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Classifier(nn.Module):
    """C: latent z -> one logit per class of the reference vocabulary (multi-label)."""

    def __init__(self, num_classes: int, latent_dim: int = 512, hidden: Sequence[int] = (1024, 1024), dropout: float = 0.1) -> None:
        super().__init__()
        self.net = mlp([latent_dim, *hidden, num_classes], dropout=dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
