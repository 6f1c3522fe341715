"""From a modality's data set and backbone to training tensors on the device.

Raw inputs go through the backbone once (cached, see :mod:`alice.data.features`);
labels are mapped onto the reference vocabulary; features are standardised
with the training split's per-dimension mean and std, which the adapter keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np
import torch

from alice import console
from alice.data.features import extract_features
from alice.data.labels import LabelMapping, check_vocabulary, settle_mapping, source_aliases
from alice.data.recipes import BackboneSpec, DataSpec, LabelSpec, ModalitySpec
from alice.errors import AliceError
from alice.plugin.backbone import Backbone
from alice.plugin.dataset import DataSet, Split
from alice.plugin.manager import get_registry

#: how features are standardised: the train split's statistics, none (mean 0, std 1), or a stored (mean, std)
Normalisation = Union[Literal["train", "none"], tuple[torch.Tensor, torch.Tensor]]


def make_backbone(spec: BackboneSpec, origin: str = "") -> tuple[Backbone, str]:
    """The backbone a spec names, built from its options, and the plugin that provides it.

    ``origin``: the plugin a manifest says it came from, named if it is missing. A bad option is
    one line naming the backbone (the registry's guard, :mod:`alice.plugin.guard`).
    """
    reg = get_registry()
    return reg.backbone(spec.name, origin)(**spec.options), reg.provider("backbone", spec.name)


def make_dataset(spec: DataSpec, origin: str = "") -> DataSet:
    """The data set a spec names, built from its options (``origin`` as for :func:`make_backbone`)."""
    return get_registry().dataset(spec.dataset, origin)(**spec.options)


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
    splits: dict[str, Split] = field(default_factory=dict)  # split -> the data set's own split (raw inputs)
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    @property
    def annotated(self) -> torch.Tensor:
        return torch.as_tensor(self.mapping.annotated, device=next(iter(self.features.values())).device)

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    def inputs(self, split: str):
        """The raw inputs of a split, as the data set gives them (what a report or an index shows)."""
        return self.splits[split].inputs


def _check_split(split: Split, dataset: DataSet, name: str) -> None:
    vocab = dataset.vocabulary
    if len(split.inputs) == 0:
        raise AliceError(f"data set {dataset.name!r} has an empty {name} split")
    if split.labels.shape[1] != len(vocab):
        raise AliceError(
            f"data set {dataset.name!r} ({name}): labels have {split.labels.shape[1]} columns, vocabulary has "
            f"{len(vocab)}"
        )
    if not np.isin(split.labels, (0.0, 1.0)).all():
        raise AliceError(f"data set {dataset.name!r} ({name}): labels must be 0 or 1")


def _check_labelled(
    labels: np.ndarray, unmapped: np.ndarray, mapping: LabelMapping, dataset: DataSet, name: str
) -> None:
    """Refuse a split where no sample has a label we can use; report samples without one (kept as negatives).

    ``unmapped`` marks the samples whose every label maps to nothing (classes the reference lacks,
    aliased to ""). They hold none of the annotated classes, so they stay negatives of every one:
    left out of L_cls, a tiny space read most of them as a digit they do not show (docs/your-data.md).
    C_ref, trained where every sample holds a class, can only read them as some class; where that is
    one this modality does not annotate, :meth:`alice.api.Space.warnings` flags the reading.
    """
    empty = int((labels.sum(1) == 0).sum())
    if empty == len(labels):
        raise AliceError(f"data set {dataset.name!r} ({name}): no sample has any label in the reference vocabulary")
    outside = int(unmapped.sum())
    if empty > outside:
        console.warn(
            f"data set {dataset.name!r} ({name}): {empty - outside} of {len(labels)} samples have no label; kept as "
            "negatives for every annotated class"
        )
    if outside:
        dropped = sorted(s for s, t in mapping.mapping.items() if t is None)
        shown = ", ".join(dropped[:8]) + (f" and {len(dropped) - 8} more" if len(dropped) > 8 else "")
        console.warn(
            f"data set {dataset.name!r} ({name}): {outside} of {len(labels)} samples have only labels the reference "
            f"lacks ({shown}); kept as negatives for every annotated class: C_ref may read such inputs as a class "
            "this modality does not annotate, a reading flagged when queried"
        )


def label_mapping(dataset: DataSet, labels: LabelSpec, reference_vocabulary: list[str] | None) -> LabelMapping:
    """The data set's labels in the reference vocabulary (its own vocabulary when there is no reference yet)."""
    vocab = list(dataset.vocabulary)
    aliases = source_aliases(vocab, labels.aliases, dataset.name)
    check_vocabulary(vocab, dataset.name)
    if reference_vocabulary is None:
        return LabelMapping({c: c for c in vocab}, vocab)
    registry = get_registry()
    mapper = registry.label_mapper(labels.mapper)  # guarded: a mapper that raises names its plugin
    answer = mapper(vocab, list(reference_vocabulary), aliases=aliases)
    plugin = registry.provider("label mapper", labels.mapper)
    return settle_mapping(answer, vocab, list(reference_vocabulary), aliases, labels.mapper, plugin, dataset.name)


def load_modality(
    spec: ModalitySpec,
    reference_vocabulary: list[str] | None,
    device: torch.device,
    splits: tuple[str, ...] = ("train", "val"),
    normalisation: Normalisation = "train",
    extract_batch_size: int = 0,
) -> ModalityData:
    """Load splits of a data set as standardised features and reference-vocabulary labels.

    With ``reference_vocabulary=None`` the data set's own vocabulary becomes the
    reference one (stage 1). ``normalisation`` is "train" (the train split's
    per-dimension mean and std, computed here; constant dimensions keep std 1),
    "none" (features as they are), or a stored ``(mean, std)`` (evaluation of a
    trained adapter).
    """
    dataset = make_dataset(spec.data, spec.plugins.get("dataset", ""))
    backbone, plugin = make_backbone(spec.backbone, spec.plugins.get("backbone", ""))
    if not backbone.reads(dataset.modality):
        raise AliceError(
            f"backbone {backbone.name!r} reads {backbone.modality} but data set {dataset.name!r} holds "
            f"{dataset.modality}"
        )
    vocab = list(dataset.vocabulary)
    mapping = label_mapping(dataset, spec.labels, reference_vocabulary)
    out = ModalityData(dataset.modality, dataset, backbone, mapping)
    for name in splits:
        split = dataset.split(name)
        _check_split(split, dataset, name)
        backbone.bind(inputs=split.inputs)
        out.features[name] = extract_features(
            backbone,
            split.inputs,
            dataset_identity=dataset.identity(),
            split=name,
            device=device,
            batch_size=extract_batch_size,
            plugin=plugin,
        )
        mapped = mapping.apply(split.labels, vocab)
        unmapped = (split.labels.sum(1) > 0) & (mapped.sum(1) == 0)
        _check_labelled(mapped, unmapped, mapping, dataset, name)
        out.labels[name] = torch.as_tensor(mapped)
        out.pair_ids[name] = split.pair_ids
        out.splits[name] = split
    if normalisation == "none":
        mean, std = torch.zeros(backbone.feature_dim), torch.ones(backbone.feature_dim)
    elif normalisation == "train":
        base = out.features["train"]
        mean, std = base.mean(0), base.std(0)
        # constant dimensions (blank pixel corners, say) are left unscaled
        std = torch.where(std < 1e-6, torch.ones_like(std), std)
    else:
        mean, std = normalisation
        if mean.shape != (backbone.feature_dim,):
            raise AliceError(
                f"adapter normalisation has size {mean.shape[0]}, backbone {backbone.name!r} gives "
                f"{backbone.feature_dim}"
            )
    out.mean, out.std = mean.float(), std.float()
    for name in splits:
        # in place: a large split is never held twice
        out.features[name] = out.features[name].sub_(out.mean).div_(out.std).to(device)
        out.labels[name] = out.labels[name].to(device)
    return out
