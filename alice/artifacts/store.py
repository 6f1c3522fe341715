"""Reference spaces and adapters on disk: safetensors for weights, JSON for the rest (see :mod:`.layout`).

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

from alice.artifacts.describe import adapter_manifest, adapter_names, checked_sha256, reference_manifest
from alice.artifacts.layout import (
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    FORMAT_VERSION,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
)
from alice.artifacts.manifests import (  # noqa: F401 (the readers are imported from here too)
    AdapterManifest,
    ReferenceManifest,
    WeightsRecord,
    read_adapter_manifest,
    read_reference_manifest,
)
from alice.core.interventions import Intervention
from alice.core.modules import Classifier, Decoder, Encoder
from alice.data.loading import ModalityData, load_modality
from alice.errors import AliceError
from alice.files import write_folder
from alice.plugin.manager import get_registry

#: a folder's files before they are written: relative path -> bytes, text, or a JSON-able value
Files = dict[str, Any]


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
        blob = _serialise(tensors)
        manifest = replace(
            self.manifest,
            reference_sha256=reference_sha256,
            weights=WeightsRecord(ADAPTER_WEIGHTS, hashlib.sha256(blob).hexdigest()),
        )
        return {ADAPTER_WEIGHTS: blob, ADAPTER_MANIFEST: manifest.to_json()}


def reference_files(
    classifier: Classifier, intervention: Intervention, manifest: ReferenceManifest, adapters: list[AdapterWeights]
) -> tuple[Files, str]:
    """A reference folder's files (no model cards yet) and the sha256 of its weights."""
    blob = _serialise({**_prefixed("classifier", classifier), **_prefixed("intervention", intervention)})
    digest = hashlib.sha256(blob).hexdigest()
    manifest = replace(manifest, weights=WeightsRecord(REFERENCE_WEIGHTS, digest))
    files: Files = {REFERENCE_WEIGHTS: blob, REFERENCE_MANIFEST: manifest.to_json()}
    for adapter in adapters:
        files.update(adapter_files_in_reference(adapter, digest))
    return files, digest


def adapter_files_in_reference(adapter: AdapterWeights, reference_sha256: str) -> Files:
    return {
        f"{ADAPTERS_FOLDER}/{adapter.name}/{rel}": content for rel, content in adapter.files(reference_sha256).items()
    }


def derived_reference_files(reference: ReferenceSpace, adapters: list[AdapterWeights]) -> Files:
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


def write_adapter(reference: ReferenceSpace, name: str, files: Files, overwrite: bool = False) -> Path:
    """Add (or replace) one adapter folder of an existing reference, atomically."""
    final = (reference.path / ADAPTERS_FOLDER / name).resolve()
    refuse_existing(final, overwrite)
    write_folder(final, files)
    return final


# --------------------------------------------------------------------------- reading


def _read_weights(folder: Path, weights: WeightsRecord) -> tuple[dict[str, torch.Tensor], str]:
    path = folder / weights.file
    actual = checked_sha256(path, weights.sha256)
    try:
        return load_file(str(path)), actual
    except (SafetensorError, OSError, ValueError) as exc:
        raise AliceError(f"{path} is not a readable safetensors file ({exc})") from None


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)}


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise AliceError(f"{what} weights do not fit the manifest's architecture: {first}") from None


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

    @property
    def name(self) -> str:
        return self.path.name

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

    def to(self, device: torch.device) -> Adapter:
        self.encoder.to(device).eval()
        self.decoder.to(device).eval()
        return self

    def load_data(self, splits: tuple[str, ...], device: torch.device) -> ModalityData:
        """Splits of this adapter's own data set (features from the cache), normalised as it was trained."""
        return load_modality(
            self.manifest.modality_spec(),
            self.reference_vocabulary,
            device,
            splits,
            normalisation=(self.feature_mean, self.feature_std),
        )


@dataclass
class ReferenceSpace:
    """The frozen classifier C_ref and intervention module M_ref, plus its adapters."""

    path: Path
    manifest: ReferenceManifest
    classifier: Classifier
    intervention: Intervention
    sha256: str

    @property
    def vocabulary(self) -> list[str]:
        return list(self.manifest.vocabulary)

    @property
    def latent_dim(self) -> int:
        return self.manifest.latent_dim

    def adapter_names(self) -> list[str]:
        return adapter_names(self.path)

    def load_adapter(self, name: str) -> Adapter:
        folder = self.path / ADAPTERS_FOLDER / name
        if not folder.is_dir():
            known = ", ".join(self.adapter_names()) or "none"
            raise AliceError(f"reference {self.path} has no adapter {name!r} (has: {known})")
        m = adapter_manifest(folder, self.sha256)
        tensors, digest = _read_weights(folder, m.weights)
        feature_dim = m.backbone.feature_dim
        enc, dec = (
            Encoder(feature_dim, self.latent_dim, m.encoder_hidden),
            Decoder(feature_dim, self.latent_dim, m.encoder_hidden),
        )
        _load_into(enc, _split(tensors, "encoder"), f"adapter {name!r} encoder")
        _load_into(dec, _split(tensors, "decoder"), f"adapter {name!r} decoder")
        mean, std = tensors.get("normalisation.mean"), tensors.get("normalisation.std")
        if mean is None or std is None or mean.shape != (feature_dim,) or std.shape != (feature_dim,):
            raise AliceError(f"adapter {name!r}: feature normalisation missing or not of size {feature_dim}")
        return Adapter(folder, m, enc.eval(), dec.eval(), mean, std, digest, self.vocabulary)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceSpace:
        """Load and verify a reference folder (weights re-hashed against the manifest)."""
        path = Path(path)
        m = reference_manifest(path)
        tensors, digest = _read_weights(path, m.weights)
        vocab, latent = m.vocabulary, m.latent_dim
        classifier = Classifier(len(vocab), latent, m.classifier_hidden, m.classifier_dropout)
        _load_into(classifier, _split(tensors, "classifier"), "reference classifier")
        design_cls = get_registry().intervention(m.design)
        try:
            intervention = design_cls(len(vocab), latent, **m.design_settings)
        except TypeError as exc:
            raise AliceError(
                f"intervention design {m.design!r} does not accept the manifest's settings: {exc}"
            ) from None
        _load_into(intervention, _split(tensors, "intervention"), f"reference intervention ({m.design})")
        for p in (*classifier.parameters(), *intervention.parameters()):
            p.requires_grad_(False)
        return cls(path, m, classifier.eval(), intervention.eval(), digest)
