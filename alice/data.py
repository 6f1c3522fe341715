"""From a recipe's data set and backbone to training tensors on the device.

Raw inputs go through the backbone once (cached, see :mod:`alice.features`);
labels are mapped onto the reference vocabulary; features are standardised
with the training split's per-dimension mean and std, which the adapter keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from alice import console
from alice.backbones import Backbone
from alice.datasets import DataSet, Split
from alice.errors import AliceError
from alice.features import extract_features
from alice.labels import LabelMapping
from alice.plugins import get_registry
from alice.recipes import BackboneSpec, DataSpec, LabelSpec


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AliceError(f"unknown device {name!r} (try cpu, cuda, cuda:1, auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AliceError(f"device {name!r} asked for, but no CUDA device is available")
    return device


def make_backbone(spec: BackboneSpec) -> tuple[Backbone, str]:
    reg = get_registry()
    cls = reg.backbone(spec.name)
    try:
        return cls(**spec.options), reg.provider("backbone", spec.name)
    except TypeError as exc:
        raise AliceError(f"backbone {spec.name!r}: {_option_error(exc)}") from None
    except ValueError as exc:
        raise AliceError(f"backbone {spec.name!r}: {exc}") from None


def make_dataset(spec: DataSpec) -> DataSet:
    cls = get_registry().dataset(spec.dataset)
    try:
        return cls(**spec.options)
    except TypeError as exc:  # an option the data set does not take
        raise AliceError(f"data set {spec.dataset!r}: {_option_error(exc)}") from None
    except ValueError as exc:
        raise AliceError(f"data set {spec.dataset!r}: {exc}") from None


def _option_error(exc: TypeError) -> str:
    text = str(exc)
    if "unexpected keyword argument" in text:
        return "unknown option " + text.split("unexpected keyword argument", 1)[1].strip()
    return text


@dataclass
class ModalityData:
    """One modality's features and labels, in the reference vocabulary, on the training device."""

    modality: str
    dataset: DataSet
    backbone: Backbone
    mapping: LabelMapping
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # split -> [n, d], standardised
    labels: dict[str, torch.Tensor] = field(default_factory=dict)  # split -> [n, C]
    pair_ids: dict[str, list[str] | None] = field(default_factory=dict)
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    @property
    def annotated(self) -> torch.Tensor:
        return torch.as_tensor(self.mapping.annotated, device=self.features["train" if "train" in self.features else next(iter(self.features))].device)

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim


def _check_split(split: Split, dataset: DataSet, name: str) -> None:
    vocab = dataset.vocabulary
    if len(split.inputs) == 0:
        raise AliceError(f"data set {dataset.name!r} has an empty {name} split")
    if split.labels.shape[1] != len(vocab):
        raise AliceError(f"data set {dataset.name!r} ({name}): labels have {split.labels.shape[1]} columns, vocabulary has {len(vocab)}")
    if not np.isin(split.labels, (0.0, 1.0)).all():
        raise AliceError(f"data set {dataset.name!r} ({name}): labels must be 0 or 1")


def _check_labelled(labels: np.ndarray, dataset: DataSet, name: str) -> None:
    """Refuse a split where no sample has a label we can use; report (and keep) unlabelled samples."""
    empty = int((labels.sum(1) == 0).sum())
    if empty == len(labels):
        raise AliceError(f"data set {dataset.name!r} ({name}): no sample has any label in the reference vocabulary")
    if empty:
        console.warn(f"data set {dataset.name!r} ({name}): {empty} of {len(labels)} samples have no label; kept as negatives for every annotated class")


def load_modality(
    data: DataSpec,
    backbone_spec: BackboneSpec,
    reference_vocabulary: list[str] | None,
    device: torch.device,
    splits: tuple[str, ...] = ("train", "val"),
    labels: LabelSpec | None = None,
    normalisation: tuple[torch.Tensor, torch.Tensor] | None = None,
    extract_batch_size: int = 0,
    standardise: bool = True,
) -> ModalityData:
    """Load splits of a data set as standardised features and reference-vocabulary labels.

    With ``reference_vocabulary=None`` the data set's own vocabulary becomes the
    reference one (stage 1). ``normalisation`` (mean, std) is reused when given
    (evaluation of a trained adapter); otherwise computed on the train split.
    """
    dataset = make_dataset(data)
    backbone, plugin = make_backbone(backbone_spec)
    if dataset.modality != backbone.modality and dataset.modality not in backbone.also_reads:
        raise AliceError(
            f"backbone {backbone.name!r} reads {backbone.modality} but data set {dataset.name!r} holds {dataset.modality}"
        )
    vocab = list(dataset.vocabulary)
    labels = labels or LabelSpec()
    if reference_vocabulary is None:
        mapping = LabelMapping({c: c for c in vocab}, vocab)
    else:
        mapper = get_registry().label_mapper(labels.mapper)
        try:
            raw = mapper(vocab, list(reference_vocabulary), aliases=labels.aliases)
        except AliceError:
            raise
        except Exception as exc:
            raise AliceError(f"label mapper {labels.mapper!r} failed: {exc}") from None
        bad = {t for t in raw.values() if t is not None and t not in reference_vocabulary}
        if bad:
            raise AliceError(f"label mapper {labels.mapper!r} mapped onto labels outside the reference vocabulary: {sorted(bad)}")
        mapping = LabelMapping(raw, list(reference_vocabulary))
        mapping.check(dataset.name)
    out = ModalityData(dataset.modality, dataset, backbone, mapping)
    for name in splits:
        split = dataset.split(name)
        _check_split(split, dataset, name)
        feats = extract_features(
            backbone, split.inputs, dataset_identity=dataset.identity(), split=name,
            device=device, batch_size=extract_batch_size, plugin=plugin,
        )
        out.features[name] = feats
        mapped = mapping.apply(split.labels, vocab)
        _check_labelled(mapped, dataset, name)
        out.labels[name] = torch.as_tensor(mapped)
        out.pair_ids[name] = split.pair_ids
    if normalisation is None and not standardise:
        mean, std = torch.zeros(backbone.feature_dim), torch.ones(backbone.feature_dim)
    elif normalisation is None:
        base = out.features["train"]
        mean, std = base.mean(0), base.std(0)
        # constant dimensions (blank pixel corners, say) are left unscaled
        std = torch.where(std < 1e-6, torch.ones_like(std), std)
    else:
        mean, std = normalisation
        if mean.shape != (backbone.feature_dim,):
            raise AliceError(f"adapter normalisation has size {mean.shape[0]}, backbone {backbone.name!r} gives {backbone.feature_dim}")
    out.mean, out.std = mean.float(), std.float()
    for name in splits:
        # in place: a large split is never held twice
        out.features[name] = out.features[name].sub_(out.mean).div_(out.std).to(device)
        out.labels[name] = out.labels[name].to(device)
    return out


def describe_backbone(backbone: Backbone, spec: BackboneSpec, plugin: str | None = None) -> dict[str, Any]:
    return {"name": spec.name, "options": spec.options, "identity": backbone.identity(), "feature_dim": backbone.feature_dim}
