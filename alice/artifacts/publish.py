"""Writing reference spaces and adapters: safetensors for weights, JSON for the rest (:mod:`alice.artifacts.format`).

A space is only ever written whole. :func:`write_space` writes a new one
(build, align, import); :func:`update_space` makes the next version of an
existing one (a new adapter, the evaluation, an index, the report): the
unchanged files are hard-linked into a staging folder beside the space, the
new ones written there with a fresh ``space.json``, and the folder swapped
into place (:func:`alice.files.publish_folder`) under a lock on the folder
that holds it. Nothing temporary is ever inside a space, and a crash at any step
leaves the previous version or the next one, and two writers never publish
at once. Reading a space back is :mod:`alice.artifacts.loaded`'s job. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save as serialise_safetensors

from alice.artifacts.format.layout import (
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    CARD,
    CURVE_FILE,
    FORMAT_VERSION,
    HISTORY_FILE,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
    SEARCH_MEAN,
    SPACE_RECORD,
    STATISTICS_PREFIX,
)
from alice.artifacts.format.manifests import AdapterManifest, ReferenceManifest, WeightsRecord
from alice.artifacts.integrity.record import (
    Entry,
    Inspection,
    Problem,
    SpaceRecord,
    read_record,
    record_of,
    reference_digest_of,
    role,
    scan,
)
from alice.core.alignment import LatentStatistics
from alice.core.interventions import Intervention
from alice.core.modules import Classifier, Decoder, Encoder
from alice.errors import AliceError
from alice.files import (
    content_bytes,
    folder_lock,
    json_text,
    make_folder,
    publish_folder,
    recover,
    refuse_to_replace,
    staging_folder,
)
from alice.reading import read_json

if TYPE_CHECKING:
    from alice.artifacts.loaded import ReferenceSpace

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
    (huggingface/safetensors#584), which would change the hash from run to run.
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
    history: bytes | None = None  # history.jsonl: the training curves of the jobs that trained it

    @property
    def name(self) -> str:
        return self.manifest.name

    def files(self, reference_sha256: str, reference_digest: str) -> Files:
        """``adapter.safetensors`` and ``adapter.json``, bound to the reference they were trained against.

        ``reference_digest`` (of ``reference.safetensors`` and ``reference.json``) binds the adapter to the
        reference's manifest too: a reference with another vocabulary or design refuses it.
        """
        tensors = {
            **_prefixed("encoder", self.encoder),
            **_prefixed("decoder", self.decoder),
            "normalisation.mean": self.feature_mean.detach().cpu().float().contiguous(),
            "normalisation.std": self.feature_std.detach().cpu().float().contiguous(),
        }
        if self.search_mean is not None:
            tensors[SEARCH_MEAN] = self.search_mean.detach().cpu().float().contiguous()
        blob = _serialise(tensors)
        manifest = replace(
            self.manifest,
            reference_sha256=reference_sha256,
            reference_digest=reference_digest,
            weights=WeightsRecord(ADAPTER_WEIGHTS, hashlib.sha256(blob).hexdigest()),
        )
        files: Files = {ADAPTER_WEIGHTS: blob, ADAPTER_MANIFEST: manifest.to_json()}
        if self.history is not None:
            files[HISTORY_FILE] = self.history
        return files


def _sha(value: Any) -> str:
    return hashlib.sha256(content_bytes(value)).hexdigest()


def reference_files(
    classifier: Classifier,
    intervention: Intervention,
    manifest: ReferenceManifest,
    adapters: list[AdapterWeights],
    statistics: LatentStatistics | None = None,
) -> tuple[Files, str]:
    """A reference folder's files (no model cards yet) and the sha256 of its weights (and latent statistics)."""
    extra = statistics.tensors(STATISTICS_PREFIX) if statistics is not None else {}
    blob = _serialise({**_prefixed("classifier", classifier), **_prefixed("intervention", intervention), **extra})
    digest = hashlib.sha256(blob).hexdigest()
    manifest = replace(manifest, weights=WeightsRecord(REFERENCE_WEIGHTS, digest))
    files: Files = {REFERENCE_WEIGHTS: blob, REFERENCE_MANIFEST: manifest.to_json()}
    bound = reference_digest_of({k: _sha(files[k]) for k in files})
    for adapter in adapters:
        files.update(adapter_files_in_reference(adapter, digest, bound))
    return files, digest


def adapter_files_in_reference(adapter: AdapterWeights, reference_sha256: str, reference_digest: str) -> Files:
    return {
        f"{ADAPTERS_FOLDER}/{adapter.name}/{rel}": content
        for rel, content in adapter.files(reference_sha256, reference_digest).items()
    }


def derived_reference_files(reference: ReferenceSpace, adapters: list[AdapterWeights]) -> Files:
    """A new folder's files: this reference byte for byte and the given adapters (e.g. after paired fine-tuning)."""
    files: Files = {
        REFERENCE_WEIGHTS: (reference.path / REFERENCE_WEIGHTS).read_bytes(),
        REFERENCE_MANIFEST: (reference.path / REFERENCE_MANIFEST).read_bytes(),
    }
    for adapter in adapters:
        files.update(adapter_files_in_reference(adapter, reference.sha256, reference.reference_digest))
    return files


# --------------------------------------------------------------------------- what may be replaced

#: hidden names an older ALICE left inside a space (checkpoints, partial writes): no sign of someone else's folder
_OLD_LEFTOVER = re.compile(r"^\..+\.(checkpoint|tmp-\d+|old(-\d+)?|partial-\w+|removed-\d+)(\.old)?$")


def _manifest_format(file: Path) -> str | None:
    try:
        data = read_json(file)
    except AliceError:
        return None
    return data.get("format") if isinstance(data, dict) else None


def is_reference_folder(path: Path) -> bool:
    """A folder ALICE wrote as a reference space: an ALICE reference manifest, and only files a space holds."""
    path = Path(path)
    if _manifest_format(path / REFERENCE_MANIFEST) != "alice.reference":
        return False
    files, problems = scan(path)
    strange = [p for p in problems if not _OLD_LEFTOVER.match(p.item.rsplit("/", 1)[-1]) or "symbolic link" in p.detail]
    return not strange and all(role(rel) for rel in files)


def is_adapter_folder(path: Path) -> bool:
    """An adapter folder ALICE wrote: an ALICE adapter manifest, and nothing but its weights, history and model
    card."""
    path = Path(path)
    names = {p.name for p in path.iterdir()} if path.is_dir() else set()
    own = {ADAPTER_WEIGHTS, ADAPTER_MANIFEST, CARD, HISTORY_FILE, CURVE_FILE}
    return _manifest_format(path / ADAPTER_MANIFEST) == "alice.adapter" and names <= own


def refuse_existing(path: Path, overwrite: bool, kind: str = "reference") -> None:
    """Before any work: an existing output is replaced only when asked to, and only if it is an ALICE ``kind``."""
    if kind == "adapter":
        refuse_to_replace(path, overwrite, "adapter", is_adapter_folder)
    else:
        refuse_to_replace(path, overwrite, "reference space", is_reference_folder)


# --------------------------------------------------------------------------- writing whole spaces


def _write_record(staging: Path, record: SpaceRecord) -> None:
    (staging / SPACE_RECORD).write_text(json_text(record.to_json()), encoding="utf-8")


def write_space(out: Path, files: Files, overwrite: bool = False) -> SpaceRecord:
    """Write a whole reference space (its files, adapters and cards, plus ``space.json``) as one atomic step.

    Replacing an existing space drops its other adapters, indexes and report, which belonged to the old one.
    """
    out = Path(out).absolute()
    refuse_existing(out, overwrite)
    strange = [rel for rel in files if not role(rel)]
    if strange:
        raise AliceError(f"{strange[0]!r} is no part of a reference space")
    blobs = {rel: content_bytes(value) for rel, value in files.items()}
    make_folder(out.parent)
    with folder_lock(out.parent), staging_folder(out) as staging:
        for rel, data in blobs.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        record = SpaceRecord({rel: Entry(rel, len(b), hashlib.sha256(b).hexdigest()) for rel, b in blobs.items()})
        _write_record(staging, record)
        publish_folder(staging, out, "space")
    return record


def write_reference(out: Path, files: Files, overwrite: bool = False) -> Path:
    """:func:`write_space`, returning the folder."""
    out = Path(out).absolute()
    write_space(out, files, overwrite)
    return out


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # the same bytes, no copy: ALICE never writes a file in place
    except OSError:
        shutil.copy2(src, dst)


def update_space(
    path: Path, changes: Files, replace_folders: tuple[str, ...] = (), rehash: bool = False
) -> SpaceRecord:
    """Publish the next version of a space: ``changes`` (relative path -> content, a file to move in, or None to
    delete) applied, folders in ``replace_folders`` replaced whole, everything else hard-linked as it is.

    ``rehash`` records every file's sha256 afresh instead of taking the old record's (``verify --rehash``).
    Refuses a space holding anything a space does not hold.
    """
    path = Path(path).absolute()
    strange = [rel for rel in changes if not role(rel)]
    if strange:
        raise AliceError(f"{strange[0]!r} is no part of a reference space")

    def dropped(rel: str) -> bool:
        return rel in changes or any(rel == f or rel.startswith(f + "/") for f in replace_folders)

    with folder_lock(path.parent):
        recover(path)
        if not path.is_dir():
            raise AliceError(f"reference folder {path} does not exist")
        files, problems = scan(path)
        record = None if rehash else read_record(path)
        for rel, size in files.items():
            entry = record.entries.get(rel) if record is not None else None
            if not role(rel) or (record is not None and entry is None):
                problems.append(Problem(rel, "is an unexpected file, named by no manifest"))
            elif entry is not None and entry.size != size:
                problems.append(Problem(rel, "was changed after the space was written"))
        Inspection(path, record, files, {}, problems).raise_first()
        kept = {rel: size for rel, size in files.items() if not dropped(rel)}
        known = {rel: record.entries[rel].sha256 for rel in kept} if record is not None else {}
        with staging_folder(path) as staging:
            for rel in kept:
                _link(path / rel, staging / rel)
            sizes = dict(kept)
            for rel, value in changes.items():
                if value is None:
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(value, Path):
                    shutil.move(str(value), target)
                else:
                    data = content_bytes(value)
                    target.write_bytes(data)
                    known[rel] = hashlib.sha256(data).hexdigest()
                sizes[rel] = target.stat().st_size
            new = record_of(staging, sizes, known)
            _write_record(staging, new)
            publish_folder(staging, path, "space")
    return new


@contextmanager
def scratch_beside(space: Path) -> Iterator[Path]:
    """A hidden folder beside a space for work that goes into it later (an index, a report); removed at the end.

    It is named like a staging folder of the space, so a crash leaves nothing :func:`alice.files.recover` keeps.
    """
    with staging_folder(Path(space).absolute()) as tmp:
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def inside(path: Path, folder: Path) -> str | None:
    """``path`` relative to ``folder`` ('/'-separated) when it lies inside it; else None."""
    try:
        return Path(path).resolve().relative_to(Path(folder).resolve()).as_posix()
    except ValueError:
        return None
