"""An index file's header, read and checked without torch: what `alice index list` shows and every index reader
checks first.

The file format itself (its tensors, its ``alice`` metadata) is :mod:`alice.search.indexes`'s docstring; the
header is the JSON object in front of the tensors, naming each tensor's dtype and shape and holding the file's
metadata. Nothing here reads a tensor.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alice.errors import AliceError
from alice.reading import parse_json

if TYPE_CHECKING:
    from alice.artifacts.integrity.describe import ReferenceFacts

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


@dataclass
class IndexHeader:
    """An index file's metadata and tensor shapes (see :mod:`alice.search.indexes`), checked, no tensor read."""

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


def check_index_header(facts: ReferenceFacts, path: Path) -> IndexHeader:
    """An index of the reference folder ``facts`` describes, checked against it and the adapter it holds now."""
    header = IndexHeader.read(path)
    if header.modality not in facts.adapters:
        raise AliceError(f"index of {header.modality!r}, an adapter this reference does not have")
    manifest, sha = facts.adapters[header.modality]
    header.check_against(facts.sha256, sha, len(facts.manifest.vocabulary), manifest.search or {})
    return header
