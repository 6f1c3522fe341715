"""Check a reference folder end to end: every file against ``space.json``, every weights file against its manifest,
every adapter against the reference, every index against the adapter it was built with."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from alice.artifacts.format.layout import (
    ADAPTERS_FOLDER,
    DERIVED_FOLDERS,
    INDEX_FOLDER,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
    SPACE_RECORD,
)
from alice.artifacts.format.manifests import read_reference_manifest
from alice.artifacts.integrity.record import Inspection, SpaceRecord, inspect_space, missing_record, read_record
from alice.artifacts.loaded import ReferenceSpace
from alice.artifacts.publish import update_space
from alice.errors import AliceError
from alice.files import recover
from alice.search.indexes import Index


@dataclass
class Finding:
    item: str  # path relative to the reference folder
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def verify_space(
    path: Path, use_record: bool = True, digest: str | None = None
) -> tuple[list[Finding], Inspection | None]:
    """Everything wrong with a reference folder (and one finding per item that is fine), and what was found.

    ``use_record=False`` checks the folder without its ``space.json`` (by the layout's names and the manifests
    alone): what ``--rehash`` does before it records the files. ``digest`` pins the space.
    """
    path = Path(path)
    recover(path.absolute())
    if not path.is_dir():
        return [Finding(".", False, f"reference folder {path} does not exist")], None
    try:
        read_reference_manifest(path)
        inspection = inspect_space(path, use_record=use_record, hash_derived=True)
    except AliceError as exc:
        item = SPACE_RECORD if SPACE_RECORD in str(exc) else REFERENCE_MANIFEST
        return [Finding(item, False, str(exc))], None
    findings = [Finding(p.item, False, p.detail) for p in inspection.problems]
    if inspection.record is not None:
        findings.insert(
            0,
            Finding(SPACE_RECORD, True, f"digest {inspection.digest}; {len(inspection.record.entries)} files recorded"),
        )
    if digest is not None:
        try:
            inspection.check_digest(digest)
        except AliceError as exc:
            findings.append(Finding(SPACE_RECORD, False, str(exc)))
    try:
        ref = ReferenceSpace.open(path, inspection)
    except AliceError as exc:
        return findings + [Finding(REFERENCE_WEIGHTS, False, str(exc))], inspection
    findings.append(
        Finding(REFERENCE_WEIGHTS, True, f"sha256 {ref.sha256[:12]}… matches reference.json; C_ref and M_ref load")
    )
    for name in ref.adapter_names():
        item = f"{ADAPTERS_FOLDER}/{name}"
        try:
            adapter = ref.load_adapter(name)
            findings.append(
                Finding(item, True, f"sha256 {adapter.sha256[:12]}… matches; trained against this reference")
            )
        except AliceError as exc:
            findings.append(Finding(item, False, str(exc)))
    for rel in sorted(inspection.files):
        parts = rel.split("/")
        if parts[0] == INDEX_FOLDER and len(parts) == 2 and rel.endswith(".safetensors"):
            findings.append(check_index(path / rel, rel, ref))
    return findings, inspection


def verify_reference(path: Path) -> list[Finding]:
    """Everything wrong with a reference folder (or one finding per item that is fine)."""
    return verify_space(path)[0]


def first_problem(findings: list[Finding], derived: bool = True) -> Finding | None:
    """The first problem; with ``derived=False``, problems of derived files (a stale index) do not count."""
    return next((f for f in findings if not f.ok and (derived or f.item.split("/")[0] not in DERIVED_FOLDERS)), None)


def rehash(path: Path) -> tuple[str | None, SpaceRecord]:
    """Record every file of a space afresh in ``space.json``: after documentation was edited by hand.

    The folder is first checked without its record (weights against manifests, adapters against the reference,
    no hidden, linked or unnamed files); a folder without ``space.json`` is refused, since an older ALICE wrote
    it. The old digest (None: the old record was unreadable) and the new record are returned.
    """
    path = Path(path)
    problem = first_problem(verify_space(path, use_record=False)[0], derived=False)
    if problem is not None:
        raise AliceError(f"not recording {path}: {problem.item}: {problem.detail}")
    if not (path / SPACE_RECORD).exists():
        raise missing_record(path)
    try:
        old = read_record(path)
    except AliceError:
        old = None
    return (old.digest if old else None), update_space(path, {}, rehash=True)


def check_index(f: Path, item: str, ref: ReferenceSpace) -> Finding:
    """A search index must have been built with this reference and with the adapter it holds now."""
    try:
        index = Index.open(f)
        if index.modality not in ref.adapter_names():
            return Finding(item, False, f"index of {index.modality!r}, an adapter this reference does not have")
        adapter = ref.load_adapter(index.modality)
        index.check_against(ref.sha256, adapter.sha256, len(ref.vocabulary), adapter.manifest.search or {})
    except AliceError as exc:
        return Finding(item, False, str(exc))
    return Finding(
        item, True, f"search index of {index.count:,} {index.modality} items, built with this reference and adapter"
    )
