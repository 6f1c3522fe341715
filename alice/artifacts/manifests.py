"""The two manifests, typed: ``reference.json`` and ``adapter.json``, each read by one loader.

A manifest is JSON on disk and a dataclass in memory. ``from_json`` checks
every field a loader needs and names the first one missing or of the wrong
type; ``to_json`` writes the fields back in their fixed order, so the same
manifest always gives the same bytes. Keys this version does not know are
kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alice._version import __version__
from alice.artifacts.layout import ADAPTER_MANIFEST, FORMAT_VERSION, REFERENCE_MANIFEST
from alice.data.recipes import BackboneSpec, DataSpec, LabelSpec, ModalitySpec
from alice.errors import AliceError
from alice.files import read_json as read_json_file


def read_json(path: Path, kind: str) -> dict[str, Any]:
    """A manifest file's JSON, after checking it is an ALICE ``kind`` manifest of this format version."""
    if not path.is_file():
        raise AliceError(f"{path} is missing: not an ALICE {kind} folder")
    data = read_json_file(path)
    if not isinstance(data, dict) or data.get("format") != f"alice.{kind}":
        raise AliceError(f"{path} is not an ALICE {kind} manifest")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise AliceError(
            f"{path} has format version {version!r}; this ALICE ({__version__}) reads version {FORMAT_VERSION}"
        )
    return data


class _Fields:
    """Reads typed fields out of a JSON object, naming the manifest and field on a mistake."""

    def __init__(self, data: Any, where: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise AliceError(f"{where} lacks field {prefix.rstrip('.') or 'object'!r} (or it is not a table)")
        self.data, self.where, self.prefix = data, where, prefix

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise AliceError(f"{self.where} lacks field {self.prefix + key!r}")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # JSON true is not a number
            raise AliceError(f"{self.where}: field {self.prefix + key!r} has the wrong type ({type(value).__name__})")
        return value

    def sub(self, key: str) -> _Fields:
        return _Fields(self.data.get(key), self.where, f"{self.prefix}{key}.")

    def items(self, key: str, kind: type | tuple[type, ...], default: Any = ..., positive: bool = False) -> list:
        """A list field whose every item is of ``kind`` (a number: not true or false; ``positive``: above 0)."""
        value = self.get(key, list, default)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        for item in value or ():
            if (
                not isinstance(item, kinds)
                or (isinstance(item, bool) and bool not in kinds)
                or (positive and item <= 0)
            ):
                raise AliceError(
                    f"{self.where}: field {self.prefix + key!r} must list {'positive ' if positive else ''}"
                    f"{' or '.join(k.__name__ for k in kinds)} values, got {str(item)[:40]!r}"
                )
        return value

    def size(self, key: str) -> int:
        """A field that is a size: a whole number above 0."""
        value = self.get(key, int)
        if value <= 0:
            raise AliceError(f"{self.where}: field {self.prefix + key!r} must be a positive size, got {value}")
        return value


_COMMON_KEYS = {"format", "format_version", "alice_version", "name", "weights", "plugins"}
_ADAPTER_KEYS = _COMMON_KEYS | {
    "modality",
    "recipe",
    "created",
    "data",
    "backbone",
    "labels",
    "encoder_hidden",
    "thresholds",
    "training",
    "metrics",
    "samples",
    "alignment",
    "latent_alignment",
    "search",
    "reference_sha256",
    "reference_digest",
}
_REFERENCE_KEYS = _COMMON_KEYS | {
    "family",
    "created",
    "reference_modality",
    "vocabulary",
    "latent_dim",
    "classifier",
    "intervention",
    "recipe",
    "training",
    "metrics",
    "statistics",
}


def _search_transform(search: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    """An adapter's declared search transform, checked: ``centre`` true or false, ``project`` from 0 to 1."""
    if search is None:
        return None
    centre, project = search.get("centre", False), search.get("project", 0.0)
    number = isinstance(project, (int, float)) and not isinstance(project, bool)
    if not isinstance(centre, bool) or not number or not 0 <= project <= 1:
        raise AliceError(
            f"{where}: field 'search' must hold centre (true or false) and project (a number from 0 to 1), "
            f"got {search!r}"
        )
    return search


def _plugins(f: _Fields) -> dict[str, str]:
    """A manifest's record of the plugins that provided what it names: kind -> plugin, both strings."""
    plugins = f.get("plugins", dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in plugins.items()):
        raise AliceError(f"{f.where}: field 'plugins' must map kinds to plugin names (strings)")
    return dict(plugins)


@dataclass
class WeightsRecord:
    file: str
    sha256: str

    @classmethod
    def read(cls, f: _Fields) -> WeightsRecord:
        w = f.sub("weights")
        record = cls(w.get("file", str), w.get("sha256", str))
        if Path(record.file).name != record.file:
            raise AliceError(f"{f.where} names weights outside its folder: {record.file!r}")
        return record


@dataclass
class DataRecord:
    """The data set an adapter was trained on, with its options and its own vocabulary."""

    dataset: str
    options: dict[str, Any] = field(default_factory=dict)
    vocabulary: list[str] = field(default_factory=list)


@dataclass
class BackboneRecord:
    """The backbone an adapter reads features from, and how its features are normalised."""

    name: str
    options: dict[str, Any]
    identity: dict[str, Any]
    feature_dim: int
    normalisation: str = ""


@dataclass
class LabelRecord:
    """How the data set's labels map onto the reference vocabulary."""

    mapper: str = "by-name"
    aliases: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, str | None] = field(default_factory=dict)
    annotated: list[str] = field(default_factory=list)


@dataclass
class AdapterManifest:
    """``adapter.json``: one modality's encoder and decoder, what they read and how they were trained."""

    name: str
    modality: str
    data: DataRecord
    backbone: BackboneRecord
    labels: LabelRecord
    encoder_hidden: list[int]
    thresholds: list[float]
    recipe: str = ""
    created: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    alignment: dict[str, Any] | None = None  # set by `alice align`: the paired fine-tuning it went through
    latent_alignment: dict[str, Any] | None = None  # stage 2's unpaired alignment (recipe [alignment]); None: off
    search: dict[str, Any] | None = None  # how search compares its latents: {"centre": true, ...}; None: as they are
    reference_sha256: str = ""
    reference_digest: str = ""  # of reference.safetensors and reference.json (alice.artifacts.space); "": older
    weights: WeightsRecord | None = None
    alice_version: str = __version__
    #: kind ("dataset", "backbone") -> the plugin that provided it: "scanner (alice-scanner==0.1.0)"; {}: older
    plugins: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def modality_spec(self) -> ModalitySpec:
        """What to load to see this adapter's data again (eval, search, report)."""
        return ModalitySpec(
            DataSpec(self.data.dataset, dict(self.data.options)),
            BackboneSpec(self.backbone.name, dict(self.backbone.options)),
            LabelSpec(self.labels.mapper, dict(self.labels.aliases)),
            dict(self.plugins),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": "alice.adapter",
            "format_version": FORMAT_VERSION,
            "alice_version": self.alice_version,
            "name": self.name,
            "modality": self.modality,
            "recipe": self.recipe,
            "created": self.created,
            "data": asdict(self.data),
            "backbone": asdict(self.backbone),
            "labels": asdict(self.labels),
            "encoder_hidden": list(self.encoder_hidden),
            "thresholds": list(self.thresholds),
            "training": self.training,
            "metrics": self.metrics,
            "samples": self.samples,
        }
        if self.alignment is not None:
            out["alignment"] = self.alignment
        for key in ("latent_alignment", "search"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.plugins:
            out["plugins"] = dict(self.plugins)
        out.update(self.extra)
        out["reference_sha256"] = self.reference_sha256
        if self.reference_digest:
            out["reference_digest"] = self.reference_digest
        if self.weights is not None:
            out["weights"] = asdict(self.weights)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> AdapterManifest:
        f = _Fields(data, where)
        d, b, lab = f.sub("data"), f.sub("backbone"), f.sub("labels")
        return cls(
            name=f.get("name", str),
            modality=f.get("modality", str),
            data=DataRecord(d.get("dataset", str), d.get("options", dict, {}), d.items("vocabulary", str, [])),
            backbone=BackboneRecord(
                b.get("name", str),
                b.get("options", dict, {}),
                b.get("identity", dict, {}),
                b.size("feature_dim"),
                b.get("normalisation", str, ""),
            ),
            labels=LabelRecord(
                lab.get("mapper", str, "by-name"),
                lab.get("aliases", dict, {}),
                lab.get("mapping", dict, {}),
                lab.items("annotated", str, []),
            ),
            encoder_hidden=f.items("encoder_hidden", int, positive=True),
            thresholds=f.items("thresholds", (int, float), []),
            recipe=f.get("recipe", str, ""),
            created=f.get("created", str, ""),
            training=f.get("training", dict, {}),
            metrics=f.get("metrics", dict, {}),
            samples=f.get("samples", dict, {}),
            alignment=f.get("alignment", dict, None),
            latent_alignment=f.get("latent_alignment", dict, None),
            search=_search_transform(f.get("search", dict, None), where),
            reference_sha256=f.get("reference_sha256", str, ""),
            reference_digest=f.get("reference_digest", str, ""),
            weights=WeightsRecord.read(f),
            alice_version=f.get("alice_version", str, ""),
            plugins=_plugins(f),
            extra={k: v for k, v in data.items() if k not in _ADAPTER_KEYS},
        )


@dataclass
class ReferenceManifest:
    """``reference.json``: the frozen C_ref and M_ref, the vocabulary and how they were trained."""

    name: str
    vocabulary: list[str]
    latent_dim: int
    classifier_hidden: list[int]
    classifier_dropout: float
    design: str
    design_settings: dict[str, Any]
    family: str = ""
    created: str = ""
    reference_modality: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: the reference modality's latent statistics stored beside C_ref and M_ref (None: an older artifact has none)
    statistics: dict[str, Any] | None = None
    weights: WeightsRecord | None = None
    alice_version: str = __version__
    #: kind ("intervention") -> the plugin that provided it: "shadow (alice-shadow==0.1.0)"; {}: older
    plugins: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": "alice.reference",
            "format_version": FORMAT_VERSION,
            "alice_version": self.alice_version,
            "name": self.name,
            "family": self.family,
            "created": self.created,
            "reference_modality": self.reference_modality,
            "vocabulary": list(self.vocabulary),
            "latent_dim": self.latent_dim,
            "classifier": {"hidden": list(self.classifier_hidden), "dropout": self.classifier_dropout},
            "intervention": {"design": self.design, "settings": dict(self.design_settings)},
            "recipe": self.recipe,
            "training": self.training,
            "metrics": self.metrics,
        }
        if self.statistics is not None:
            out["statistics"] = self.statistics
        if self.plugins:
            out["plugins"] = dict(self.plugins)
        out.update(self.extra)
        if self.weights is not None:
            out["weights"] = asdict(self.weights)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> ReferenceManifest:
        f = _Fields(data, where)
        clf, design = f.sub("classifier"), f.sub("intervention")
        vocabulary = f.get("vocabulary", list)
        if not vocabulary or not all(isinstance(v, str) for v in vocabulary):
            raise AliceError(f"{where}: field 'vocabulary' must be a non-empty list of label names")
        return cls(
            name=f.get("name", str, ""),
            vocabulary=vocabulary,
            latent_dim=f.size("latent_dim"),
            classifier_hidden=clf.items("hidden", int, positive=True),
            classifier_dropout=float(clf.get("dropout", (int, float), 0.1)),
            design=design.get("design", str),
            design_settings=design.get("settings", dict, {}),
            family=f.get("family", str, ""),
            created=f.get("created", str, ""),
            reference_modality=f.get("reference_modality", str, ""),
            recipe=f.get("recipe", dict, {}),
            training=f.get("training", dict, {}),
            metrics=f.get("metrics", dict, {}),
            statistics=f.get("statistics", dict, None),
            weights=WeightsRecord.read(f),
            alice_version=f.get("alice_version", str, ""),
            plugins=_plugins(f),
            extra={k: v for k, v in data.items() if k not in _REFERENCE_KEYS},
        )


def read_reference_manifest(path: Path) -> ReferenceManifest:
    """A reference folder's manifest, typed, without loading any weights."""
    manifest_path = Path(path) / REFERENCE_MANIFEST
    return ReferenceManifest.from_json(read_json(manifest_path, "reference"), str(manifest_path))


def read_adapter_manifest(folder: Path) -> AdapterManifest:
    manifest_path = Path(folder) / ADAPTER_MANIFEST
    return AdapterManifest.from_json(read_json(manifest_path, "adapter"), str(manifest_path))
