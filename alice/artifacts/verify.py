"""Check a reference folder end to end: every file against its manifest, every adapter against the reference."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from alice.artifacts.indexes import Index
from alice.artifacts.layout import (
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    CARD,
    INDEX_FOLDER,
    KNOWN_EXTRA,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
    REPORT_FOLDER,
)
from alice.artifacts.store import ReferenceSpace
from alice.errors import AliceError


@dataclass
class Finding:
    item: str  # path relative to the reference folder
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def verify_reference(path: Path) -> list[Finding]:
    """Everything wrong with a reference folder (or one finding per item that is fine)."""
    path = Path(path)
    findings: list[Finding] = []
    try:
        ref = ReferenceSpace.load(path)
    except AliceError as exc:
        return [Finding(REFERENCE_WEIGHTS, False, str(exc))]
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
    expected = {REFERENCE_WEIGHTS, REFERENCE_MANIFEST, *KNOWN_EXTRA}
    for f in sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()):
        rel = f.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue  # checkpoints and partial writes are not part of the artifact
        parts = rel.parts
        in_adapter = (
            len(parts) == 3 and parts[0] == ADAPTERS_FOLDER and parts[2] in (ADAPTER_WEIGHTS, ADAPTER_MANIFEST, CARD)
        )
        if f.is_symlink():
            findings.append(Finding(str(rel), False, "a symbolic link; artifacts hold plain files only"))
        elif parts[0] == REPORT_FOLDER and len(parts) > 1:
            continue  # `alice report`'s page and pictures
        elif parts[0] == INDEX_FOLDER and len(parts) == 2 and f.suffix == ".safetensors":
            findings.append(check_index(f, str(rel), ref))
        elif str(rel) not in expected and not in_adapter:
            findings.append(Finding(str(rel), False, "unexpected file, named by no manifest"))
    return findings


def check_index(f: Path, item: str, ref: ReferenceSpace) -> Finding:
    """A search index must have been built with this reference and with the adapter it holds now."""
    try:
        index = Index.open(f)
        adapter = ref.load_adapter(index.modality).sha256 if index.modality in ref.adapter_names() else None
        if adapter is None:
            return Finding(item, False, f"index of {index.modality!r}, an adapter this reference does not have")
        index.check_against(ref.sha256, adapter, len(ref.vocabulary))
    except AliceError as exc:
        return Finding(item, False, str(exc))
    return Finding(
        item, True, f"search index of {index.count:,} {index.modality} items, built with this reference and adapter"
    )
