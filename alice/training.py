"""The two training stages of ALICE.

Stage 1 (reference space), one modality, per step as in the authors' code:
  1. L = w_rec * MSE(D(E(x)), x) + w_cls * BCE(C(E(x)), y)   -> Adam step on E, D, C
  2. z = E(x) recomputed after that update, detached;
     L_sem = BCE(C(E(D(M_k(z)))), Delta_k(y))                   -> Adam step on M alone
     (E, D, C are frozen for this term: only M's gradient is computed.)

Stage 2 (a new modality m), C_ref and M_ref frozen and never written:
  L = w_rec * L_rec(E_m, D_m) + w_cls * BCE(C_ref(E_m(x)), y)   -> E_m, D_m
    + w_sem * BCE(C_ref(E_m(D_m(M_ref_k(z)))), Delta_k(y))    -> E_m only

Batches are indices drawn on the training device into feature tensors that
already live there: no DataLoader, no host-to-device copy per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alice import checkpoints, console
from alice.artifacts import state_digest
from alice.checkpoints import RunState
from alice.data import ModalityData
from alice.errors import AliceError
from alice.interventions import Intervention, sample_interventions
from alice.losses import masked_bce, reconstruction_loss
from alice.modules import Classifier, Decoder, Encoder
from alice.recipes import TrainingSpec


class BatchSampler:
    """Shuffled passes over ``n`` items, batch by batch, generated on ``device``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.batch_size, self.gen, self.device = n, batch_size, generator, device
        self._perm = torch.empty(0, dtype=torch.long, device=device)
        self._pos = 0

    def next(self) -> torch.Tensor:
        if self.n < self.batch_size:  # tiny data: draw with replacement
            return torch.randint(self.n, (self.batch_size,), generator=self.gen, device=self.device)
        if self._pos + self.batch_size > self._perm.numel():
            self._perm = torch.randperm(self.n, generator=self.gen, device=self.device)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


@dataclass
class History:
    """Losses recorded during training (train: running mean since the last record)."""

    records: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}


def semantic_loss(
    z: torch.Tensor,
    y: torch.Tensor,
    annotated: torch.Tensor,
    encoder: Encoder,
    decoder: Decoder,
    classifier: Classifier,
    intervention: Intervention,
    generator: torch.Generator,
) -> torch.Tensor:
    """L_sem: the classifier must read Delta_k(y) in E(D(M_k(z)))."""
    num_templates = getattr(intervention, "num_templates", 1)
    k = sample_interventions(y, annotated, num_templates, generator)
    logits = classifier(encoder(decoder(intervention(z, k))))
    mask = annotated[None, :] & k.valid[:, None]
    return masked_bce(logits, k.apply_to_labels(y), mask)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _adam(params, t: TrainingSpec) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=t.lr, amsgrad=t.amsgrad)


@torch.no_grad()
def validation_losses(
    data: ModalityData, encoder, decoder, classifier, intervention, seed: int, split: str = "val", chunk: int = 4096
) -> dict[str, float]:
    """Mean L_rec, L_cls, L_sem on a held-out split (fixed intervention draws)."""
    modes = [m.training for m in (encoder, decoder, classifier, intervention)]
    for m in (encoder, decoder, classifier, intervention):
        m.eval()
    x, y = data.features[split], data.labels[split]
    annotated = data.annotated
    gen = _generator(x.device, seed + 1)
    totals = {"rec": 0.0, "cls": 0.0, "sem": 0.0}
    for lo in range(0, x.shape[0], chunk):
        xb, yb = x[lo : lo + chunk], y[lo : lo + chunk]
        z = encoder(xb)
        w = xb.shape[0]
        totals["rec"] += reconstruction_loss(decoder(z), xb).item() * w
        totals["cls"] += masked_bce(classifier(z), yb, annotated).item() * w
        totals["sem"] += semantic_loss(z, yb, annotated, encoder, decoder, classifier, intervention, gen).item() * w
    for m, mode in zip((encoder, decoder, classifier, intervention), modes):
        m.train(mode)
    return {f"val_{k}": v / x.shape[0] for k, v in totals.items()}


@dataclass
class Checkpointing:
    """Where and how often a run saves checkpoints, and whether it resumes from one."""

    folder: Path
    every: int = 0  # steps between checkpoints; 0: none
    resume: bool = False
    fingerprint: str = ""  # of the run's settings; a checkpoint of other settings is refused


def _loop(
    steps: int,
    description: str,
    step_fn,
    validate,
    eval_every: int,
    run: RunState,
    checkpointing: Checkpointing | None = None,
    log_every: int = 50,
) -> History:
    """Run ``step_fn(step) -> dict of loss tensors`` with progress, recording losses and checkpoints."""
    history = History()
    sums: dict[str, torch.Tensor] = {}
    count, first = 0, 1
    if checkpointing is not None and checkpointing.resume:
        restored = checkpoints.load(checkpointing.folder, run, checkpointing.fingerprint, run.sampler.device)
        if restored is None:
            console.info(f"no checkpoint at {checkpointing.folder}; starting at step 0")
        else:
            done, sums, count, saved = restored
            history.records, history.seconds = saved["records"], saved["seconds"]
            first = done + 1
            console.info(f"resuming from the checkpoint at step {done}")
    seconds_before = history.seconds
    start = time.perf_counter()
    with console.progress(description, steps) as bar:
        bar.advance(first - 1)
        for step in range(first, steps + 1):
            losses = step_fn(step)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            count += 1
            if step % log_every == 0 or step == steps:
                means = {k: float(v) / count for k, v in sums.items()}
                if not all(map(_finite, means.values())):
                    raise AliceError(f"training diverged at step {step} (losses {means}); try a lower training.lr")
                record: dict[str, float] = {"step": step, **means}
                if step == steps or (eval_every and step % eval_every == 0):
                    record.update(validate())
                history.records.append(record)
                bar.note(" ".join(f"{k} {v:.4f}" for k, v in means.items()))
                sums, count = {}, 0
            if checkpointing is not None and checkpointing.every and step % checkpointing.every == 0 and step < steps:
                seconds = seconds_before + time.perf_counter() - start
                checkpoints.save(checkpointing.folder, run, step, sums, count, {"records": history.records, "seconds": seconds}, checkpointing.fingerprint)
            bar.advance()
    history.seconds = seconds_before + time.perf_counter() - start
    return history


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


def train_reference(
    data: ModalityData,
    intervention: Intervention,
    t: TrainingSpec,
    latent_dim: int,
    encoder_hidden: list[int],
    classifier_hidden: list[int],
    classifier_dropout: float,
    device: torch.device,
    checkpointing: Checkpointing | None = None,
) -> tuple[Encoder, Decoder, Classifier, Intervention, History]:
    """Stage 1: E, D, C and M of the reference modality."""
    torch.manual_seed(t.seed)
    num_classes = data.labels["train"].shape[1]
    encoder = Encoder(data.feature_dim, latent_dim, encoder_hidden).to(device)
    decoder = Decoder(data.feature_dim, latent_dim, encoder_hidden).to(device)
    classifier = Classifier(num_classes, latent_dim, classifier_hidden, classifier_dropout).to(device)
    intervention = intervention.to(device)
    opt_main = _adam([*encoder.parameters(), *decoder.parameters(), *classifier.parameters()], t)
    opt_sem = _adam(list(intervention.parameters()), t)
    m_params = list(intervention.parameters())
    x_all, y_all, annotated = data.features["train"], data.labels["train"], data.annotated
    gen = _generator(device, t.seed)
    sampler = BatchSampler(x_all.shape[0], t.batch_size, gen, device)

    def step(_: int) -> dict[str, torch.Tensor]:
        idx = sampler.next()
        x, y = x_all[idx], y_all[idx]
        # 1. reconstruction + classification on E, D, C
        classifier.train()
        z = encoder(x)
        rec = reconstruction_loss(decoder(z), x)
        cls = masked_bce(classifier(z), y, annotated)
        opt_main.zero_grad(set_to_none=True)
        (t.rec_weight * rec + t.cls_weight * cls).backward()
        opt_main.step()
        # 2. semantic consistency on M alone, with z recomputed after the update
        classifier.eval()  # a frozen target: no dropout
        with torch.no_grad():
            z = encoder(x)
        sem = semantic_loss(z, y, annotated, encoder, decoder, classifier, intervention, gen)
        grads = torch.autograd.grad(t.sem_weight * sem, m_params)  # E, D, C get no gradient
        for p, g in zip(m_params, grads):
            p.grad = g
        opt_sem.step()
        return {"rec": rec, "cls": cls, "sem": sem}

    run = RunState(
        {"encoder": encoder, "decoder": decoder, "classifier": classifier, "intervention": intervention},
        {"main": opt_main, "sem": opt_sem}, {"batches": gen}, sampler,
    )
    history = _loop(
        t.steps, "training reference space", step,
        lambda: validation_losses(data, encoder, decoder, classifier, intervention, t.seed),
        t.eval_every, run, checkpointing,
    )
    for m in (encoder, decoder, classifier, intervention):
        m.eval()
    return encoder, decoder, classifier, intervention, history


def train_adapter(
    data: ModalityData,
    classifier: Classifier,
    intervention: Intervention,
    t: TrainingSpec,
    latent_dim: int,
    encoder_hidden: list[int],
    device: torch.device,
    checkpointing: Checkpointing | None = None,
) -> tuple[Encoder, Decoder, History]:
    """Stage 2: a new modality's E_m, D_m against the frozen C_ref, M_ref."""
    classifier, intervention = classifier.to(device).eval(), intervention.to(device).eval()
    for p in (*classifier.parameters(), *intervention.parameters()):
        p.requires_grad_(False)
    frozen_before = state_digest(classifier, intervention)
    torch.manual_seed(t.seed)
    encoder = Encoder(data.feature_dim, latent_dim, encoder_hidden).to(device)
    decoder = Decoder(data.feature_dim, latent_dim, encoder_hidden).to(device)
    e_params, d_params = list(encoder.parameters()), list(decoder.parameters())
    opt = _adam([*e_params, *d_params], t)
    x_all, y_all, annotated = data.features["train"], data.labels["train"], data.annotated
    gen = _generator(device, t.seed)
    sampler = BatchSampler(x_all.shape[0], t.batch_size, gen, device)

    def step(_: int) -> dict[str, torch.Tensor]:
        idx = sampler.next()
        x, y = x_all[idx], y_all[idx]
        z = encoder(x)
        rec = reconstruction_loss(decoder(z), x)
        cls = masked_bce(classifier(z), y, annotated)
        sem = semantic_loss(z.detach(), y, annotated, encoder, decoder, classifier, intervention, gen)
        opt.zero_grad(set_to_none=True)
        (t.rec_weight * rec + t.cls_weight * cls).backward()
        # the semantic term reaches E_m only (not D_m, and never C_ref or M_ref)
        for p, g in zip(e_params, torch.autograd.grad(t.sem_weight * sem, e_params)):
            p.grad = g if p.grad is None else p.grad + g
        opt.step()
        return {"rec": rec, "cls": cls, "sem": sem}

    run = RunState({"encoder": encoder, "decoder": decoder}, {"main": opt}, {"batches": gen}, sampler)
    history = _loop(
        t.steps, f"training {data.modality} adapter", step,
        lambda: validation_losses(data, encoder, decoder, classifier, intervention, t.seed),
        t.eval_every, run, checkpointing,
    )
    if state_digest(classifier, intervention) != frozen_before:
        raise AssertionError("C_ref or M_ref changed during stage 2; this is a bug in ALICE")
    return encoder.eval(), decoder.eval(), history


def training_summary(t: TrainingSpec, history: History, device: torch.device) -> dict[str, Any]:
    return {
        "settings": vars(t).copy(),
        "device": str(device),
        "seconds": round(history.seconds, 2),
        "steps_per_second": round(t.steps / history.seconds, 2) if history.seconds else None,
        "final": history.last(),
        "history": history.records,
    }
