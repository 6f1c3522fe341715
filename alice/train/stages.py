"""The two training stages of ALICE, and a decoder fitted again after paired tuning.

Stage 1 (reference space), one modality, per step as in the authors' code:
  1. L = w_rec * MSE(D(E(x)), x) + w_cls * BCE(C(E(x)), y)   -> Adam step on E, D, C
  2. z = E(x) recomputed after that update, detached;
     L_sem = BCE(C(E(D(M_k(z)))), Delta_k(y))                   -> Adam step on M alone
     (E, D, C are frozen for this term: only M's gradient is computed.)

Stage 2 (a new modality m), C_ref and M_ref frozen and never written:
  L = w_rec * L_rec(E_m, D_m) + w_cls * BCE(C_ref(E_m(x)), y)   -> E_m, D_m
    + w_sem * BCE(C_ref(E_m(D_m(M_ref_k(z)))), Delta_k(y))    -> E_m only

After paired fine-tuning has moved an encoder (``alice align``), its decoder is fitted again, E,
C_ref and M_ref frozen and never written (:class:`DecoderTrainer`):
  L = w_rec * L_rec(E, D) + w_sem * BCE(C_ref(E(D(M_ref_k(z)))), Delta_k(y))  -> D only

Batches are indices drawn on the training device into feature tensors that
already live there: no DataLoader, no host-to-device copy per step.

``training.precision``, ``.optimizer`` and ``.compile`` choose how the step
runs (:class:`FastPath`); under torchrun each process trains on its slice of
the same global batch and gradients are averaged (:mod:`alice.distributed`).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import torch

from alice import distributed
from alice.config.training import FAST_PATH_CHOICES, ModelSpec, TrainingSpec
from alice.core.alignment import AlignmentTarget, alignment_loss
from alice.core.interventions import Intervention, InterventionBatch, sample_interventions
from alice.core.losses import masked_bce, reconstruction_loss
from alice.core.metrics import mean_auroc
from alice.core.modules import Classifier, Decoder, Encoder, state_digest
from alice.data.loading import ModalityData
from alice.errors import AliceError
from alice.train.checkpoints import RunState
from alice.train.history import Trackers, log_every
from alice.train.loop import BatchSampler, Checkpointing, History, run_steps


def semantic_loss(
    z: torch.Tensor,
    y: torch.Tensor,
    annotated: torch.Tensor,
    encoder: Encoder,
    decoder: Decoder,
    classifier: Classifier,
    intervention: Intervention,
    generator: torch.Generator | None,
    k: InterventionBatch | None = None,
    denominator: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_sem: the classifier must read Delta_k(y) in E(D(M_k(z))).

    ``k`` (drawn with ``generator`` when not given) and ``denominator`` (the
    count of scored entries, see :func:`alice.core.losses.masked_bce`) let a process
    score its slice of a global batch exactly as its share of the global loss.
    """
    if k is None:
        k = sample_interventions(y, annotated, getattr(intervention, "num_templates", 1), generator)
    logits = classifier(encoder(decoder(intervention(z, k))))
    mask = annotated[None, :] & k.valid[:, None]
    return masked_bce(logits, k.apply_to_labels(y), mask, denominator)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


@dataclass
class FastPath:
    """How a step runs on its device (``training.precision``, ``.optimizer``, ``.compile``, ``.dropout_mask``).

    The defaults keep CPU arithmetic exactly as it always was (fp32, torch's
    per-parameter Adam loop, eager, torch's dropout); on CUDA they take bf16
    autocast and the fused Adam kernel, and a CPU step that is compiled draws
    its dropout masks 16 bits per element. Each choice was kept only where its
    losses match the plain path (tests/test_training.py, docs/performance.md).
    """

    autocast: torch.dtype | None  # None: plain fp32
    adam: dict[str, Any]  # extra torch.optim.Adam arguments
    compile_mode: str | None  # None: eager
    dropout_mask: str = "torch"  # see alice.core.modules.Dropout

    @classmethod
    def resolve(cls, t: TrainingSpec, device: torch.device) -> FastPath:
        for name, known in FAST_PATH_CHOICES.items():
            if getattr(t, name) not in known:
                raise AliceError(f"training.{name} must be one of {', '.join(known)}, got {getattr(t, name)!r}")
        precision, optimizer, compile_mode, dropout_mask = t.precision, t.optimizer, t.compile, t.dropout_mask
        cuda = device.type == "cuda"
        if precision == "bf16" or (precision == "auto" and cuda):
            autocast = torch.bfloat16
        else:
            autocast = None
        adam = {
            "auto": {"fused": True} if cuda else {},  # CPU: torch's default loop, bit-for-bit as before
            "loop": {"foreach": False},
            "foreach": {"foreach": True},
            "fused": {"fused": True},
        }[optimizer]
        if dropout_mask == "auto":
            # compiled on CPU, inductor's own per-element random numbers replace torch's anyway, at 19 ns each
            dropout_mask = "16bit" if compile_mode != "off" and device.type == "cpu" else "torch"
        return cls(autocast, adam, None if compile_mode == "off" else compile_mode, dropout_mask)

    def autocast_context(self, device: torch.device):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast)

    def compile(self, fn):
        if self.compile_mode is None:
            return fn
        try:
            return torch.compile(fn, mode=None if self.compile_mode == "default" else self.compile_mode, dynamic=False)
        except Exception as exc:  # no compiler on this machine, an unsupported platform
            raise AliceError(
                f"training.compile = {self.compile_mode!r} is not available here ({type(exc).__name__}); set "
                'training.compile = "off"'
            ) from None


def _adam(params, t: TrainingSpec, fast: FastPath | None = None) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=t.lr, amsgrad=t.amsgrad, **(fast.adam if fast else {}))


@contextlib.contextmanager
def _frozen(*modules: torch.nn.Module):
    """Parameters that need no gradient in this part of the step (compiled graphs then compute none)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@torch.no_grad()
def validation_figures(
    data: ModalityData, encoder, decoder, classifier, intervention, seed: int, split: str = "val", chunk: int = 4096
) -> dict[str, float]:
    """Mean L_rec, L_cls, L_sem on a held-out split (fixed intervention draws), and the classifier's mean AUROC over
    annotated classes on it (NaN when no class has both outcomes), from one pass of the encoder."""
    modes = [m.training for m in (encoder, decoder, classifier, intervention)]
    for m in (encoder, decoder, classifier, intervention):
        m.eval()
    x, y = data.features[split], data.labels[split]
    annotated = data.annotated
    gen = _generator(x.device, seed + 1)
    totals = {"rec": 0.0, "cls": 0.0, "sem": 0.0}
    probs = []
    for lo in range(0, x.shape[0], chunk):
        xb, yb = x[lo : lo + chunk], y[lo : lo + chunk]
        z = encoder(xb)
        w = xb.shape[0]
        logits = classifier(z)
        probs.append(torch.sigmoid(logits).float().cpu())
        totals["rec"] += reconstruction_loss(decoder(z), xb).item() * w
        totals["cls"] += masked_bce(logits, yb, annotated).item() * w
        totals["sem"] += semantic_loss(z, yb, annotated, encoder, decoder, classifier, intervention, gen).item() * w
    for m, mode in zip((encoder, decoder, classifier, intervention), modes):
        m.train(mode)
    auroc = mean_auroc(torch.cat(probs).numpy(), y.cpu().numpy(), data.mapping.annotated)
    return {**{f"val_{k}": v / x.shape[0] for k, v in totals.items()}, "val_auroc": auroc}


def _global_draws(
    sampler: BatchSampler,
    y_all: torch.Tensor,
    annotated: torch.Tensor,
    intervention: Intervention,
    gen: torch.Generator,
    batch_size: int,
) -> tuple[torch.Tensor, InterventionBatch, torch.Tensor | None]:
    """This process's batch indices and interventions, and L_sem's denominator (None: one process).

    Every process draws the same global batch and the same interventions from
    the same generator (in the order a single process always drew them: batch,
    then interventions) and keeps its slice. Under torchrun each slice's L_sem
    is divided by its share of the global count of scored entries, so the mean
    of the processes' gradients is the global batch's gradient.
    """
    idx = sampler.next()
    k = sample_interventions(y_all[idx], annotated, getattr(intervention, "num_templates", 1), gen)
    if not distributed.active():
        return idx, k, None
    part = distributed.batch_slice(batch_size)
    count = (annotated.sum() * k.valid.sum()).to(torch.float32).clamp_min(1.0)
    return idx[part], k[part], count / distributed.world_size()


class _Trainer:
    """What the trainers share: settings, the fast path, batches drawn on the device, L_sem of a batch.

    Subclasses make their modules between ``__init__`` and ``_start`` (the global seed is set
    first, so initial weights follow ``training.seed``) and define ``_main_losses`` (and ``_sem_loss`` where it
    does not take the batch's latents).
    """

    encoder: Encoder
    decoder: Decoder
    classifier: Classifier
    intervention: Intervention

    def __init__(self, data: ModalityData, t: TrainingSpec, device: torch.device) -> None:
        torch.manual_seed(t.seed)
        self.t, self.device, self.data = t, device, data
        self.fast = FastPath.resolve(t, device)

    def _start(self) -> None:
        data, t = self.data, self.t
        self.x_all, self.y_all, self.annotated = data.features["train"], data.labels["train"], data.annotated
        self.gen = _generator(self.device, t.seed)
        self.sampler = BatchSampler(self.x_all.shape[0], t.batch_size, self.gen, self.device)
        self._main = self.fast.compile(self._main_losses)
        self._sem = self.fast.compile(self._sem_loss)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, InterventionBatch, torch.Tensor | None]:
        """This process's features, labels and interventions of the next global batch, and L_sem's denominator."""
        draws = _global_draws(self.sampler, self.y_all, self.annotated, self.intervention, self.gen, self.t.batch_size)
        idx, k, denominator = draws
        return self.x_all[idx], self.y_all[idx], k, denominator

    def _semantic(
        self, z: torch.Tensor, y: torch.Tensor, k: InterventionBatch, denominator: torch.Tensor | None
    ) -> torch.Tensor:
        modules = (self.encoder, self.decoder, self.classifier, self.intervention)
        return semantic_loss(z, y, self.annotated, *modules, None, k, denominator)

    def _sem_loss(
        self, z: torch.Tensor, y: torch.Tensor, k: InterventionBatch, denominator: torch.Tensor | None
    ) -> torch.Tensor:
        """L_sem of the batch from its latents ``z`` (stage 1 recomputes them from ``x`` after its update)."""
        return self._semantic(z, y, k, denominator)

    def validate(self) -> dict[str, float]:
        """The validation figures of a point (:func:`validation_figures`)."""
        modules = (self.encoder, self.decoder, self.classifier, self.intervention)
        return validation_figures(self.data, *modules, self.t.seed)

    def run(self, description: str, checkpointing: Checkpointing | None, trackers: Trackers | None = None) -> History:
        """``training.steps`` steps (from a checkpoint's when resuming), with validation figures and checkpoints."""
        t = self.t
        return run_steps(
            t.steps,
            description,
            self.step,
            self.validate,
            t.eval_every,
            self.run_state(),
            checkpointing,
            log_every(t),
            trackers,
        )


class ReferenceTrainer(_Trainer):
    """Stage 1's modules, optimizers and training step, as ``alice reference build`` runs them.

    ``ReferenceTrainer(data, intervention, model, training, device).train()`` trains E, D, C and M
    (M's latent size must be ``model.latent_dim``).
    """

    def __init__(
        self, data: ModalityData, intervention: Intervention, model: ModelSpec, t: TrainingSpec, device: torch.device
    ) -> None:
        super().__init__(data, t, device)
        num_classes = data.labels["train"].shape[1]
        latent = model.latent_dim
        self.encoder = Encoder(data.feature_dim, latent, model.encoder_hidden).to(device)
        self.decoder = Decoder(data.feature_dim, latent, model.encoder_hidden).to(device)
        self.classifier = Classifier(num_classes, latent, model.classifier_hidden, model.classifier_dropout).to(device)
        self.classifier.set_dropout_mask(self.fast.dropout_mask)
        self.intervention = intervention.to(device)
        distributed.broadcast_parameters([self.encoder, self.decoder, self.classifier, self.intervention])
        self.main_params = [*self.encoder.parameters(), *self.decoder.parameters(), *self.classifier.parameters()]
        self.m_params = list(self.intervention.parameters())
        self.opt_main = _adam(self.main_params, t, self.fast)
        self.opt_sem = _adam(self.m_params, t, self.fast)
        self._start()

    def _main_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return reconstruction_loss(self.decoder(z), x), masked_bce(self.classifier(z), y, self.annotated)

    def _sem_loss(
        self, x: torch.Tensor, y: torch.Tensor, k: InterventionBatch, denominator: torch.Tensor | None
    ) -> torch.Tensor:
        with torch.no_grad():  # z recomputed after the update, detached
            z = self.encoder(x)
        return self._semantic(z, y, k, denominator)

    def step(self, _: int = 0) -> dict[str, torch.Tensor]:
        t = self.t
        x, y, k, denominator = self._batch()
        # 1. reconstruction + classification on E, D, C
        self.classifier.train()
        with self.fast.autocast_context(self.device):
            rec, cls = self._main(x, y)
        self.opt_main.zero_grad(set_to_none=True)
        (t.rec_weight * rec + t.cls_weight * cls).backward()
        distributed.average_gradients(self.main_params)
        self.opt_main.step()
        # 2. semantic consistency on M alone, with z recomputed after the update
        self.classifier.eval()  # a frozen target: no dropout
        # compiled graphs compute every gradient their inputs ask for: freeze E, D, C for them
        frozen = (
            _frozen(self.encoder, self.decoder, self.classifier) if self.fast.compile_mode else contextlib.nullcontext()
        )
        with self.fast.autocast_context(self.device), frozen:
            sem = self._sem(x, y, k, denominator)
        grads = torch.autograd.grad(t.sem_weight * sem, self.m_params)  # E, D, C get no gradient
        for p, g in zip(self.m_params, grads):
            p.grad = g
        distributed.average_gradients(self.m_params)
        self.opt_sem.step()
        return {"rec": rec, "cls": cls, "sem": sem}

    def run_state(self) -> RunState:
        modules = {"encoder": self.encoder, "decoder": self.decoder, "classifier": self.classifier}
        return RunState(
            {**modules, "intervention": self.intervention},
            {"main": self.opt_main, "sem": self.opt_sem},
            {"batches": self.gen},
            self.sampler,
        )

    def train(
        self, checkpointing: Checkpointing | None = None, trackers: Trackers | None = None
    ) -> tuple[Encoder, Decoder, Classifier, Intervention, History]:
        """Stage 1: E, D, C and M of the reference modality, in eval mode, and the loss history."""
        history = self.run("training reference space", checkpointing, trackers)
        modules = (self.encoder, self.decoder, self.classifier, self.intervention)
        for m in modules:
            m.eval()
        return (*modules, history)


class AdapterTrainer(_Trainer):
    """Stage 2's modules, optimizer and training step against the frozen C_ref and M_ref.

    ``AdapterTrainer(data, classifier, intervention, model, training, device).train()`` trains a new
    modality's E_m and D_m (``model.encoder_hidden``), in the reference's latent size.
    """

    def __init__(
        self,
        data: ModalityData,
        classifier: Classifier,
        intervention: Intervention,
        model: ModelSpec,
        t: TrainingSpec,
        device: torch.device,
        alignment: tuple[AlignmentTarget, float] | None = None,
    ) -> None:
        self.classifier, self.intervention = classifier.to(device).eval(), intervention.to(device).eval()
        # L_align toward the reference's latent statistics, and its weight (None: the paper's stage 2)
        self.alignment = alignment
        for p in (*self.classifier.parameters(), *self.intervention.parameters()):
            p.requires_grad_(False)
        self.frozen_before = state_digest(self.classifier, self.intervention)
        super().__init__(data, t, device)
        latent = intervention.latent_dim  # the reference's latent size; model.latent_dim is stage 1's setting
        self.encoder = Encoder(data.feature_dim, latent, model.encoder_hidden).to(device)
        self.decoder = Decoder(data.feature_dim, latent, model.encoder_hidden).to(device)
        distributed.broadcast_parameters([self.encoder, self.decoder])
        self.e_params, self.d_params = list(self.encoder.parameters()), list(self.decoder.parameters())
        self.opt = _adam([*self.e_params, *self.d_params], t, self.fast)
        self._start()

    def _main_losses(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        z = self.encoder(x)
        align = alignment_loss(z, y, self.alignment[0]) if self.alignment is not None else None
        return z, reconstruction_loss(self.decoder(z), x), masked_bce(self.classifier(z), y, self.annotated), align

    def step(self, _: int = 0) -> dict[str, torch.Tensor]:
        t = self.t
        x, y, k, denominator = self._batch()
        frozen = _frozen(self.decoder) if self.fast.compile_mode else contextlib.nullcontext()
        with self.fast.autocast_context(self.device):
            z, rec, cls, align = self._main(x, y)
            with frozen:  # compiled: the semantic graph must not ask for D_m's gradient
                sem = self._sem(z.detach(), y, k, denominator)
        self.opt.zero_grad(set_to_none=True)
        main = t.rec_weight * rec + t.cls_weight * cls
        if align is not None:  # L_align reaches E_m only (D_m does not see it)
            main = main + self.alignment[1] * align
        main.backward()
        # the semantic term reaches E_m only (not D_m, and never C_ref or M_ref)
        for p, g in zip(self.e_params, torch.autograd.grad(t.sem_weight * sem, self.e_params)):
            p.grad = g if p.grad is None else p.grad + g
        distributed.average_gradients([*self.e_params, *self.d_params])
        self.opt.step()
        losses = {"rec": rec, "cls": cls, "sem": sem}
        if align is not None:
            losses["align"] = align
        return losses

    def run_state(self) -> RunState:
        return RunState(
            {"encoder": self.encoder, "decoder": self.decoder}, {"main": self.opt}, {"batches": self.gen}, self.sampler
        )

    def train(
        self, checkpointing: Checkpointing | None = None, trackers: Trackers | None = None
    ) -> tuple[Encoder, Decoder, History]:
        """Stage 2: the new modality's E_m and D_m in eval mode, and the losses; C_ref and M_ref checked unchanged."""
        history = self.run(f"training {self.data.modality} adapter", checkpointing, trackers)
        if state_digest(self.classifier, self.intervention) != self.frozen_before:
            raise AssertionError("C_ref or M_ref changed during stage 2; this is a bug in ALICE")
        return self.encoder.eval(), self.decoder.eval(), history


class DecoderTrainer(_Trainer):
    """A decoder fitted again to an encoder that moved (paired fine-tuning), everything else frozen.

    An intervention is read through the cycle C_ref(E(D(M_ref(z)))); once E is fine-tuned on pairs, the
    decoder it was trained with no longer inverts it, and Table 1 falls. This trains D alone on stage 2's
    L_rec and on L_sem, whose gradient stage 2 sends to E_m and this sends to D (E, C_ref and M_ref are
    never written, checked by hash):
    ``DecoderTrainer(data, encoder, decoder, classifier, intervention, training, device).train()`` returns a
    new decoder, starting from ``decoder`` (left as it was).
    """

    def __init__(
        self,
        data: ModalityData,
        encoder: Encoder,
        decoder: Decoder,
        classifier: Classifier,
        intervention: Intervention,
        t: TrainingSpec,
        device: torch.device,
    ) -> None:
        self.encoder = encoder.to(device).eval()
        self.classifier, self.intervention = classifier.to(device).eval(), intervention.to(device).eval()
        super().__init__(data, t, device)
        self.decoder = copy.deepcopy(decoder).to(device).train()
        self.d_params = list(self.decoder.parameters())
        self.opt = _adam(self.d_params, t, self.fast)
        self._start()

    def _main_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)  # no parameter of E asks for a gradient: z is a constant of D's step
        return z, reconstruction_loss(self.decoder(z), x)

    def step(self, _: int = 0) -> dict[str, torch.Tensor]:
        t = self.t
        x, y, k, denominator = self._batch()
        with self.fast.autocast_context(self.device):
            z, rec = self._main(x, y)
            sem = self._sem(z, y, k, denominator)
        self.opt.zero_grad(set_to_none=True)
        (t.rec_weight * rec + t.sem_weight * sem).backward()  # reaches D alone: nothing else asks for a gradient
        distributed.average_gradients(self.d_params)
        self.opt.step()
        return {"rec": rec, "sem": sem}

    def validate(self) -> dict[str, float]:
        """L_sem first (the figure the fit is for: the history's headline), then L_rec; C_ref reads E as before."""
        figures = super().validate()
        return {"val_sem": figures["val_sem"], "val_rec": figures["val_rec"]}

    def run_state(self) -> RunState:
        return RunState({"decoder": self.decoder}, {"main": self.opt}, {"batches": self.gen}, self.sampler)

    def train(self, trackers: Trackers | None = None) -> tuple[Decoder, History]:
        """The decoder fitted to the encoder, in eval mode, and the losses; E, C_ref and M_ref checked unchanged."""
        others = (self.encoder, self.classifier, self.intervention)
        before = state_digest(*others)
        with _frozen(*others):  # no gradient but D's; their flags put back after, even when the fit fails
            history = self.run(f"fitting the {self.data.modality} decoder to its tuned encoder", None, trackers)
        if state_digest(*others) != before:
            raise AssertionError("the encoder, C_ref or M_ref changed while fitting a decoder; a bug in ALICE")
        return self.decoder.eval(), history
