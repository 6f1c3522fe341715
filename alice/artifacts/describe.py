"""What a reference folder and its index files say about themselves, read without torch.

`alice reference show` and `alice index list` describe a space from its JSON manifests, its
weights files re-hashed against them (hashlib), and the *headers* of safetensors files: the JSON
object in front of the tensors, naming each tensor's dtype and shape and holding the file's
metadata. Nothing here builds a network or reads a tensor; loading them is
:mod:`alice.artifacts.store`'s and :mod:`alice.artifacts.indexes`'s job, and both check what they
load with the functions here, so a check is written once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alice.artifacts.layout import ADAPTER_NAME, ADAPTERS_FOLDER, INDEX_FOLDER
from alice.artifacts.manifests import (
    AdapterManifest,
    ReferenceManifest,
    read_adapter_manifest,
    read_reference_manifest,
)
from alice.artifacts.space import Inspection, SpaceRecord, inspect_space, warn_unrecorded
from alice.errors import AliceError
from alice.files import parse_json, recover, sha256_file

INDEX_FORMAT, INDEX_VERSION = "alice.index", 1
#: a header larger than this is not a safetensors header (safetensors itself refuses over 100 MB)
_MAX_HEADER = 100 * 2**20


def safetensors_header(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str], int]:
    """``(tensors, metadata, data start)`` of a safetensors file: each tensor's ``dtype``, ``shape`` and
    ``data_offsets`` (from the data start), the string metadata, and where the data begins, from the
    header alone (8 bytes of length, then JSON)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("file too short for a safetensors header")
        (size,) = struct.unpack("<Q", head)
        if size > _MAX_HEADER:
            raise ValueError(f"header of {size} bytes is too large")
        raw = f.read(size)
    if len(raw) < size:
        raise ValueError("file ends inside its header")
    try:
        header = parse_json(raw, "its header")
    except AliceError as exc:  # worded by the caller: "... is not a readable index: its header is not valid JSON"
        raise ValueError(str(exc)) from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("its metadata is not a table of strings")
    for name, tensor in header.items():
        shape, offsets = (tensor.get("shape"), tensor.get("data_offsets")) if isinstance(tensor, dict) else (None, None)
        counts = [*shape, *offsets] if isinstance(shape, list) and isinstance(offsets, list) else [None]
        if (
            not isinstance(tensor.get("dtype") if isinstance(tensor, dict) else None, str)
            or len(offsets or ()) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in counts)
            or offsets[0] > offsets[1]
        ):
            raise ValueError(f"tensor {name!r} has no valid dtype, shape and data_offsets")
    return header, metadata, 8 + size


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


# --------------------------------------------------------------------------- index files


@dataclass
class IndexHeader:
    """An index file's metadata and tensor shapes (see :mod:`alice.artifacts.indexes`), checked, no tensor read."""

    path: Path
    meta: dict[str, Any]
    count: int
    dim: int
    label_classes: int | None = None  # width of ``labels``, when the file has them
    annotated_classes: int | None = None
    embeddings_offset: int | None = None  # where the float32 embeddings start in the file (None: another dtype)
    embeddings_dtype: str = "F32"  # F32, or F16 (an index written streamed: alice.search.streamed)

    @property
    def modality(self) -> str:
        return str(self.meta.get("modality", "?"))

    @property
    def kind(self) -> str:
        """``exact``, or the approximate index the file also holds (``ivf``, ``hnsw``)."""
        return str(self.meta.get("kind", "exact"))

    @property
    def name(self) -> str:
        """How a server and a page name the index: its file name without ``.safetensors``."""
        return self.path.name.removesuffix(".safetensors")

    @classmethod
    def read(cls, path: str | Path) -> IndexHeader:
        """Read and check the header; refuse a file that is not an ALICE index, or a newer or inconsistent one."""
        path = Path(path)
        if not path.is_file():
            raise AliceError(f"no index at {path}; build one with `alice index build`")
        try:
            tensors, metadata, data_start = safetensors_header(path)
        except (OSError, ValueError) as exc:  # truncated or foreign: say what is wrong
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AliceError(f"{path} is not a readable index: {first}") from None
        raw = metadata.get("alice")
        if raw is None or "embeddings" not in tensors:
            raise AliceError(f"{path} is not an ALICE index (no 'alice' metadata or no embeddings)")
        meta = parse_json(raw, f"{path}: its 'alice' metadata")
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else meta
            raise AliceError(f"{path} is not an ALICE index (format {found!r})")
        missing = [key for key in ("modality", "reference_sha256", "adapter_sha256") if not meta.get(key)]
        if missing:
            raise AliceError(f"{path}: its metadata names no {missing[0]}; rebuild it with `alice index build`")
        version = meta.get("format_version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise AliceError(f"{path}: its format_version {version!r} is not a whole number; rebuild it")
        if version > INDEX_VERSION:
            raise AliceError(
                f"{path} is index format {meta.get('format_version')}, newer than this ALICE reads ({INDEX_VERSION}); "
                "upgrade alice"
            )
        shape = list(tensors["embeddings"].get("shape", []))
        if len(shape) != 2:
            raise AliceError(f"{path}: embeddings must be [n, d], got shape {shape}")
        n, d = int(shape[0]), int(shape[1])
        for key, found in (("count", n), ("latent_dim", d)):
            if meta.get(key, found) != found:
                raise AliceError(
                    f"{path}: its metadata says {key} {meta[key]!r}, its embeddings have {found}; rebuild it"
                )
        if not isinstance(meta.get("ann", {}), dict) or not isinstance(meta.get("search") or {}, dict):
            raise AliceError(f"{path}: its metadata's 'ann' and 'search' must be tables; rebuild it")

        def rows(name: str) -> int | None:
            for key, extra in ((name, 0), (f"{name}.offsets", 1)):
                if key in tensors:
                    return (tensors[key]["shape"] or [0])[0] - extra
            return None

        for name in ("labels", "texts", "files", "pair_ids"):
            found = rows(name)
            if found is not None and found != n:
                raise AliceError(f"{path}: {name} has {found} rows for {n} embeddings")
        labels = tensors.get("labels", {}).get("shape")
        annotated = tensors.get("annotated", {}).get("shape")
        embeddings = tensors["embeddings"]
        return cls(
            path,
            meta,
            n,
            d,
            int(labels[1]) if labels and len(labels) == 2 else None,
            int(annotated[0]) if annotated else None,
            data_start + int(embeddings["data_offsets"][0]) if embeddings.get("dtype") in ("F32", "F16") else None,
            str(embeddings.get("dtype")),
        )

    def check_against(
        self,
        reference_sha256: str,
        adapter_sha256: str | None = None,
        classes: int | None = None,
        search: dict[str, Any] | None = None,
    ) -> None:
        """Refuse an index built with another reference space, another version of its adapter, other labels, or
        (``search``: the search transform the adapter declares now, ``{}`` for none) another search transform."""
        built = str(self.meta.get("reference_sha256", ""))
        if built != reference_sha256:
            raise AliceError(
                f"index {self.path} was built against reference {built[:12] or '?'}…, not this one "
                f"({reference_sha256[:12]}…); rebuild it"
            )
        if adapter_sha256 is not None and self.meta.get("adapter_sha256") != adapter_sha256:
            raise AliceError(
                f"index {self.path} was built with another {self.modality!r} adapter than the one in this reference; "
                "rebuild it"
            )
        if search is not None and (self.meta.get("search") or {}) != search:
            raise AliceError(
                f"index {self.path} was built with another search transform than adapter {self.modality!r} "
                "declares now; rebuild it"
            )
        if classes is not None:
            for name, width in (("labels", self.label_classes), ("annotated", self.annotated_classes)):
                if width is not None and width != classes:
                    raise AliceError(
                        f"index {self.path}: {name} cover {width} classes, the reference vocabulary has {classes}"
                    )


# --------------------------------------------------------------------------- a reference folder


def reference_manifest(path: Path) -> ReferenceManifest:
    """A reference folder's manifest; a folder that does not exist is named as such."""
    if not Path(path).is_dir():
        raise AliceError(f"reference folder {path} does not exist")
    return read_reference_manifest(path)


def open_space(path: Path, digest: str | None = None) -> tuple[ReferenceManifest, Inspection]:
    """A reference folder's manifest and every file checked against ``space.json``: what each reader starts with.

    Puts back a space a killed writer left moved aside; refuses a folder that is no reference, any problem the
    check finds (one line), and with ``digest`` any other digest (``--expect-digest``). A space written before
    ``space.json`` is read with a warning.
    """
    path = Path(path)
    recover(path.absolute())
    manifest = reference_manifest(path)  # not a reference at all, or of another format version: say that first
    inspection = inspect_space(path)
    inspection.raise_first()
    if inspection.record is None:
        warn_unrecorded(path)
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


def adapter_manifest(folder: Path, reference_sha256: str, reference_digest: str = "") -> AdapterManifest:
    """An adapter's manifest, refused unless the adapter was trained against this reference.

    An adapter written with ``space.json`` names the reference's digest (its weights and manifest), one written
    before only the reference weights' sha256.
    """
    m = read_adapter_manifest(folder)
    name = Path(folder).name
    if m.reference_digest and reference_digest:
        if m.reference_digest != reference_digest:
            raise AliceError(
                f"adapter {name!r} was trained against another reference (digest {m.reference_digest[:12]}…), "
                f"not this one ({reference_digest[:12]}…)"
            )
    elif m.reference_sha256 != reference_sha256:
        raise AliceError(
            f"adapter {name!r} was trained against another reference "
            f"(sha256 {m.reference_sha256[:12] or '?'}…), not this one ({reference_sha256[:12]}…)"
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
            m = adapter_manifest(path / folder, sha, inspection.reference_digest)
            weights = f"{folder}/{m.weights.file}"
            adapters[name] = (m, checked_sha256(path / weights, m.weights.sha256, known.get(weights)))
        return cls(path, manifest, sha, adapters, inspection.digest, inspection.reference_digest)

    def check_index(self, path: Path) -> IndexHeader:
        """An index of this folder, checked against this reference and the adapter it holds now."""
        header = IndexHeader.read(path)
        if header.modality not in self.adapters:
            raise AliceError(f"index of {header.modality!r}, an adapter this reference does not have")
        manifest, sha = self.adapters[header.modality]
        header.check_against(self.sha256, sha, len(self.manifest.vocabulary), manifest.search or {})
        return header

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
