"""What a reference folder says about itself, read without torch.

`alice reference show` describes a space from its JSON manifests and its weights files re-hashed
against them (hashlib); `alice index list` adds the headers of its index files
(:mod:`alice.search.header`). Nothing here builds a network or reads a tensor; loading them is
:mod:`alice.artifacts.loaded`'s job, and it checks what it loads with the functions here, so a
check is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alice.artifacts.format.layout import ADAPTER_NAME, ADAPTERS_FOLDER, INDEX_FOLDER
from alice.artifacts.format.manifests import (
    AdapterManifest,
    ReferenceManifest,
    read_adapter_manifest,
    read_reference_manifest,
)
from alice.artifacts.integrity.record import Inspection, SpaceRecord, inspect_space
from alice.errors import AliceError
from alice.files import recover, sha256_file


def checked_sha256(path: Path, expected: str, known: str | None = None) -> str:
    """Hash a weights file and refuse it if it is missing or its sha256 is not the manifest's.

    ``known``: its sha256 as the space's check already found it (not hashed again when it is the expected one).
    """
    if known == expected and path.is_file():
        return known
    if not path.is_file():
        raise AliceError(f"{path} is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise AliceError(
            f"{path} does not match the sha256 in its manifest (expected {expected[:12]}…, found {actual[:12]}…): "
            "the file was changed or damaged"
        )
    return actual


# --------------------------------------------------------------------------- a reference folder


def reference_manifest(path: Path) -> ReferenceManifest:
    """A reference folder's manifest; a folder that does not exist is named as such."""
    if not Path(path).is_dir():
        raise AliceError(f"reference folder {path} does not exist")
    return read_reference_manifest(path)


def open_space(path: Path, digest: str | None = None) -> tuple[ReferenceManifest, Inspection]:
    """A reference folder's manifest and every file checked against ``space.json``: what each reader starts with.

    Puts back a space a killed writer left moved aside; refuses a folder that is no reference, any problem the
    check finds (one line, a missing ``space.json`` too), and with ``digest`` any other digest (``--expect-digest``).
    """
    path = Path(path)
    recover(path.absolute())
    manifest = reference_manifest(path)  # not a reference at all, or of another format version: say that first
    inspection = inspect_space(path)
    inspection.raise_first()
    inspection.check_digest(digest)
    return manifest, inspection


def adapter_names(path: Path, record: SpaceRecord | None = None) -> list[str]:
    """The adapters of a reference folder: those its ``space.json`` records, else its adapter folders (hidden ones,
    checkpoints and partial writes, are not adapters)."""
    if record is not None:
        return record.adapter_names()
    folder = Path(path) / ADAPTERS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def free_adapter_name(path: Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``, ...: the first that names no adapter of the reference folder ``path``."""
    taken = set(adapter_names(path))
    n = 2
    free = name
    while free in taken or (Path(path) / ADAPTERS_FOLDER / free).exists():
        free, n = f"{name}-{n}", n + 1
    return free


def check_new_adapter(path: Path, name: str, overwrite: bool = False) -> None:
    """Refuse, before anything is loaded, an adapter name that is malformed or that the reference already has."""
    if not ADAPTER_NAME.match(name):
        raise AliceError(
            f"adapter name {name!r} must be letters, digits, '.', '_' or '-' (and start with a letter or digit)"
        )
    if (Path(path) / ADAPTERS_FOLDER / name).exists() and not overwrite:
        raise AliceError(
            f"reference {path} already has an adapter {name!r}; add this one beside it with --name "
            f"{free_adapter_name(path, name)}, or pass --overwrite to replace it"
        )


def adapter_manifest(folder: Path, reference_digest: str) -> AdapterManifest:
    """An adapter's manifest, refused unless the adapter was trained against this reference: its manifest names
    the reference's digest (of its weights and manifest)."""
    m = read_adapter_manifest(folder)
    name = Path(folder).name
    if not m.reference_digest:
        raise AliceError(
            f"adapter {name!r} names no reference digest (an older ALICE wrote it): train it again with "
            "`alice modality add`, or have the space's publisher export it again"
        )
    if m.reference_digest != reference_digest:
        raise AliceError(
            f"adapter {name!r} was trained against another reference (digest {m.reference_digest[:12]}…), "
            f"not this one ({reference_digest[:12]}…)"
        )
    return m


@dataclass
class ReferenceFacts:
    """A reference folder's manifests, every file checked against ``space.json`` and every weights file against its
    manifest (hashlib only: no network built, no torch imported)."""

    path: Path
    manifest: ReferenceManifest
    sha256: str
    adapters: dict[str, tuple[AdapterManifest, str]]  # name -> (manifest, sha256 of its weights)
    digest: str = ""
    reference_digest: str = ""

    @classmethod
    def read(cls, path: str | Path, digest: str | None = None) -> ReferenceFacts:
        path = Path(path)
        manifest, inspection = open_space(path, digest)
        known = inspection.hashes
        sha = checked_sha256(path / manifest.weights.file, manifest.weights.sha256, known.get(manifest.weights.file))
        adapters = {}
        for name in adapter_names(path, inspection.record):
            folder = f"{ADAPTERS_FOLDER}/{name}"
            m = adapter_manifest(path / folder, inspection.reference_digest)
            weights = f"{folder}/{m.weights.file}"
            adapters[name] = (m, checked_sha256(path / weights, m.weights.sha256, known.get(weights)))
        return cls(path, manifest, sha, adapters, inspection.digest, inspection.reference_digest)

    def index_files(self) -> list[Path]:
        return sorted((self.path / INDEX_FOLDER).glob("*.safetensors"))

    def summary(self) -> dict[str, Any]:
        """What `alice reference show` prints (``--json``: as it is)."""
        m = self.manifest
        return {
            "path": str(self.path),
            "name": m.name,
            "sha256": self.sha256,
            "digest": self.digest,
            "reference_digest": self.reference_digest,
            "reference_modality": m.reference_modality,
            "vocabulary": list(m.vocabulary),
            "latent_dim": m.latent_dim,
            "intervention": {"design": m.design, "settings": m.design_settings},
            "training": {k: m.training.get(k) for k in ("device", "seconds", "steps_per_second")},
            "metrics": m.metrics,
            "alice_version": m.alice_version,
            "created": m.created,
            "adapters": {
                name: {
                    "backbone": a.backbone.name,
                    "feature_dim": a.backbone.feature_dim,
                    "dataset": a.data.dataset,
                    "annotated_classes": len(a.labels.annotated),
                    "not_annotated": [c for c in m.vocabulary if c not in set(a.labels.annotated)],
                    "val_auroc": a.metrics.get("val", {}).get("auroc"),
                    "sha256": digest,
                }
                for name, (a, digest) in self.adapters.items()
            },
        }
