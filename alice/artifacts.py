"""Reference spaces and adapters on disk: safetensors for weights, JSON for the rest.

    <reference>/
        reference.safetensors    C_ref and M_ref (and M_ref's prompt table)
        reference.json           manifest: vocabulary, latent size, design, training, metrics, sha256
        adapters/<modality>/
            adapter.safetensors  E_m, D_m, feature mean and std
            adapter.json         backbone, data set, label mapping, thresholds, reference sha256
            README.md            model card (documentation, not hashed)
        README.md                model card, rewritten by ``alice eval``
        eval.json                written by ``alice eval``

Every folder is written beside its final place and renamed into it, so a
crash never leaves a half-written artifact, and an existing one is replaced
only once the new one is complete. Loading re-hashes the weights and refuses
anything that does not match its manifest. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialise_safetensors

import alice
from alice import modelcard
from alice.errors import AliceError
from alice.interventions import Intervention
from alice.modules import Classifier, Decoder, Encoder

FORMAT_VERSION = 1
REFERENCE_WEIGHTS, REFERENCE_MANIFEST = "reference.safetensors", "reference.json"
ADAPTER_WEIGHTS, ADAPTER_MANIFEST = "adapter.safetensors", "adapter.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def state_digest(*modules: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the modules' tensors."""
    h = hashlib.sha256()
    for m in modules:
        for name, t in sorted(m.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------- writing


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _write_folder(final: Path, files: dict[str, Any], overwrite: bool) -> None:
    """Write ``files`` (relative path -> bytes or JSON-able dict) into ``final`` atomically."""
    final = final.resolve()
    if final.exists() and not overwrite:
        raise AliceError(f"{final} already exists; pass --overwrite to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        for name, content in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(json.dumps(content, indent=2) + "\n")
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _serialise(tensors: dict[str, torch.Tensor]) -> bytes:
    """The file's bytes: the same weights always give the same bytes, hence the same sha256.

    One metadata key only: safetensors writes several in a random order
    (safetensors issue #584), which would change the hash from run to run.
    """
    return serialise_safetensors(tensors, metadata={"format": f"alice-{FORMAT_VERSION}"})


@dataclass
class AdapterWeights:
    """What an adapter folder holds, before it is written."""

    name: str
    encoder: Encoder
    decoder: Decoder
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    manifest: dict[str, Any]

    def files(self, reference_sha256: str) -> dict[str, Any]:
        tensors = {
            **_prefixed("encoder", self.encoder),
            **_prefixed("decoder", self.decoder),
            "normalisation.mean": self.feature_mean.detach().cpu().float().contiguous(),
            "normalisation.std": self.feature_std.detach().cpu().float().contiguous(),
        }
        blob = _serialise(tensors)
        manifest = {
            "format": "alice.adapter",
            "format_version": FORMAT_VERSION,
            "alice_version": alice.__version__,
            "name": self.name,
            **self.manifest,
            "reference_sha256": reference_sha256,
            "weights": {"file": ADAPTER_WEIGHTS, "sha256": hashlib.sha256(blob).hexdigest()},
        }
        return {ADAPTER_WEIGHTS: blob, ADAPTER_MANIFEST: manifest}


def write_reference(
    out: Path,
    classifier: Classifier,
    intervention: Intervention,
    manifest: dict[str, Any],
    adapter: AdapterWeights,
    overwrite: bool = False,
) -> str:
    """Write a reference folder with the reference modality's adapter, as one atomic step.

    Returns the sha256 of reference.safetensors. Replacing an existing
    reference drops its other adapters, which belonged to the old one.
    """
    blob = _serialise({**_prefixed("classifier", classifier), **_prefixed("intervention", intervention)})
    digest = hashlib.sha256(blob).hexdigest()
    manifest = {
        "format": "alice.reference",
        "format_version": FORMAT_VERSION,
        "alice_version": alice.__version__,
        **manifest,
        "weights": {"file": REFERENCE_WEIGHTS, "sha256": digest},
    }
    files: dict[str, Any] = {REFERENCE_WEIGHTS: blob, REFERENCE_MANIFEST: manifest}
    for rel, content in adapter.files(digest).items():
        files[f"adapters/{adapter.name}/{rel}"] = content
    files.update(modelcard.cards(files))  # README.md model cards, written in the same atomic step
    _write_folder(out, files, overwrite)
    return digest


def write_adapter(reference: "ReferenceSpace", adapter: AdapterWeights, overwrite: bool = False) -> Path:
    """Add (or replace) one adapter folder of an existing reference, atomically."""
    final = reference.path / "adapters" / adapter.name
    files = adapter.files(reference.sha256)
    files.update(modelcard.cards(files, reference=reference.manifest))  # its README.md model card
    _write_folder(final, files, overwrite)
    return final


def write_derived_reference(reference: "ReferenceSpace", out: Path, adapters: list[AdapterWeights], overwrite: bool = False) -> Path:
    """A new folder with this reference's files byte for byte and the given adapters (e.g. after paired fine-tuning)."""
    files: dict[str, Any] = {
        REFERENCE_WEIGHTS: (reference.path / REFERENCE_WEIGHTS).read_bytes(),
        REFERENCE_MANIFEST: json.loads((reference.path / REFERENCE_MANIFEST).read_text()),
    }
    for adapter in adapters:
        for rel, content in adapter.files(reference.sha256).items():
            files[f"adapters/{adapter.name}/{rel}"] = content
    files.update(modelcard.cards(files))
    _write_folder(out, files, overwrite)
    return Path(out)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- reading


def _read_manifest(path: Path, kind: str) -> dict[str, Any]:
    if not path.is_file():
        raise AliceError(f"{path} is missing: not an ALICE {kind} folder")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AliceError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != f"alice.{kind}":
        raise AliceError(f"{path} is not an ALICE {kind} manifest")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise AliceError(f"{path} has format version {version!r}; this ALICE ({alice.__version__}) reads version {FORMAT_VERSION}")
    return data


def _read_weights(folder: Path, manifest: dict[str, Any], kind: str) -> tuple[dict[str, torch.Tensor], str]:
    try:
        file, expected = manifest["weights"]["file"], manifest["weights"]["sha256"]
    except (KeyError, TypeError):
        raise AliceError(f"{kind} manifest in {folder} names no weights file and sha256") from None
    if Path(file).name != file:
        raise AliceError(f"{kind} manifest in {folder} names weights outside its folder: {file!r}")
    path = folder / file
    if not path.is_file():
        raise AliceError(f"{path} is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise AliceError(f"{path} does not match the sha256 in its manifest (expected {expected[:12]}…, found {actual[:12]}…): the file was changed or damaged")
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


@dataclass
class Adapter:
    """One modality's encoder and decoder, with its feature normalisation."""

    name: str
    path: Path
    manifest: dict[str, Any]
    encoder: Encoder
    decoder: Decoder
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    sha256: str

    @property
    def modality(self) -> str:
        return self.manifest["modality"]

    def normalise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.feature_mean.to(features.device)) / self.feature_std.to(features.device)

    def to(self, device: torch.device) -> "Adapter":
        self.encoder.to(device).eval()
        self.decoder.to(device).eval()
        return self


@dataclass
class ReferenceSpace:
    """The frozen classifier C_ref and intervention module M_ref, plus its adapters."""

    path: Path
    manifest: dict[str, Any]
    classifier: Classifier
    intervention: Intervention
    sha256: str

    @property
    def vocabulary(self) -> list[str]:
        return list(self.manifest["vocabulary"])

    @property
    def latent_dim(self) -> int:
        return int(self.manifest["latent_dim"])

    def adapter_names(self) -> list[str]:
        folder = self.path / "adapters"
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []

    def load_adapter(self, name: str) -> Adapter:
        folder = self.path / "adapters" / name
        if not folder.is_dir():
            known = ", ".join(self.adapter_names()) or "none"
            raise AliceError(f"reference {self.path} has no adapter {name!r} (has: {known})")
        m = _read_manifest(folder / ADAPTER_MANIFEST, "adapter")
        if m.get("reference_sha256") != self.sha256:
            raise AliceError(
                f"adapter {name!r} was trained against another reference (sha256 {str(m.get('reference_sha256'))[:12]}…), "
                f"not this one ({self.sha256[:12]}…)"
            )
        tensors, digest = _read_weights(folder, m, "adapter")
        try:
            feature_dim, hidden = int(m["backbone"]["feature_dim"]), list(m["encoder_hidden"])
        except (KeyError, TypeError, ValueError):
            raise AliceError(f"{folder / ADAPTER_MANIFEST} lacks backbone.feature_dim or encoder_hidden") from None
        enc, dec = Encoder(feature_dim, self.latent_dim, hidden), Decoder(feature_dim, self.latent_dim, hidden)
        _load_into(enc, _split(tensors, "encoder"), f"adapter {name!r} encoder")
        _load_into(dec, _split(tensors, "decoder"), f"adapter {name!r} decoder")
        mean, std = tensors.get("normalisation.mean"), tensors.get("normalisation.std")
        if mean is None or std is None or mean.shape != (feature_dim,) or std.shape != (feature_dim,):
            raise AliceError(f"adapter {name!r}: feature normalisation missing or not of size {feature_dim}")
        return Adapter(name, folder, m, enc.eval(), dec.eval(), mean, std, digest)

    @classmethod
    def load(cls, path: str | Path) -> "ReferenceSpace":
        """Load and verify a reference folder (weights re-hashed against the manifest)."""
        from alice.plugins import get_registry

        path = Path(path)
        if not path.is_dir():
            raise AliceError(f"reference folder {path} does not exist")
        m = _read_manifest(path / REFERENCE_MANIFEST, "reference")
        tensors, digest = _read_weights(path, m, "reference")
        try:
            vocab, latent = list(m["vocabulary"]), int(m["latent_dim"])
            clf_cfg, design = m["classifier"], m["intervention"]
            design_name, settings = design["design"], dict(design.get("settings", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise AliceError(f"{path / REFERENCE_MANIFEST} lacks field {exc}") from None
        classifier = Classifier(len(vocab), latent, clf_cfg["hidden"], clf_cfg.get("dropout", 0.1))
        _load_into(classifier, _split(tensors, "classifier"), "reference classifier")
        design_cls = get_registry().intervention(design_name)
        try:
            intervention = design_cls(len(vocab), latent, **settings)
        except TypeError as exc:
            raise AliceError(f"intervention design {design_name!r} does not accept the manifest's settings: {exc}") from None
        _load_into(intervention, _split(tensors, "intervention"), f"reference intervention ({design_name})")
        for p in (*classifier.parameters(), *intervention.parameters()):
            p.requires_grad_(False)
        return cls(path, m, classifier.eval(), intervention.eval(), digest)
