"""Which backbone suits a data set, measured: the linear probe of ``alice recipe init``.

Every installed backbone is asked which option sets of it would read the data set's inputs here
(:meth:`Backbone.candidates`: the core names none). On a seeded sample of the training split (a
few hundred items) each candidate's features are extracted, through the feature cache
(:func:`alice.data.features.extract_sample`, so a later build takes the sample's rows from
there), and each item of the sample is scored by a ridge classifier per class fitted on the other
folds of it: the candidate with the best macro AUROC of these out-of-fold scores is chosen (over
the classes with positives and negatives in every fitting part; every candidate is scored on the
same items, folds and classes). Linear separability of frozen features is what the encoders build
on, so it is a fair, quick proxy for what a reference or an adapter will reach.

Why a ridge classifier rather than logistic regression: it fits every class of a fold in one
linear solve, where logistic regression is an iterative fit per class and fold (80 classes times
5 folds on two CPU cores would take longer than the extraction); AUROC reads only the ranking of
the scores, which least squares on the 0/1 labels gives as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alice import console
from alice.core.metrics import classification_metrics
from alice.data.features import extract_sample
from alice.data.loading import make_backbone
from alice.data.recipes import BackboneSpec, ProbeSpec
from alice.errors import AliceError
from alice.plugin.dataset import DataSet
from alice.plugin.manager import describe, get_registry
from alice.tables import Table, cell


@dataclass
class Candidate:
    """One backbone with one set of options, and what the probe measured of it."""

    spec: BackboneSpec
    plugin: str
    feature_dim: int | None = None
    auroc: float | None = None
    seconds: float | None = None  # extracting the sample's features (the model's loading included)
    cached: bool = False  # the sample's features came from the feature cache
    error: str = ""  # why it could not be measured

    @property
    def label(self) -> str:
        opts = ", ".join(f"{k} = {v}" for k, v in self.spec.options.items())
        return f"{self.spec.name} ({opts})" if opts else self.spec.name

    def to_json(self) -> dict[str, Any]:
        return {
            "backbone": self.spec.name,
            "options": self.spec.options,
            "plugin": self.plugin,
            "feature_dim": self.feature_dim,
            "auroc": self.auroc,
            "seconds": self.seconds,
            "cached": self.cached,
            "error": self.error,
        }


@dataclass
class Probe:
    """The comparison: every candidate, the sample it was measured on, and the one chosen (None: none scored)."""

    candidates: list[Candidate]
    items: int = 0
    folds: int = 0
    classes: int = 0
    chosen: Candidate | None = None

    def table(self) -> Table:
        errors = any(c.error for c in self.candidates)
        rows = [
            [
                c.label + ("  (chosen)" if c is self.chosen else ""),
                c.feature_dim,
                c.auroc,
                None if c.seconds is None else f"{c.seconds:.1f} s" + (" (cached)" if c.cached else ""),
            ]
            + ([c.error] if errors else [])
            for c in self.candidates
        ]
        note = (
            f"{self.items} training items in {self.folds} folds, each scored by a ridge classifier per class "
            f"fitted on the other folds: macro AUROC over the {self.classes} classes with positives and negatives in "
            "every fitting part; extraction: the sample's features, the model's loading included"
        )
        columns = ["backbone", "features", "AUROC", "extraction"] + (["note"] if errors else [])
        return Table("Backbones measured by a linear probe", columns, rows, note)

    def comment(self) -> list[str]:
        """The comparison as recipe comment lines."""
        width = max(len(c.label) for c in self.candidates)
        lines = [
            f"# Chosen by a linear probe on {self.items} training items in {self.folds} folds (a ridge classifier per",
            f"# class fitted on the other folds scores each; macro AUROC over {self.classes} classes).",
            "# --backbone forces one.",
            f"#   {'backbone'.ljust(width)}  features  AUROC  extraction",
        ]
        for c in self.candidates:
            seconds = "" if c.seconds is None else f"{c.seconds:.1f} s" + (" (cached)" if c.cached else "")
            mark = "  <- chosen" if c is self.chosen else (f"  ({c.error})" if c.error else "")
            lines.append(
                f"#   {c.label.ljust(width)}  {cell(c.feature_dim):>8}  {cell(c.auroc):>5}  {seconds:>10}{mark}"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "folds": self.folds,
            "classes": self.classes,
            "candidates": [c.to_json() for c in self.candidates],
            "chosen": None if self.chosen is None else self.candidates.index(self.chosen),
        }


def find_candidates(
    modality: str, sample: list[Any], models: list[str] | None = None, only: list[str] | None = None
) -> list[Candidate]:
    """Every installed backbone's option sets that read ``sample`` (inputs of a data set of ``modality``).

    ``only`` keeps the backbones it names (each must be installed); ``models`` are model folders the user
    gave, offered to every backbone. A backbone whose plugin failed to load is left out (``alice plugins
    list`` names it); one whose ``candidates`` raises is left out with a warning naming it.
    """
    registry = get_registry()
    names = registry.names("backbone")
    for name in only or ():
        registry.backbone(name)  # an unknown name: one line listing the known ones
    out: list[Candidate] = []
    for name in names:
        if only and name not in only:
            continue
        try:
            cls = registry.backbone(name)
        except AliceError:
            continue
        plugin = registry.provider("backbone", name)
        try:
            offered = list(cls.candidates(modality, sample, list(models or ())))
        except Exception as exc:  # a plugin's bug must not stop recipe init: the other backbones still compete
            console.warn(
                f"backbone {name!r} (plugin {plugin!r}) could not say whether it reads this data: {describe(exc)}"
            )
            continue
        out += [
            Candidate(BackboneSpec(name, dict(options)), plugin) for options in offered if isinstance(options, dict)
        ]
    for folder in models or ():
        if not any(str(folder) in map(str, c.spec.options.values()) for c in out):
            console.warn(f"no installed backbone reads {modality} data with the model folder {folder}; it is left out")
    return out


def draw_sample(n: int, spec: ProbeSpec) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the sample of a split of ``n`` items (sorted), and the fold of each of them."""
    rng = np.random.default_rng(spec.seed)
    rows = np.sort(rng.choice(n, size=min(spec.items, n), replace=False))
    return rows, rng.permutation(len(rows)) % min(spec.folds, len(rows))


def scored_classes(labels: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """The classes with positives and negatives in every fold's fitting part: each of their scores comes from a
    fitted probe (and each has both outcomes among the scored items)."""
    out = np.ones(labels.shape[1], dtype=bool)
    for f in np.unique(fold):
        part = labels[fold != f]
        out &= (part.sum(0) > 0) & (part.sum(0) < len(part))
    return out


def probe_auroc(
    features: torch.Tensor, labels: np.ndarray, fold: np.ndarray, classes: np.ndarray, spec: ProbeSpec
) -> float | None:
    """Macro AUROC over ``classes`` of out-of-fold scores: for each fold, a ridge classifier (least squares on the
    0/1 labels, one per class, all in one solve) fitted on the other folds scores it. None when no class can be
    scored.

    Features are standardised (as training does), and the ridge's strength is ``spec.ridge`` times the mean
    non-zero eigenvalue of the sample's Gram matrix, so a 144-number and a 1,280-number backbone are
    regularised alike.
    """
    from sklearn.linear_model import Ridge

    if not classes.any():
        return None
    x = features.double().numpy()
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std < 1e-6, 1.0, std)
    alpha = spec.ridge * float((x**2).sum()) / max(1, min(x.shape))
    y = labels[:, classes]
    scores = np.zeros(labels.shape, dtype=np.float64)
    for f in np.unique(fold):
        fit, held = fold != f, fold == f
        model = Ridge(alpha=alpha).fit(x[fit], y[fit])
        scores[np.ix_(held, classes)] = model.predict(x[held]).reshape(int(held.sum()), -1)
    m = classification_metrics(scores, labels, np.full(labels.shape[1], 0.5), classes)
    return m["auroc"] if m["classes_scored"] else None


def run_probe(
    dataset: DataSet, candidates: list[Candidate], spec: ProbeSpec | None = None, device: torch.device | None = None
) -> Probe:
    """Measure each candidate on a sample of ``dataset``'s training split; the best AUROC is chosen."""
    spec = spec or ProbeSpec()
    device = device or torch.device("cpu")
    split = dataset.split("train")
    rows, fold = draw_sample(len(split.inputs), spec)
    labels = np.asarray(split.labels, dtype=np.float32)[rows]
    classes = scored_classes(labels, fold)
    inputs = [split.inputs[int(i)] for i in rows]
    probe = Probe(candidates, len(rows), int(fold.max()) + 1, int(classes.sum()))
    for c in candidates:
        try:
            backbone, c.plugin = make_backbone(c.spec)
            if not backbone.reads(dataset.modality):
                c.error = f"does not read {dataset.modality}"
                continue
            backbone.bind(inputs=inputs)
            c.feature_dim = backbone.feature_dim
            start = time.perf_counter()
            feats, c.cached = extract_sample(
                backbone,
                split.inputs,
                rows.tolist(),
                dataset_identity=dataset.identity(),
                split="train",
                device=device,
                plugin=c.plugin,
            )
            c.seconds = time.perf_counter() - start
            c.auroc = probe_auroc(feats, labels, fold, classes, spec)
            if c.auroc is None:
                c.error = "no class has positives and negatives in every fold's fitting part"
        except AliceError as exc:  # this candidate cannot be measured here; the others still can
            c.error = str(exc)
    # best first (the table and the recipe's comment read that way); on a tie at the three decimals shown, the
    # smaller feature size, then the order the backbones are registered in
    probe.candidates = sorted(
        candidates, key=lambda c: (c.auroc is None, -round(c.auroc or 0.0, 3), c.feature_dim or 0)
    )
    if probe.candidates[0].auroc is not None:
        probe.chosen = probe.candidates[0]
    return probe
