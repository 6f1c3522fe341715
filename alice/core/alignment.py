"""Unpaired geometric alignment: statistics of the reference modality's latents, and losses toward them.

The paper's stage 2 ties a new modality to the reference only through the
frozen classifier C_ref and intervention module M_ref: its latents must be
*read* like the reference modality's, but may sit anywhere C_ref reads them
that way. On digits they do not sit where the reference's do (the mean latents
of image and text are nearly orthogonal), so nearest-neighbour search across
modalities is weaker than classification would allow: the modality gap of
Liang et al. (2022), here without any contrastive loss to blame.

Stage 1 stores :class:`LatentStatistics` of the reference modality's training
latents in the frozen artifact (moments only: means, per-class means, a second
moment, label co-occurrence, counts; no latent of any sample). Stage 2 may add
:func:`alignment_loss`, which pulls the new modality's latents toward those
statistics using only that modality's own labels:

- ``"conditional-mean"``: each latent toward the reference's conditional mean
  latent given its label set, ``m(y) = b + W y``, the least-squares linear
  model fitted from the stored moments (per-class means and label
  co-occurrence). Over a batch, ``E||z - m(y)||^2`` is the distance between
  the modality's and the reference's conditional means plus the modality's
  spread around its own: it matches class-conditional first moments and
  tightens each label set's cloud.
- ``"class-means"``: per batch, the mean latent of the samples holding class c
  against the reference's, for every class in the batch, and the global mean:
  first moments only, no pull on single samples.
- ``"moments"``: ``"class-means"`` plus the global second moment E[z z^T]
  (a CORAL-like term, Sun and Saenko 2016).

Plain torch, no ALICE imports: the core layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: the tensors of :class:`LatentStatistics`, by name, as stored (``statistics.<name>``)
STATISTICS = ("count", "mean", "second_moment", "class_count", "class_mean", "label_mean", "label_second_moment")
LOSSES = ("conditional-mean", "class-means", "moments")
#: ridge on the label covariance when fitting m(y): a fraction of its mean diagonal
RIDGE = 1e-3


@dataclass
class LatentStatistics:
    """Moments of one modality's latents z [n, d] and labels y [n, C] (float64 sums, float32 stored).

    ``class_mean[c]`` is the mean latent of the samples holding class c (zero where none
    does); ``label_second_moment`` is E[y y^T], the label co-occurrence rates.
    """

    count: torch.Tensor  # [] number of samples
    mean: torch.Tensor  # [d] E[z]
    second_moment: torch.Tensor  # [d, d] E[z z^T]
    class_count: torch.Tensor  # [C] samples holding each class
    class_mean: torch.Tensor  # [C, d] E[z | y_c = 1]
    label_mean: torch.Tensor  # [C] E[y]
    label_second_moment: torch.Tensor  # [C, C] E[y y^T]

    @classmethod
    @torch.no_grad()
    def of(cls, z: torch.Tensor, y: torch.Tensor, chunk: int = 65_536) -> LatentStatistics:
        """The statistics of latents ``z`` with multi-hot labels ``y`` (in chunks: any n fits in memory)."""
        n, d, C = z.shape[0], z.shape[1], y.shape[1]
        s_z, s_zz = torch.zeros(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64)
        s_y, s_yy = torch.zeros(C, dtype=torch.float64), torch.zeros(C, C, dtype=torch.float64)
        s_zy = torch.zeros(C, d, dtype=torch.float64)
        for lo in range(0, n, chunk):
            zb = z[lo : lo + chunk].detach().to("cpu", torch.float64)
            yb = (y[lo : lo + chunk].detach().to("cpu") > 0.5).to(torch.float64)
            s_z += zb.sum(0)
            s_zz += zb.T @ zb
            s_y += yb.sum(0)
            s_yy += yb.T @ yb
            s_zy += yb.T @ zb
        per_class = s_y.clamp_min(1.0)
        return cls(
            count=torch.tensor(float(n)),
            mean=(s_z / max(n, 1)).float(),
            second_moment=(s_zz / max(n, 1)).float(),
            class_count=s_y.float(),
            class_mean=(s_zy / per_class[:, None]).float(),
            label_mean=(s_y / max(n, 1)).float(),
            label_second_moment=(s_yy / max(n, 1)).float(),
        )

    def tensors(self, prefix: str = "statistics") -> dict[str, torch.Tensor]:
        return {f"{prefix}.{name}": getattr(self, name).detach().cpu().float().contiguous() for name in STATISTICS}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str = "statistics") -> LatentStatistics | None:
        """The statistics stored under ``prefix``; None when there are none (an artifact older than them)."""
        keys = [f"{prefix}.{name}" for name in STATISTICS]
        if not all(k in tensors for k in keys):
            return None
        return cls(**{name: tensors[k].float() for name, k in zip(STATISTICS, keys)})

    def shape_problem(self, latent_dim: int, num_classes: int) -> str | None:
        """What does not fit a space of this latent size and vocabulary (None: all fits)."""
        d, C = latent_dim, num_classes
        expected = {
            "count": (),
            "mean": (d,),
            "second_moment": (d, d),
            "class_count": (C,),
            "class_mean": (C, d),
            "label_mean": (C,),
            "label_second_moment": (C, C),
        }
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                return f"statistics.{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}"
        return None

    def to(self, device: torch.device) -> LatentStatistics:
        return LatentStatistics(**{name: getattr(self, name).to(device) for name in STATISTICS})

    def conditional_mean_model(self, annotated: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W [C, d], b [d])`` of the least-squares fit z ~ b + y W over the reference's samples.

        From the moments alone: Cov(y, z) = E[y z^T] - E[y] E[z]^T with E[y_c z] = p_c * class_mean[c],
        Cov(y) = E[y y^T] - E[y] E[y]^T (plus a small ridge). ``annotated`` ([C] bool) restricts the
        model to the classes the new modality annotates: the others are unknown there, so the fit
        averages over them instead of reading them.
        """
        C = self.label_mean.shape[0]
        keep = torch.ones(C, dtype=torch.bool) if annotated is None else annotated.to("cpu").bool()
        p = self.label_mean.double()
        cov_yz = p[:, None] * self.class_mean.double() - p[:, None] * self.mean.double()[None, :]
        cov_yy = self.label_second_moment.double() - p[:, None] * p[None, :]
        idx = torch.nonzero(keep).flatten()
        a = cov_yy[idx][:, idx]
        ridge = RIDGE * float(a.diagonal().mean().clamp_min(1e-12))
        w_kept = torch.linalg.solve(a + ridge * torch.eye(len(idx), dtype=a.dtype), cov_yz[idx])
        W = torch.zeros(C, self.mean.shape[0], dtype=torch.float64)
        W[idx] = w_kept
        b = self.mean.double() - p[idx] @ w_kept
        return W.float(), b.float()


class AlignmentTarget:
    """What :func:`alignment_loss` compares a batch with, prepared once on the training device."""

    def __init__(self, stats: LatentStatistics, annotated: torch.Tensor, loss: str, device: torch.device) -> None:
        if loss not in LOSSES:
            raise ValueError(f"alignment loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.loss = loss
        self.annotated = annotated.to(device).bool()
        W, b = stats.conditional_mean_model(annotated)
        self.W, self.b = W.to(device), b.to(device)
        self.mean = stats.mean.to(device)
        self.second_moment = stats.second_moment.to(device)
        self.class_mean = stats.class_mean.to(device)
        self.has_class = (stats.class_count.to(device) > 0) & self.annotated


def alignment_loss(z: torch.Tensor, y: torch.Tensor, target: AlignmentTarget) -> torch.Tensor:
    """L_align of a batch of latents ``z`` [B, d] with labels ``y`` [B, C] (see the module's docstring)."""
    z = z.float()
    yb = (y > 0.5).float() * target.annotated.float()
    if target.loss == "conditional-mean":
        return (z - (target.b + yb @ target.W)).pow(2).sum(-1).mean()
    # per batch: the global mean, and the mean of each class present in the batch and in the reference
    loss = (z.mean(0) - target.mean).pow(2).sum()
    counts = yb.sum(0)
    present = (counts > 0) & target.has_class
    class_means = (yb.T @ z) / counts.clamp_min(1.0)[:, None]
    per_class = (class_means - target.class_mean).pow(2).sum(-1)
    loss = loss + (per_class * present).sum() / present.sum().clamp_min(1)
    if target.loss == "moments":
        loss = loss + (z.T @ z / z.shape[0] - target.second_moment).pow(2).sum()
    return loss


def centred(z: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
    """``normalise(z - mean)``: a modality's latents with its mean taken out, back on the sphere (None: z)."""
    if mean is None:
        return z
    return F.normalize(z - mean.to(z.device, z.dtype), dim=-1)


def search_transform(z: torch.Tensor, mean: torch.Tensor | None, projector: torch.Tensor | None) -> torch.Tensor:
    """Latents as search compares them: ``normalise((z - mean) @ projector)``, each part only where given."""
    if projector is None:
        return centred(z, mean)
    if mean is not None:
        z = z - mean.to(z.device, z.dtype)
    return F.normalize(z @ projector.to(z.device, z.dtype), dim=-1)


def label_projector(stats: LatentStatistics, project: float) -> torch.Tensor:
    """``[d, d]``: P P^T + (1 - project) (I - P P^T), P an orthonormal basis of the reference's label subspace.

    The label subspace is the row space of W in the linear conditional-mean model (the
    directions along which the reference's latents move with their labels; at most one per
    class). Without pairs, labels are all two modalities share, so search may weigh the other
    directions down: ``project`` 1 keeps only the label subspace, 0 changes nothing.
    """
    W, _ = stats.conditional_mean_model()
    _, s, vh = torch.linalg.svd(W.double(), full_matrices=False)
    basis = vh[s > s.max() * 1e-6].T  # [d, r]
    inside = basis @ basis.T
    eye = torch.eye(inside.shape[0], dtype=inside.dtype)
    return (inside + (1.0 - project) * (eye - inside)).float()


class SearchEncoder(nn.Module):
    """An encoder whose latents go through a fixed search transform: standardised features -> search latents.

    Paired fine-tuning from an adapter that transforms its search latents trains ``encoder``
    inside this, so the contrastive loss sees the latents search compares; the transform stays.
    """

    def __init__(self, encoder: nn.Module, mean: torch.Tensor | None, projector: torch.Tensor | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.mean = None if mean is None else mean.detach().clone()
        self.projector = None if projector is None else projector.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return search_transform(self.encoder(x), self.mean, self.projector)
