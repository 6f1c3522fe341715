"""Reference spaces and adapters on disk: safetensors for weights, JSON for the rest (layout: :mod:`alice.artifacts.layout`).

Writers take the complete set of files of a folder (weights, manifests, and
the model cards that the job writing them made) and write it in one atomic
step (:func:`alice.files.write_folder`): a crash never leaves a half-written
artifact, and an existing one is replaced only once the new one is complete.
Loading re-hashes the weights and refuses anything that does not match its
manifest. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialise_safetensors

from alice.artifacts.layout import (
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    FORMAT_VERSION,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
)
from alice.artifacts.manifests import AdapterManifest, ReferenceManifest, WeightsRecord, read_json
from alice.core.alignment import LatentStatistics, SearchEncoder, label_projector, search_transform
from alice.core.interventions import Intervention
from alice.core.modules import Classifier, Decoder, Encoder
from alice.data.loading import ModalityData, load_modality
from alice.errors import AliceError
from alice.files import sha256_file, write_folder
from alice.plugin.manager import get_registry

#: a folder's files before they are written: relative path -> bytes, text, or a JSON-able value
Files = dict[str, Any]
#: the reference modality's latent statistics sit in reference.safetensors under this prefix (hashed with C_ref, M_ref)
STATISTICS_PREFIX = "statistics"
#: an adapter's own mean latent, in adapter.safetensors when its manifest declares search centring
SEARCH_MEAN = "search.mean"


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------- writing


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _serialise(tensors: dict[str, torch.Tensor]) -> bytes:
    """The file's bytes: the same weights always give the same bytes, hence the same sha256.

    One metadata key only: safetensors writes several in a random order
    (safetensors issue #584), which would change the hash from run to run.
    """
    return serialise_safetensors(tensors, metadata={"format": f"alice-{FORMAT_VERSION}"})


@dataclass
class AdapterWeights:
    """What an adapter folder holds, before it is written."""

    encoder: Encoder
    decoder: Decoder
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    manifest: AdapterManifest
    search_mean: torch.Tensor | None = None  # stored as SEARCH_MEAN when the manifest declares search centring

    @property
    def name(self) -> str:
        return self.manifest.name

    def files(self, reference_sha256: str) -> Files:
        """``adapter.safetensors`` and ``adapter.json``, bound to the reference they were trained against."""
        tensors = {
            **_prefixed("encoder", self.encoder),
            **_prefixed("decoder", self.decoder),
            "normalisation.mean": self.feature_mean.detach().cpu().float().contiguous(),
            "normalisation.std": self.feature_std.detach().cpu().float().contiguous(),
        }
        if self.search_mean is not None:
            tensors[SEARCH_MEAN] = self.search_mean.detach().cpu().float().contiguous()
        blob = _serialise(tensors)
        manifest = replace(self.manifest, reference_sha256=reference_sha256,
                           weights=WeightsRecord(ADAPTER_WEIGHTS, hashlib.sha256(blob).hexdigest()))
        return {ADAPTER_WEIGHTS: blob, ADAPTER_MANIFEST: manifest.to_json()}


def reference_files(classifier: Classifier, intervention: Intervention, manifest: ReferenceManifest,
                    adapters: list[AdapterWeights], statistics: LatentStatistics | None = None) -> tuple[Files, str]:
    """A reference folder's files (no model cards yet) and the sha256 of its weights (and latent statistics)."""
    extra = statistics.tensors(STATISTICS_PREFIX) if statistics is not None else {}
    blob = _serialise({**_prefixed("classifier", classifier), **_prefixed("intervention", intervention), **extra})
    digest = hashlib.sha256(blob).hexdigest()
    manifest = replace(manifest, weights=WeightsRecord(REFERENCE_WEIGHTS, digest))
    files: Files = {REFERENCE_WEIGHTS: blob, REFERENCE_MANIFEST: manifest.to_json()}
    for adapter in adapters:
        files.update(adapter_files_in_reference(adapter, digest))
    return files, digest


def adapter_files_in_reference(adapter: AdapterWeights, reference_sha256: str) -> Files:
    return {f"{ADAPTERS_FOLDER}/{adapter.name}/{rel}": content for rel, content in adapter.files(reference_sha256).items()}


def derived_reference_files(reference: "ReferenceSpace", adapters: list[AdapterWeights]) -> Files:
    """A new folder's files: this reference byte for byte and the given adapters (e.g. after paired fine-tuning)."""
    files: Files = {
        REFERENCE_WEIGHTS: (reference.path / REFERENCE_WEIGHTS).read_bytes(),
        REFERENCE_MANIFEST: json.loads((reference.path / REFERENCE_MANIFEST).read_text(encoding="utf-8")),
    }
    for adapter in adapters:
        files.update(adapter_files_in_reference(adapter, reference.sha256))
    return files


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Before any work: an existing output is replaced only when asked to."""
    if Path(path).exists() and not overwrite:
        raise AliceError(f"{path} already exists; pass --overwrite to replace it")


def write_reference(out: Path, files: Files, overwrite: bool = False) -> Path:
    """Write a whole reference folder (its files, adapters and cards), as one atomic step.

    Replacing an existing reference drops its other adapters, which belonged to the old one.
    """
    out = Path(out).resolve()
    refuse_existing(out, overwrite)
    write_folder(out, files)
    return out


def write_adapter(reference: "ReferenceSpace", name: str, files: Files, overwrite: bool = False) -> Path:
    """Add (or replace) one adapter folder of an existing reference, atomically."""
    final = (reference.path / ADAPTERS_FOLDER / name).resolve()
    refuse_existing(final, overwrite)
    write_folder(final, files)
    return final


# --------------------------------------------------------------------------- reading


def _read_weights(folder: Path, weights: WeightsRecord) -> tuple[dict[str, torch.Tensor], str]:
    path = folder / weights.file
    if not path.is_file():
        raise AliceError(f"{path} is missing")
    actual = sha256_file(path)
    if actual != weights.sha256:
        raise AliceError(f"{path} does not match the sha256 in its manifest (expected {weights.sha256[:12]}…, found {actual[:12]}…): the file was changed or damaged")
    try:
        return load_file(str(path)), actual
    except (SafetensorError, OSError, ValueError) as exc:
        raise AliceError(f"{path} is not a readable safetensors file ({exc})") from None


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise AliceError(f"{what} weights do not fit the manifest's architecture: {first}") from None


def read_reference_manifest(path: Path) -> ReferenceManifest:
    """A reference folder's manifest, typed, without loading any weights."""
    manifest_path = Path(path) / REFERENCE_MANIFEST
    return ReferenceManifest.from_json(read_json(manifest_path, "reference"), str(manifest_path))


def read_adapter_manifest(folder: Path) -> AdapterManifest:
    manifest_path = Path(folder) / ADAPTER_MANIFEST
    return AdapterManifest.from_json(read_json(manifest_path, "adapter"), str(manifest_path))


@dataclass
class Adapter:
    """One modality's encoder and decoder, with its feature normalisation."""

    path: Path
    manifest: AdapterManifest
    encoder: Encoder
    decoder: Decoder
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    sha256: str
    reference_vocabulary: list[str]
    search_mean: torch.Tensor | None = None  # [latent]: search centres this modality on it (None: not centred)
    search_projector: torch.Tensor | None = None  # [latent, latent]: onto the label subspace (None: not projected)

    @property
    def name(self) -> str:
        return self.path.name

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Standardised features -> latents E(x) on the sphere: what C_ref reads and M_ref edits."""
        return self.encoder(features)

    def search_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Latents as search compares them across modalities (every consumer: eval, indexes, search, report, Space).

        As the adapter's manifest declares (``search``, from its recipe's ``[alignment]``):
        ``centre``: this modality's mean train latent taken out; ``project`` > 0: the directions
        outside the reference's label subspace weighed down (:func:`alice.core.alignment.label_projector`);
        either way the result is put back on the sphere. Neither: ``z`` itself.
        """
        return search_transform(z, self.search_mean, self.search_projector)

    @property
    def transforms_search(self) -> bool:
        """Whether search compares this modality's latents through a transform (else as they are)."""
        return self.search_mean is not None or self.search_projector is not None

    def search_encoder(self) -> torch.nn.Module:
        """Standardised features -> search latents, as one module (paired fine-tuning trains the encoder in it)."""
        if not self.transforms_search:
            return self.encoder
        return SearchEncoder(self.encoder, self.search_mean, self.search_projector)

    @property
    def modality(self) -> str:
        return self.manifest.modality

    @property
    def feature_dim(self) -> int:
        return int(self.feature_mean.shape[0])

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.net[-1].out_features)

    def normalise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.feature_mean.to(features.device)) / self.feature_std.to(features.device)

    def to(self, device: torch.device) -> "Adapter":
        self.encoder.to(device).eval()
        self.decoder.to(device).eval()
        if self.search_mean is not None:
            self.search_mean = self.search_mean.to(device)
        if self.search_projector is not None:
            self.search_projector = self.search_projector.to(device)
        return self

    def load_data(self, splits: tuple[str, ...], device: torch.device,
                  options: dict[str, Any] | None = None) -> ModalityData:
        """Splits of this adapter's own data set (features from the cache), normalised as it was trained.

        ``options`` replace data set options of its manifest (``alice eval --set data.KEY=VALUE``).
        """
        spec = self.manifest.modality_spec()
        spec.data.options.update(options or {})
        return load_modality(spec, self.reference_vocabulary, device, splits,
                             normalisation=(self.feature_mean, self.feature_std))


@dataclass
class ReferenceSpace:
    """The frozen classifier C_ref and intervention module M_ref, plus its adapters."""

    path: Path
    manifest: ReferenceManifest
    classifier: Classifier
    intervention: Intervention
    sha256: str
    statistics: LatentStatistics | None = None  # of the reference modality's train latents (None: an older artifact)

    @property
    def vocabulary(self) -> list[str]:
        return list(self.manifest.vocabulary)

    @property
    def latent_dim(self) -> int:
        return self.manifest.latent_dim

    def adapter_names(self) -> list[str]:
        folder = self.path / ADAPTERS_FOLDER
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []

    def load_adapter(self, name: str) -> Adapter:
        folder = self.path / ADAPTERS_FOLDER / name
        if not folder.is_dir():
            known = ", ".join(self.adapter_names()) or "none"
            raise AliceError(f"reference {self.path} has no adapter {name!r} (has: {known})")
        m = read_adapter_manifest(folder)
        if m.reference_sha256 != self.sha256:
            raise AliceError(
                f"adapter {name!r} was trained against another reference (sha256 {m.reference_sha256[:12] or '?'}…), "
                f"not this one ({self.sha256[:12]}…)"
            )
        tensors, digest = _read_weights(folder, m.weights)
        feature_dim = m.backbone.feature_dim
        enc, dec = Encoder(feature_dim, self.latent_dim, m.encoder_hidden), Decoder(feature_dim, self.latent_dim, m.encoder_hidden)
        _load_into(enc, _split(tensors, "encoder"), f"adapter {name!r} encoder")
        _load_into(dec, _split(tensors, "decoder"), f"adapter {name!r} decoder")
        mean, std = tensors.get("normalisation.mean"), tensors.get("normalisation.std")
        if mean is None or std is None or mean.shape != (feature_dim,) or std.shape != (feature_dim,):
            raise AliceError(f"adapter {name!r}: feature normalisation missing or not of size {feature_dim}")
        search = m.search or {}
        search_mean, projector = None, None
        if search.get("centre"):
            search_mean = tensors.get(SEARCH_MEAN)
            if search_mean is None or search_mean.shape != (self.latent_dim,):
                raise AliceError(f"adapter {name!r}: its manifest centres search, but {SEARCH_MEAN} is missing or "
                                 f"not of size {self.latent_dim}")
        if search.get("project"):
            if self.statistics is None:
                raise AliceError(f"adapter {name!r} projects search onto the label subspace, but reference "
                                 f"{self.path} stores no latent statistics")
            projector = label_projector(self.statistics, float(search["project"]))
        return Adapter(folder, m, enc.eval(), dec.eval(), mean, std, digest, self.vocabulary, search_mean, projector)

    @classmethod
    def load(cls, path: str | Path) -> "ReferenceSpace":
        """Load and verify a reference folder (weights re-hashed against the manifest)."""
        path = Path(path)
        if not path.is_dir():
            raise AliceError(f"reference folder {path} does not exist")
        m = read_reference_manifest(path)
        tensors, digest = _read_weights(path, m.weights)
        vocab, latent = m.vocabulary, m.latent_dim
        classifier = Classifier(len(vocab), latent, m.classifier_hidden, m.classifier_dropout)
        _load_into(classifier, _split(tensors, "classifier"), "reference classifier")
        design_cls = get_registry().intervention(m.design)
        try:
            intervention = design_cls(len(vocab), latent, **m.design_settings)
        except TypeError as exc:
            raise AliceError(f"intervention design {m.design!r} does not accept the manifest's settings: {exc}") from None
        _load_into(intervention, _split(tensors, "intervention"), f"reference intervention ({m.design})")
        for p in (*classifier.parameters(), *intervention.parameters()):
            p.requires_grad_(False)
        statistics = LatentStatistics.from_tensors(tensors, STATISTICS_PREFIX)
        if m.statistics is not None and statistics is None:
            raise AliceError(f"{path / m.weights.file} lacks the latent statistics its manifest describes")
        if statistics is not None and (problem := statistics.shape_problem(latent, len(vocab))):
            raise AliceError(f"{path / m.weights.file}: {problem}")
        return cls(path, m, classifier.eval(), intervention.eval(), digest, statistics)
