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
same encoder architecture from scratch for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from alice.modules import Encoder

LOSSES = ("clip", "cyclip")


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
    encoder_a: Encoder,
    encoder_b: Encoder,
    pairs: Pairs,
    loss: str = "clip",
    steps: int = 1000,
    lr: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
) -> list[float]:
    """Train both encoders (and the temperature) on the pairs; returns the loss every 50 steps."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    device = pairs.a.device
    log_scale = torch.tensor(math.log(1 / 0.07), device=device, requires_grad=True)
    opt = torch.optim.Adam([*encoder_a.parameters(), *encoder_b.parameters(), log_scale], lr=lr)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    n = pairs.a.shape[0]
    fn = clip_loss if loss == "clip" else cyclip_loss
    encoder_a.train()
    encoder_b.train()
    curve, running = [], 0.0
    for step in range(1, steps + 1):
        idx = torch.randperm(n, generator=gen, device=device)[: min(batch_size, n)]
        value = fn(encoder_a(pairs.a[idx]), encoder_b(pairs.b[idx]), log_scale)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        running += value.item()
        if step % 50 == 0:
            curve.append(running / 50)
            running = 0.0
    encoder_a.eval()
    encoder_b.eval()
    return curve


# --------------------------------------------------------------------------- with artifacts

import copy  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from alice import console  # noqa: E402
from alice.artifacts import Adapter, ReferenceSpace  # noqa: E402
from alice.data import ModalityData, load_modality  # noqa: E402
from alice.datasets import PAIRED  # noqa: E402
from alice.errors import AliceError  # noqa: E402
from alice.evaluation.metrics import label_retrieval, recall_at_k  # noqa: E402
from alice.recipes import BackboneSpec, DataSpec, LabelSpec  # noqa: E402

#: method name -> (start from the ALICE encoders?, loss)
METHODS = {"clip": (False, "clip"), "cyclip": (False, "cyclip"), "alice+clip": (True, "clip"), "alice+cyclip": (True, "cyclip")}


def load_for_pairing(reference: ReferenceSpace, name: str, device: torch.device) -> tuple[Adapter, ModalityData]:
    """An adapter and its data set's paired and test splits, normalised as the adapter was trained."""
    adapter = reference.load_adapter(name).to(device)
    m = adapter.manifest
    try:
        data = load_modality(
            DataSpec(m["data"]["dataset"], dict(m["data"].get("options", {}))),
            BackboneSpec(m["backbone"]["name"], dict(m["backbone"].get("options", {}))),
            reference.vocabulary, device, splits=(PAIRED, "test"),
            labels=LabelSpec(m["labels"].get("mapper", "by-name"), dict(m["labels"].get("aliases", {}))),
            normalisation=(adapter.feature_mean, adapter.feature_std),
        )
    except ValueError as exc:
        raise AliceError(f"data set {m['data']['dataset']!r} of adapter {name!r} has no paired split ({exc})") from None
    return adapter, data


def make_encoders(method: str, a: Adapter, b: Adapter, latent_dim: int, seed: int) -> tuple[Encoder, Encoder]:
    from_alice, _ = METHODS[method]
    if from_alice:
        return copy.deepcopy(a.encoder), copy.deepcopy(b.encoder)
    torch.manual_seed(seed)
    device = a.feature_mean.device if a.feature_mean.is_cuda else next(a.encoder.parameters()).device
    ea = Encoder(a.feature_mean.shape[0], latent_dim, a.manifest["encoder_hidden"]).to(device)
    eb = Encoder(b.feature_mean.shape[0], latent_dim, b.manifest["encoder_hidden"]).to(device)
    return ea, eb


@torch.no_grad()
def retrieval_both_ways(ea: Encoder, eb: Encoder, da: ModalityData, db: ModalityData, names: tuple[str, str]) -> dict[str, dict[str, float]]:
    za, zb = ea.eval()(da.features["test"]), eb.eval()(db.features["test"])
    ya, yb = da.labels["test"].cpu().numpy(), db.labels["test"].cpu().numpy()
    both = da.mapping.annotated & db.mapping.annotated
    pa, pb = da.pair_ids["test"], db.pair_ids["test"]
    out = {}
    for (qn, zq, yq, pq), (gn, zg, yg, pg) in (((names[0], za, ya, pa), (names[1], zb, yb, pb)), ((names[1], zb, yb, pb), (names[0], za, ya, pa))):
        out[f"{qn} -> {gn}"] = {**label_retrieval(zq, yq, zg, yg, both), **recall_at_k(zq, pq, zg, pg), "gallery_size": int(zg.shape[0])}
    return out


def fine_tune(
    method: str, a: Adapter, b: Adapter, da: ModalityData, db: ModalityData, latent_dim: int,
    n_pairs: int, seed: int, steps: int, lr: float, batch_size: int,
) -> tuple[Encoder, Encoder, list[float]]:
    """Train one method on ``n_pairs`` pairs drawn from the paired splits (seeded)."""
    from_alice, loss = METHODS[method]
    ia, ib = draw_pairs(da.pair_ids[PAIRED], db.pair_ids[PAIRED], n_pairs, seed)
    pairs = Pairs(da.features[PAIRED][torch.as_tensor(ia)], db.features[PAIRED][torch.as_tensor(ib)])
    ea, eb = make_encoders(method, a, b, latent_dim, seed)
    curve = train_pairs(ea, eb, pairs, loss, steps, lr / 100 if from_alice else lr, batch_size, seed)
    return ea, eb, curve


def sweep(
    reference: ReferenceSpace, names: tuple[str, str], pair_counts: list[int], seeds: list[int],
    methods: list[str], steps: int, lr: float, batch_size: int, device: torch.device,
) -> dict[str, Any]:
    a, da = load_for_pairing(reference, names[0], device)
    b, db = load_for_pairing(reference, names[1], device)
    available = len(set(da.pair_ids[PAIRED]) & set(db.pair_ids[PAIRED]))
    if max(pair_counts) > available:
        raise ValueError(f"asked for {max(pair_counts)} pairs, but the paired split has {available}")
    torch.manual_seed(0)
    ra = Encoder(a.feature_mean.shape[0], reference.latent_dim, a.manifest["encoder_hidden"]).to(device)
    rb = Encoder(b.feature_mean.shape[0], reference.latent_dim, b.manifest["encoder_hidden"]).to(device)
    rows: list[dict[str, Any]] = [
        {"method": "no training", "pairs": 0, "seed": None, "results": retrieval_both_ways(ra, rb, da, db, names)},
        {"method": "ALICE only", "pairs": 0, "seed": None, "results": retrieval_both_ways(a.encoder, b.encoder, da, db, names)},
    ]
    runs = [(m, n, s) for m in methods for n in pair_counts for s in seeds]
    start = time.perf_counter()
    with console.progress("paired fine-tuning sweep", len(runs)) as bar:
        for method, n, seed in runs:
            ea, eb, curve = fine_tune(method, a, b, da, db, reference.latent_dim, n, seed, steps, lr, batch_size)
            rows.append({"method": method, "pairs": n, "seed": seed, "loss_curve": curve, "results": retrieval_both_ways(ea, eb, da, db, names)})
            bar.note(f"{method} N={n} seed={seed}")
            bar.advance()
    return {
        "reference": {"path": str(reference.path), "sha256": reference.sha256},
        "modalities": list(names),
        "settings": {"pairs": pair_counts, "seeds": seeds, "methods": methods, "steps": steps, "lr_scratch": lr, "lr_from_alice": lr / 100, "batch_size": batch_size},
        "paired_split_size": int(len(set(da.pair_ids[PAIRED]) & set(db.pair_ids[PAIRED]))),
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }


def summarise(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean and std over seeds per (method, pairs, direction)."""
    groups: dict[tuple[str, int, str], list[dict[str, float]]] = {}
    for row in report["rows"]:
        for direction, r in row["results"].items():
            groups.setdefault((row["method"], row["pairs"], direction), []).append(r)
    out = []
    for (method, pairs, direction), rs in groups.items():
        entry: dict[str, Any] = {"method": method, "pairs": pairs, "direction": direction, "seeds": len(rs)}
        for key in ("label_exact", "R@1", "R@5", "R@10"):
            values = np.array([r[key] for r in rs])
            entry[key], entry[f"{key}_std"] = float(values.mean()), float(values.std())
        out.append(entry)
    return out


def plot(report: dict[str, Any], path: Path) -> Path:
    """R@1/5/10 against pairs (log scale), mean and spread over seeds, one row per direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(report)
    directions = sorted({s["direction"] for s in summary})
    fig, axes = plt.subplots(len(directions), 3, figsize=(13, 4 * len(directions)), squeeze=False)
    for r, direction in enumerate(directions):
        for c, k in enumerate(("R@1", "R@5", "R@10")):
            ax = axes[r][c]
            for method in report["settings"]["methods"]:
                pts = sorted((s["pairs"], s[k], s[f"{k}_std"]) for s in summary if s["method"] == method and s["direction"] == direction)
                x, y, e = (np.array(v) for v in zip(*pts))
                ax.plot(x, y, marker="o", label=method)
                ax.fill_between(x, y - e, y + e, alpha=0.2)
            for s in summary:
                if s["pairs"] == 0 and s["direction"] == direction:
                    ax.axhline(s[k], linestyle="--", linewidth=1, color="grey" if s["method"] == "no training" else "black", label=f"{s['method']} (0 pairs)")
            ax.set_xscale("log")
            ax.set_xlabel("pairs")
            ax.set_title(f"{direction}: {k}")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
