"""The per-modality networks of ALICE (paper section 3): encoder, decoder, classifier.

Sizes default to the paper's: MLPs with hidden layers [1024, 1024] and ELU,
a 512-d latent on the unit sphere, dropout 0.1 in the classifier only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DROPOUT_MASKS = ("torch", "16bit")


class Dropout(nn.Dropout):
    """nn.Dropout, whose keep-mask can also be drawn 16 bits per element (``mask = "16bit"``).

    ``"torch"`` (the default) is ``F.dropout``: one Bernoulli draw per element
    from torch's generator. On a CPU that costs about 10 ns per element, and
    inside a ``torch.compile``d graph, where inductor generates its own
    per-element random numbers, about 19 ns: at the paper's sizes the
    classifier's two dropout layers then take 5% of a training step, more than
    everything else that is not a matrix product (docs/performance.md).
    ``"16bit"`` draws one 64-bit word from torch's generator per four elements
    and keeps an element where its 16-bit lane is at or above ``p`` of the
    lane's range: the drop probability is ``p`` rounded to a multiple of
    1/65536 (0.1 becomes 0.1000061), and kept entries are scaled by the
    inverse of the rounded keep probability, so the expectation is exact.
    """

    def __init__(self, p: float = 0.5, mask: str = "torch") -> None:
        super().__init__(p)
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask == "torch" or not self.training or self.p == 0:
            return super().forward(x)
        dropped = round(self.p * 65536)
        keep = _keep_mask_16bit(x.detach(), dropped)
        return x * keep * (65536 / (65536 - dropped))


# A custom operator, opaque to torch.compile (which cannot trace random_): the graph calls it
# in place, with no graph break, and fuses the product with the mask into its own kernels (a
# graph break there would leave the rest of the classifier's nn.Sequential uncompiled). Tagged
# as seeded randomness for the compilers that read the tag. AOTAutograd's common-subexpression
# pass skips only aten's own random operators, so two calls on the *same* tensor in one graph
# would share a mask: every dropout layer here follows its own linear layer, never the case.
@torch.library.custom_op("alice::keep_mask_16bit", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,))
def _keep_mask_16bit(x: torch.Tensor, dropped: int) -> torch.Tensor:
    """Booleans shaped like ``x``, each true with probability 1 - dropped / 65536 (four per 64-bit random word)."""
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)  # all 64 bits
    return (words.view(torch.int16)[:n] >= dropped - 32768).view(x.shape)


@_keep_mask_16bit.register_fake
def _(x: torch.Tensor, dropped: int) -> torch.Tensor:
    return torch.empty_like(x, dtype=torch.bool)


def mlp(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers joined by ELU (and dropout); no activation after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ELU())
            if dropout > 0:
                layers.append(Dropout(dropout))
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

    def __init__(
        self, num_classes: int, latent_dim: int = 512, hidden: Sequence[int] = (1024, 1024), dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.net = mlp([latent_dim, *hidden, num_classes], dropout=dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def set_dropout_mask(self, mask: str) -> None:
        """How dropout draws its keep-masks in training: ``"torch"`` or ``"16bit"`` (see :class:`Dropout`)."""
        if mask not in DROPOUT_MASKS:
            raise ValueError(f"dropout mask must be one of {', '.join(DROPOUT_MASKS)}, got {mask!r}")
        for m in self.net:
            if isinstance(m, Dropout):
                m.mask = mask


def state_digest(*modules: nn.Module) -> str:
    """sha256 of the names, dtypes, shapes and bytes of the modules' tensors: proof that frozen weights stay frozen."""
    h = hashlib.sha256()
    for m in modules:
        for name, t in sorted(m.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
