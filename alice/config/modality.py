"""What one modality reads: its data set, its backbone, how its labels map; and how ``alice recipe init`` measures
candidate backbones. Plain dataclasses, their defaults written once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DataSpec:
    dataset: str  # a registered data set name, e.g. "digits-image"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the data set


@dataclass
class BackboneSpec:
    name: str  # a registered backbone, e.g. "pixels", "minilm", "vit"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the backbone


@dataclass
class LabelSpec:
    mapper: str = "by-name"  # a registered label mapper
    aliases: dict[str, str] = field(default_factory=dict)  # source label -> reference label ("" = none)


@dataclass
class ModalitySpec:
    """What one modality reads: a data set, the backbone its features come from, how its labels map."""

    data: DataSpec
    backbone: BackboneSpec
    labels: LabelSpec = field(default_factory=LabelSpec)
    #: kind ("dataset", "backbone") -> the plugin an adapter manifest says provided it, for messages when missing
    plugins: dict[str, str] = field(default_factory=dict)


@dataclass
class ProbeSpec:
    """How ``alice recipe init`` measures candidate backbones (:mod:`alice.data.probe`); the defaults of its options."""

    items: int = 300  # training items drawn, seeded, for the probe (all of them when the split is smaller)
    folds: int = 5  # each item is scored by a probe fitted on the other folds (fewer folds than items, never)
    seed: int = 0  # draws the sample and its folds
    ridge: float = 0.1  # the ridge classifier's strength, in units of the sample's mean Gram eigenvalue
