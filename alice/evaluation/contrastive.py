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
way (learning rate 10x smaller than from scratch by default, a share of the
pairs held out to keep the best step, the start included, so that a few pairs
cannot pull the space below where it began; a later step is kept only when the
held-out pairs tell its gain from noise), or trains the same encoder
architecture from scratch for comparison (:mod:`alice.evaluation.paired`).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from alice.config.evaluation import CHECK_EVERY, LOSSES, PairedSpec
from alice.core.modules import Encoder
from alice.train.history import Trackers, log_every


def clip_loss(za: torch.Tensor, zb: torch.Tensor, log_scale: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Symmetric InfoNCE: pair i of ``za`` matches pair i of ``zb`` (inputs on the unit sphere).

    ``reduction="none"``: each pair's share, [N], the mean of its two cross-entropies (a to b, b to a); their
    mean is the loss.
    """
    logits = log_scale.exp().clamp(max=100.0) * za @ zb.T
    target = torch.arange(za.shape[0], device=za.device)
    rows = F.cross_entropy(logits, target, reduction=reduction)
    return 0.5 * (rows + F.cross_entropy(logits.T, target, reduction=reduction))


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


def split_holdout(pairs: Pairs, share: float, seed: int) -> tuple[Pairs, Pairs | None]:
    """Hold out ``share`` of the pairs (at least 2, seeded) to choose the step by; the rest train. ``share`` 0: none."""
    if share <= 0:
        return pairs, None
    n = pairs.a.shape[0]
    k = max(2, round(n * share))
    if n - k < 1:
        raise ValueError(f"{n} pairs are too few to hold {share:g} of them out: use at least 3, or holdout 0")
    order = torch.as_tensor(np.random.default_rng(seed + 1).permutation(n), device=pairs.a.device)
    held, kept = order[:k], order[k:]
    return Pairs(pairs.a[kept], pairs.b[kept]), Pairs(pairs.a[held], pairs.b[held])


@torch.no_grad()
def held_out_losses(encoder_a: Encoder, encoder_b: Encoder, held: Pairs) -> torch.Tensor:
    """Each held-out pair's share of the contrastive loss, [k]: the held-out pairs in one batch, at the starting
    temperature (1/0.07). Their mean is the symmetric loss of that batch."""
    encoder_a.eval()
    encoder_b.eval()
    start_scale = torch.tensor(math.log(1 / 0.07), device=held.a.device)
    per_pair = clip_loss(encoder_a(held.a), encoder_b(held.b), start_scale, reduction="none")
    encoder_a.train()
    encoder_b.train()
    return per_pair


def improves(losses: torch.Tensor, kept: torch.Tensor, margin: float) -> bool:
    """Whether held-out ``losses`` beat the ``kept`` step's by more than ``margin`` standard errors of the mean
    per-pair change (the same pairs, so the change is paired); ``margin`` 0: any fall of the mean."""
    change = losses - kept
    if margin <= 0 or change.numel() < 2:
        return bool(change.mean() < 0)
    return bool(change.mean() < -margin * change.std() / math.sqrt(change.numel()))


def train_pairs(
    encoder_a: Encoder,
    encoder_b: Encoder,
    pairs: Pairs,
    loss: str,
    lr: float,
    spec: PairedSpec,
    held: Pairs | None = None,
    trackers: Trackers | None = None,
) -> dict[str, Any]:
    """Train both encoders (and the temperature) on the pairs at rate ``lr``; the record of the run.

    With ``held`` pairs, the encoders end at the step (0, the start, included) with the lowest loss on them,
    checked every :data:`CHECK_EVERY` steps, where a step replaces the one kept only when its loss is lower by
    more than ``spec.margin`` standard errors (:func:`improves`); training stops early once none has replaced
    it for ``spec.patience`` steps. The record: ``loss_curve`` (the training loss every :data:`CHECK_EVERY` steps),
    and with ``held`` also ``held_out`` (their number), ``held_out_curve`` (step 0 first) and ``best_step``;
    ``points``, the run's history (:mod:`alice.train.history`): a point every ``log_every(spec)`` steps, at each
    check of the held-out pairs and at the last step run, with the mean ``loss`` since the previous point, ``lr``,
    the learned ``temperature`` and, at a check, the held-out loss ``val_loss``. ``trackers`` receive each point
    with its steps/s.
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
    record: dict[str, Any] = {"loss_curve": []}
    if held is not None:
        best = (held_out_losses(encoder_a, encoder_b, held), 0, _state(encoder_a, encoder_b))
        record.update(held_out=int(held.a.shape[0]), held_out_curve=[best[0].mean().item()])
    running = 0.0
    every, points = log_every(spec), []
    since, window = 0.0, (0, time.perf_counter())  # the loss summed since the previous point; its step and time
    for step in range(1, steps + 1):
        idx = torch.randperm(n, generator=gen, device=device)[: min(batch_size, n)]
        value = fn(encoder_a(pairs.a[idx]), encoder_b(pairs.b[idx]), log_scale)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        loss_value = value.item()
        running += loss_value
        since += loss_value
        score, stop = None, False
        if step % CHECK_EVERY == 0:
            record["loss_curve"].append(running / CHECK_EVERY)
            running = 0.0
            if held is not None:
                losses = held_out_losses(encoder_a, encoder_b, held)
                score = losses.mean().item()
                record["held_out_curve"].append(score)
                if improves(losses, best[0], spec.margin):
                    best = (losses, step, _state(encoder_a, encoder_b))
                elif spec.patience and step - best[1] >= spec.patience:
                    stop = True
        if step % every == 0 or step == steps or score is not None:
            point = {
                "step": step,
                "loss": since / (step - window[0]),
                "lr": lr,
                "temperature": float(1 / log_scale.detach().exp()),
            }
            if score is not None:
                point["val_loss"] = score
            points.append(point)
            now = time.perf_counter()
            if trackers is not None:
                trackers.log(step, {**point, "steps_per_second": (step - window[0]) / max(now - window[1], 1e-9)})
            since, window = 0.0, (step, now)
        if stop:
            break
    if held is not None:
        encoder_a.load_state_dict(best[2][0])
        encoder_b.load_state_dict(best[2][1])
        record["best_step"] = best[1]
    record["points"] = points
    encoder_a.eval()
    encoder_b.eval()
    return record


def _state(encoder_a: Encoder, encoder_b: Encoder) -> tuple[dict, dict]:
    return copy.deepcopy(encoder_a.state_dict()), copy.deepcopy(encoder_b.state_dict())
