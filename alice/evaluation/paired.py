"""Paired fine-tuning of an ALICE space (or from scratch) on N pairs, and the sample-efficiency sweep.

``alice align clip`` writes a new folder holding the reference byte for byte
and the two fine-tuned adapters (an encoder that moved gets its decoder fitted
to it again, :func:`fit_decoder`); ``alice eval --pairs N`` adds CLIP, CyCLIP
and ALICE then CLIP rows to Table 2; ``alice sweep pairs`` runs every method
over several N and seeds. The losses and the training loop are in
:mod:`alice.evaluation.contrastive`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice import console
from alice.artifacts import modelcard
from alice.artifacts.format.history import Job
from alice.artifacts.format.history import read as read_history
from alice.artifacts.format.layout import HISTORY_FILE
from alice.artifacts.loaded import Adapter, ReferenceSpace
from alice.artifacts.publish import AdapterWeights, derived_reference_files, now, refuse_existing, write_reference
from alice.config.evaluation import DECODER_STEPS, METHODS, PairedSpec
from alice.config.training import FAST_PATH_CHOICES, TrainingSpec
from alice.core.alignment import SearchEncoder
from alice.core.metrics import label_retrieval, label_set_ceiling, recall_at_k
from alice.core.modules import Decoder, Encoder, state_digest
from alice.data.loading import ModalityData
from alice.errors import AliceError
from alice.evaluation.contrastive import Pairs, draw_pairs, split_holdout, train_pairs
from alice.plugin.dataset import PAIRED
from alice.plugin.tracker import Run
from alice.train.history import Trackers, history_bytes, history_record, job_settings, log_every
from alice.train.loop import History
from alice.train.stages import DecoderTrainer

#: the sweep's row of the best any search that sees only label sets can expect (ties among them at random)
CEILING = "label-set ceiling"
#: the settings of how a training step runs on its device (``training.precision`` ...): not carried to another run
FAST_PATH = set(FAST_PATH_CHOICES)
#: how the plot draws each zero-pair row: colour and line style
ZERO_PAIR_LINES = {"no training": ("grey", "--"), "ALICE only": ("black", "--"), CEILING: ("tab:green", ":")}


@dataclass
class Side:
    """One of the two modalities: its adapter, and its paired and test splits normalised as the adapter was trained."""

    adapter: Adapter
    data: ModalityData

    @property
    def name(self) -> str:
        return self.adapter.name


def load_for_pairing(reference: ReferenceSpace, name: str, device: torch.device) -> Side:
    adapter = reference.load_adapter(name).to(device)
    try:
        data = adapter.load_data((PAIRED, "test"), device)
    except ValueError as exc:
        raise AliceError(
            f"data set {adapter.manifest.data.dataset!r} of adapter {name!r} has no paired split ({exc})"
        ) from None
    return Side(adapter, data)


def make_encoders(method: str, a: Side, b: Side, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Copies of the ALICE encoders, or fresh ones of the same architecture (seeded) for training from scratch."""
    from_alice, _ = METHODS[method]
    if from_alice:  # in search space: an adapter that transforms its search latents is fine-tuned on them
        return copy.deepcopy(a.adapter.search_encoder()), copy.deepcopy(b.adapter.search_encoder())
    torch.manual_seed(seed)
    return fresh_encoder(a.adapter), fresh_encoder(b.adapter)


def fresh_encoder(adapter: Adapter) -> Encoder:
    """An untrained encoder of the adapter's architecture, on its device (the no-training baseline; seed first)."""
    device = next(adapter.encoder.parameters()).device
    return Encoder(adapter.feature_dim, adapter.latent_dim, adapter.manifest.encoder_hidden).to(device)


@torch.no_grad()
def retrieval_both_ways(ea: torch.nn.Module, eb: torch.nn.Module, a: Side, b: Side) -> dict[str, dict[str, float]]:
    za, zb = ea.eval()(a.data.features["test"]), eb.eval()(b.data.features["test"])
    both = a.data.mapping.annotated & b.data.mapping.annotated
    out = {}
    for (q, zq), (g, zg) in (((a, za), (b, zb)), ((b, zb), (a, za))):
        yq, yg = q.data.labels["test"].cpu().numpy(), g.data.labels["test"].cpu().numpy()
        pq, pg = q.data.pair_ids["test"], g.data.pair_ids["test"]
        out[f"{q.name} -> {g.name}"] = {
            **label_retrieval(zq, yq, zg, yg, both),
            **recall_at_k(zq, pq, zg, pg),
            "gallery_size": int(zg.shape[0]),
        }
    return out


def ceiling_both_ways(a: Side, b: Side) -> dict[str, dict[str, float]]:
    """The best R@k a search that sees only label sets can expect on the test splits, both ways (label exact 1)."""
    both = a.data.mapping.annotated & b.data.mapping.annotated
    out = {}
    for q, g in ((a, b), (b, a)):
        yq, yg = q.data.labels["test"].cpu().numpy(), g.data.labels["test"].cpu().numpy()
        pq, pg = q.data.pair_ids["test"], g.data.pair_ids["test"]
        out[f"{q.name} -> {g.name}"] = {
            "label_exact": 1.0,
            **label_set_ceiling(yq, pq, yg, pg, both),
            "gallery_size": len(pg),
        }
    return out


def fine_tune(
    method: str, a: Side, b: Side, n_pairs: int, spec: PairedSpec, trackers: Trackers | None = None
) -> tuple[torch.nn.Module, torch.nn.Module, dict[str, Any]]:
    """Train one method on ``n_pairs`` pairs drawn from the paired splits (seeded by ``spec.seed``).

    From ALICE, ``spec.holdout`` of the pairs are held out to choose the step by (the start included); the
    record of the run is :func:`~alice.evaluation.contrastive.train_pairs`'s (its history among it, ``points``).
    """
    _, loss = METHODS[method]
    ia, ib = draw_pairs(a.data.pair_ids[PAIRED], b.data.pair_ids[PAIRED], n_pairs, spec.seed)
    pairs = Pairs(a.data.features[PAIRED][torch.as_tensor(ia)], b.data.features[PAIRED][torch.as_tensor(ib)])
    train, held = split_holdout(pairs, spec.holdout_for(method), spec.seed)
    ea, eb = make_encoders(method, a, b, spec.seed)
    record = train_pairs(ea, eb, train, loss, spec.lr_for(method), spec, held, trackers)
    return ea, eb, record


@dataclass
class FittedDecoder:
    """A decoder fitted to its tuned encoder (:func:`fit_decoder`), and that job's history."""

    decoder: Decoder
    history: History
    steps: int
    eval_every: int


def inner_encoder(encoder: torch.nn.Module) -> Encoder:
    """The encoder an adapter stores (search's transform, when it has one, stays as stored)."""
    return encoder.encoder if isinstance(encoder, SearchEncoder) else encoder


def decoder_training(adapter: Adapter, steps: int | None) -> TrainingSpec:
    """How an adapter's decoder is fitted again: as the adapter was trained (rate, batch, loss weights, seed),
    for ``steps`` steps (None: :data:`DECODER_STEPS`, or the adapter's own steps if fewer), validated ten times;
    the step runs as this device's defaults choose (precision, optimizer, compile), whatever it was trained on."""
    recorded = (adapter.manifest.training or {}).get("settings", {})
    known = {f.name for f in fields(TrainingSpec)} - FAST_PATH  # how the step ran suits the device it ran on
    t = TrainingSpec(**{k: v for k, v in recorded.items() if k in known})
    if steps is None:
        steps = min(DECODER_STEPS, t.steps)
    return replace(t, steps=steps, eval_every=max(1, steps // 10), log_every=0, checkpoint_every=0)


def decoder_data(side: Side, device: torch.device) -> ModalityData:
    """The labelled splits a decoder is fitted on, read before tuning: a split that cannot be read stops the run
    before any work."""
    try:
        return side.adapter.load_data(("train", "val"), device)
    except (AliceError, ValueError) as exc:
        raise AliceError(
            f"fitting the {side.name} decoder to its tuned encoder reads its train and val splits: {exc} "
            "(--decoder-steps 0 keeps the old decoder)"
        ) from None


def fit_decoder(
    reference: ReferenceSpace,
    side: Side,
    data: ModalityData,
    encoder: torch.nn.Module,
    steps: int | None,
    device: torch.device,
) -> FittedDecoder | None:
    """The side's decoder fitted again to its fine-tuned ``encoder`` (None: the encoder did not move, or 0 steps).

    Interventions are read through C_ref(E(D(M_ref(z)))): stage 2's L_rec and L_sem train D alone on the
    adapter's own labelled training split, ``data`` (:class:`~alice.train.stages.DecoderTrainer`), so Table 1
    holds after tuning; the encoder, and so every retrieval figure, is left as tuned.
    """
    inner = inner_encoder(encoder)
    t = decoder_training(side.adapter, steps)
    if t.steps == 0 or state_digest(inner) == state_digest(side.adapter.encoder):
        return None
    trainer = DecoderTrainer(data, inner, side.adapter.decoder, reference.classifier, reference.intervention, t, device)
    try:
        decoder, history = trainer.train()
    except AliceError as exc:
        raise AliceError(
            f"fitting the {side.name} decoder to its tuned encoder: {exc} (--decoder-steps 0 keeps the old decoder)"
        ) from None
    return FittedDecoder(decoder, history, t.steps, t.eval_every)


def align(
    reference: ReferenceSpace,
    names: tuple[str, str],
    method: str,
    n_pairs: int,
    spec: PairedSpec,
    device: torch.device,
    out: Path,
    overwrite: bool = False,
    trackers: Trackers | None = None,
    decoder_steps: int | None = None,
) -> dict[str, dict[str, float]]:
    """Fine-tune two adapters on ``n_pairs`` pairs and write ``out``: this reference byte for byte, two new adapters.

    From ALICE, an encoder that moved gets its decoder fitted to it again for ``decoder_steps`` steps
    (:func:`fit_decoder`; None: :data:`DECODER_STEPS` or fewer, 0: the old decoder kept); from scratch the
    decoders stay as they were. Each adapter's ``history.jsonl`` is its old one with this run (and the
    decoder's) added; ``trackers`` are told of the paired run as it goes. Returns the test retrieval of the
    fine-tuned encoders, both ways.
    """
    refuse_existing(out, overwrite)
    trackers = trackers or Trackers([], Path("runs"))
    a, b = load_for_pairing(reference, names[0], device), load_for_pairing(reference, names[1], device)
    settings = {"method": method, "pairs": n_pairs, **vars(spec), "lr": spec.lr_for(method)}
    space = {"path": str(reference.path), "reference_sha256": reference.sha256, "digest": reference.digest}
    job = Run("align", " and ".join(names), space, settings, spec.steps, label=f"{Path(out).name}/{'+'.join(names)}")
    from_alice, _ = METHODS[method]
    fits = from_alice and decoder_steps != 0
    labelled = [decoder_data(side, device) if fits else None for side in (a, b)]
    with trackers.running(job):
        try:
            ea, eb, run = fine_tune(method, a, b, n_pairs, spec, trackers)
        except ValueError as exc:
            raise AliceError(f"--pairs {n_pairs}: {exc}") from None
        fitted = tuple(
            fit_decoder(reference, side, data, encoder, decoder_steps, device) if data is not None else None
            for side, data, encoder in zip((a, b), labelled, (ea, eb))
        )
        _write_aligned(reference, (a, b), (ea, eb), fitted, method, n_pairs, spec, run, out, overwrite)
        results = retrieval_both_ways(ea.to(device), eb.to(device), a, b)
        trackers.end({"status": "finished", "retrieval": results})
    return results


def _write_aligned(
    reference: ReferenceSpace,
    sides: tuple[Side, Side],
    encoders: tuple[torch.nn.Module, torch.nn.Module],
    fitted: tuple[FittedDecoder | None, FittedDecoder | None],
    method: str,
    n_pairs: int,
    spec: PairedSpec,
    run: dict[str, Any],
    out: Path,
    overwrite: bool,
) -> None:
    """``out``: the reference byte for byte, and the two fine-tuned adapters (decoders fitted again where
    ``fitted`` has one) with their histories."""
    (a, b), (ea, eb) = sides, encoders
    run = dict(run)
    points = run.pop("points")
    every = log_every(spec)
    job = job_settings("align", f"{method}, {n_pairs} pairs", spec.steps, every, 0)
    record = {
        "method": method,
        "pairs": n_pairs,
        "seed": spec.seed,
        "steps": spec.steps,
        "lr": spec.lr_for(method),
        "batch_size": spec.batch_size,
        "holdout": spec.holdout_for(method),
        "patience": spec.patience,
        "margin": spec.margin,
        "partner": None,
        "from_reference": reference.sha256,
        "created": now(),
        **run,
        "history": history_record(len(points), every),
    }
    adapters = []
    for side, encoder, partner, fit in ((a, ea, b.name, fitted[0]), (b, eb, a.name, fitted[1])):
        manifest = copy.deepcopy(side.adapter.manifest)
        manifest.alignment = {**record, "partner": partner, "decoder": _decoder_record(fit)}
        inner = inner_encoder(encoder)
        adapter = side.adapter
        search_mean = adapter.search_mean
        if not isinstance(encoder, SearchEncoder):  # an encoder of its own (from scratch): no transform of the old one
            manifest.search, search_mean = None, None
        before = read_history(adapter.path / HISTORY_FILE)
        if fit is None:
            history = history_bytes(job, points, before)
        else:  # the paired run, then the decoder's fit
            fit_job = job_settings("decoder fit", side.name, fit.steps, fit.history.log_every, fit.eval_every)
            history = history_bytes(fit_job, fit.history.records, [*before, Job(job, points)])
        weights = AdapterWeights(
            inner.cpu(),
            (fit.decoder if fit is not None else adapter.decoder).cpu(),
            adapter.feature_mean,
            adapter.feature_std,
            manifest,
            search_mean,
            history,
        )
        adapters.append(weights)
    files = derived_reference_files(reference, adapters)
    files.update(modelcard.cards(files, design_description=reference.intervention.description))
    write_reference(out, files, overwrite)


def _decoder_record(fit: FittedDecoder | None) -> dict[str, Any] | None:
    """What the manifest says of the decoder's fit (None: the old decoder kept: its encoder did not move, it was
    trained from scratch, or ``--decoder-steps 0``)."""
    if fit is None:
        return None
    final = fit.history.last()
    return {
        "steps": fit.steps,
        "seconds": round(fit.history.seconds, 2),
        **{k: final[k] for k in ("val_rec", "val_sem") if k in final},
    }


def sweep(
    reference: ReferenceSpace,
    names: tuple[str, str],
    pair_counts: list[int],
    seeds: list[int],
    methods: list[str],
    spec: PairedSpec,
    device: torch.device,
) -> dict[str, Any]:
    """Every method at every N and seed; the rows of ``sweep.json`` (see :func:`summarise`)."""
    a, b = load_for_pairing(reference, names[0], device), load_for_pairing(reference, names[1], device)
    available = len(set(a.data.pair_ids[PAIRED]) & set(b.data.pair_ids[PAIRED]))
    if max(pair_counts) > available:
        raise AliceError(f"--pairs: asked for {max(pair_counts)} pairs, but the paired split has {available}")
    torch.manual_seed(0)
    ra, rb = fresh_encoder(a.adapter), fresh_encoder(b.adapter)
    rows: list[dict[str, Any]] = [
        {"method": "no training", "pairs": 0, "seed": None, "results": retrieval_both_ways(ra, rb, a, b)},
        {
            "method": "ALICE only",
            "pairs": 0,
            "seed": None,
            "results": retrieval_both_ways(a.adapter.search_encoder(), b.adapter.search_encoder(), a, b),
        },
        {"method": CEILING, "pairs": 0, "seed": None, "results": ceiling_both_ways(a, b)},
    ]
    runs = [(m, n, s) for m in methods for n in pair_counts for s in seeds]
    start = time.perf_counter()
    with console.progress("paired fine-tuning sweep", len(runs)) as bar:
        for method, n, seed in runs:
            try:
                ea, eb, run = fine_tune(method, a, b, n, replace(spec, seed=seed))
            except ValueError as exc:
                raise AliceError(f"--pairs {n}: {exc}") from None
            rows.append(
                {"method": method, "pairs": n, "seed": seed, **run, "results": retrieval_both_ways(ea, eb, a, b)}
            )
            bar.note(f"{method} N={n} seed={seed}")
            bar.advance()
    return {
        "reference": {"path": str(reference.path), "sha256": reference.sha256},
        "modalities": list(names),
        "settings": {
            "pairs": pair_counts,
            "seeds": seeds,
            "methods": methods,
            "steps": spec.steps,
            "lr_scratch": spec.lr,
            "lr_from_alice": spec.lr_for("alice+clip"),
            "batch_size": spec.batch_size,
            "holdout_from_alice": spec.holdout_for("alice+clip"),
            "patience": spec.patience,
            "margin": spec.margin,
        },
        "paired_split_size": available,
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
                pts = sorted(
                    (s["pairs"], s[k], s[f"{k}_std"])
                    for s in summary
                    if s["method"] == method and s["direction"] == direction
                )
                x, y, e = (np.array(v) for v in zip(*pts))
                ax.plot(x, y, marker="o", label=method)
                ax.fill_between(x, y - e, y + e, alpha=0.2)
            for s in summary:
                if s["pairs"] == 0 and s["direction"] == direction:
                    colour, style = ZERO_PAIR_LINES.get(s["method"], ("black", "--"))
                    label = s["method"] if s["method"] == CEILING else f"{s['method']} (0 pairs)"
                    ax.axhline(s[k], linestyle=style, linewidth=1, color=colour, label=label)
            ax.set_xscale("log")
            ax.set_xlabel("pairs")
            ax.set_title(f"{direction}: {k}")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
