"""Paired fine-tuning: CLIP and CyCLIP losses, on N pairs, from scratch or from an ALICE space.

- CLIP (Radford et al. 2021): symmetric InfoNCE over the batch's N x N
  similarities, scaled by a learned temperature ``exp(t)`` (init 1/0.07,
  capped at 100).
- CyCLIP (Goel et al. 2022): CLIP plus two cyclic-consistency terms in their
  full N x N form: in-modal ``(1/N) sum_jk (A A^T - B B^T)_jk^2`` and
  cross-modal ``(1/N) sum_jk (A B^T - B A^T)_jk^2``, each weighted 0.25: the
  scale of the authors' code (the N x N mean times the batch size), for which
  the 0.25 weights were tuned.

``alice align clip`` fine-tunes the two encoders of an ALICE artifact this
way (learning rate 100x smaller than from scratch by default), or trains the
same encoder architecture from scratch for comparison (:mod:`alice.evaluation.paired`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from alice.core.modules import Encoder
from alice.evaluation.specs import LOSSES, PairedSpec
from alice.train.history import log_every


def clip_loss(za: torch.Tensor, zb: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: pair i of ``za`` matches pair i of ``zb`` (inputs on the unit sphere)."""
    logits = log_scale.exp().clamp(max=100.0) * za @ zb.T
    target = torch.arange(za.shape[0], device=za.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def cyclip_loss(
    za: torch.Tensor, zb: torch.Tensor, log_scale: torch.Tensor, in_modal: float = 0.25, cross_modal: float = 0.25
) -> torch.Tensor:
    """CLIP plus in-modal and cross-modal cyclic consistency (Goel et al. 2022), full N x N form.

    Each term is the N x N mean of squared differences times N, as in the authors' code.
    """
    n = za.shape[0]
    in_term = ((za @ za.T - zb @ zb.T) ** 2).mean() * n
    cross_term = ((za @ zb.T - zb @ za.T) ** 2).mean() * n
    return clip_loss(za, zb, log_scale) + in_modal * in_term + cross_modal * cross_term


@dataclass
class Pairs:
    """N paired feature rows (already normalised for their encoders), on the device."""

    a: torch.Tensor
    b: torch.Tensor


def draw_pairs(pair_a: list[str], pair_b: list[str], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of ``n`` random pairs: n distinct scenes, one item of each modality per scene."""
    rng = np.random.default_rng(seed)
    rows_b: dict[str, list[int]] = {}
    for j, p in enumerate(pair_b):
        rows_b.setdefault(p, []).append(j)
    first_a: dict[str, int] = {}
    for i, p in enumerate(pair_a):
        first_a.setdefault(p, i)
    scenes = [p for p in first_a if p in rows_b]
    if n > len(scenes):
        raise ValueError(f"asked for {n} pairs, but the paired split has {len(scenes)}")
    chosen = rng.choice(len(scenes), size=n, replace=False)
    ia = np.array([first_a[scenes[k]] for k in chosen])
    ib = np.array([rows_b[scenes[k]][rng.integers(len(rows_b[scenes[k]]))] for k in chosen])
    return ia, ib


def train_pairs(
    encoder_a: Encoder, encoder_b: Encoder, pairs: Pairs, loss: str, lr: float, spec: PairedSpec, trackers=None
) -> list[dict[str, float]]:
    """Train both encoders (and the temperature) on the pairs at rate ``lr``; returns the run's history points.

    A point every ``log_every(spec)`` steps (:mod:`alice.train.history`): the mean ``loss`` since the previous
    point, ``lr`` and the learned ``temperature``; ``trackers`` receive each with its steps/s.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    device = pairs.a.device
    log_scale = torch.tensor(math.log(1 / 0.07), device=device, requires_grad=True)
    opt = torch.optim.Adam([*encoder_a.parameters(), *encoder_b.parameters(), log_scale], lr=lr)
    gen = torch.Generator(device=device)
    gen.manual_seed(spec.seed)
    steps, batch_size = spec.steps, spec.batch_size
    n = pairs.a.shape[0]
    fn = clip_loss if loss == "clip" else cyclip_loss
    encoder_a.train()
    encoder_b.train()
    every = log_every(spec)
    points: list[dict[str, float]] = []
    running, window = 0.0, (0, time.perf_counter())
    for step in range(1, steps + 1):
        idx = torch.randperm(n, generator=gen, device=device)[: min(batch_size, n)]
        value = fn(encoder_a(pairs.a[idx]), encoder_b(pairs.b[idx]), log_scale)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        running += value.detach()
        if step % every == 0 or step == steps:
            point = {
                "step": step,
                "loss": float(running) / (step - window[0]),
                "lr": lr,
                "temperature": float(1 / log_scale.detach().exp()),
            }
            points.append(point)
            now = time.perf_counter()
            if trackers is not None:
                trackers.log(step, {**point, "steps_per_second": (step - window[0]) / max(now - window[1], 1e-9)})
            running, window = 0.0, (step, now)
    encoder_a.eval()
    encoder_b.eval()
    return points
