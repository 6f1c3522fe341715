"""Reference spaces and adapters on disk: safetensors for weights, JSON for the rest (:mod:`alice.artifacts.layout`).

A space is only ever written whole. :func:`write_space` writes a new one
(build, align, import); :func:`update_space` makes the next version of an
existing one (a new adapter, the evaluation, an index, the report): the
unchanged files are hard-linked into a staging folder beside the space, the
new ones written there with a fresh ``space.json``, and the folder swapped
into place (:func:`alice.files.publish_folder`) under a lock on the folder
that holds it. Nothing temporary is ever inside a space, a crash at any step
leaves the previous version or the next one, and two writers never publish
at once. Loading checks every file against ``space.json``
(:mod:`alice.artifacts.space`) and each weights file against its manifest.
No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as serialise_safetensors

from alice.artifacts.describe import adapter_manifest, adapter_names, checked_sha256, open_space
from alice.artifacts.layout import (
    ADAPTER_MANIFEST,
    ADAPTER_WEIGHTS,
    ADAPTERS_FOLDER,
    CARD,
    CURVE_FILE,
    FORMAT_VERSION,
    HISTORY_FILE,
    REFERENCE_MANIFEST,
    REFERENCE_WEIGHTS,
    SPACE_RECORD,
)
from alice.artifacts.manifests import (
    AdapterManifest,
    ReferenceManifest,
    WeightsRecord,
    read_reference_manifest,
)
from alice.artifacts.space import (
    Entry,
    Inspection,
    Problem,
    SpaceRecord,
    inspect_space,
    read_record,
    record_of,
    reference_digest_of,
    role,
    scan,
)
from alice.core.alignment import LatentStatistics, SearchEncoder, label_projector, search_transform
from alice.core.interventions import Intervention
from alice.core.modules import Classifier, Decoder, Encoder
from alice.data.loading import ModalityData, load_modality
from alice.errors import AliceError
from alice.files import (
    content_bytes,
    folder_lock,
    json_text,
    make_folder,
    publish_folder,
    read_json,
    recover,
    refuse_to_replace,
    staging_folder,
)
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
    history: bytes | None = None  # history.jsonl: the training curves of the jobs that trained it

    @property
    def name(self) -> str:
        return self.manifest.name

    def files(self, reference_sha256: str, reference_digest: str = "") -> Files:
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


def adapter_files_in_reference(adapter: AdapterWeights, reference_sha256: str, reference_digest: str = "") -> Files:
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
    """An adapter folder ALICE wrote: an ALICE adapter manifest, and nothing but its weights and model card."""
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


# --------------------------------------------------------------------------- reading


def _read_weights(
    folder: Path, weights: WeightsRecord, known: str | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a weights file after checking its sha256 (``known``: already hashed by the space's check)."""
    path = folder / weights.file
    actual = checked_sha256(path, weights.sha256, known)
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


M = TypeVar("M", bound=torch.nn.Module)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _built(make: Callable[[], M], state: dict[str, torch.Tensor], what: str) -> M:
    """The module a manifest describes (``make()``), holding the weights ``state``.

    A manifest is someone else's JSON: its sizes are checked against the weights' shapes on the meta device
    first, so sizes the file does not hold (a latent size of 10^12) are refused before anything is allocated.
    """
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in make().state_dict().items()}
    except (TypeError, ValueError) as exc:  # a size that is no size, a dropout above 1
        raise AliceError(f"{what}: the manifest's settings cannot build it ({_first_line(exc)})") from None
    except Exception:  # a module that cannot be built on the meta device: checked once built, below
        shapes = None
    if shapes is not None:
        found = {k: tuple(v.shape) for k, v in state.items()}
        wrong = sorted(set(shapes) ^ set(found)) or [k for k in sorted(shapes) if shapes[k] != found[k]]
        if wrong:
            k = wrong[0]
            detail = (
                f"{k} is {list(shapes[k])} in the manifest, {list(found[k])} in the file"
                if k in shapes and k in found
                else f"{k} is {'missing from the file' if k in shapes else 'in the file only'}"
            )
            raise AliceError(f"{what} weights do not fit the manifest's architecture: {detail}")
    try:
        module = make()
    except (TypeError, ValueError, RuntimeError, MemoryError) as exc:
        raise AliceError(f"{what}: the manifest's settings cannot build it ({_first_line(exc)})") from None
    _load_into(module, state, what)
    return module


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

    def to(self, device: torch.device) -> Adapter:
        self.encoder.to(device).eval()
        self.decoder.to(device).eval()
        if self.search_mean is not None:
            self.search_mean = self.search_mean.to(device)
        if self.search_projector is not None:
            self.search_projector = self.search_projector.to(device)
        return self

    def load_data(
        self, splits: tuple[str, ...], device: torch.device, options: dict[str, Any] | None = None
    ) -> ModalityData:
        """Splits of this adapter's own data set (features from the cache), normalised as it was trained.

        ``options`` replace data set options of its manifest (``alice eval --set data.KEY=VALUE``).
        """
        spec = self.manifest.modality_spec()
        spec.data.options.update(options or {})
        return load_modality(
            spec, self.reference_vocabulary, device, splits, normalisation=(self.feature_mean, self.feature_std)
        )


@dataclass
class ReferenceSpace:
    """The frozen classifier C_ref and intervention module M_ref, plus its adapters."""

    path: Path
    manifest: ReferenceManifest
    classifier: Classifier
    intervention: Intervention
    sha256: str
    inspection: Inspection | None = None  # what loading found: the record, every file's sha256, the problems
    statistics: LatentStatistics | None = None  # of the reference modality's train latents (None: an older artifact)

    @property
    def vocabulary(self) -> list[str]:
        return list(self.manifest.vocabulary)

    @property
    def latent_dim(self) -> int:
        return self.manifest.latent_dim

    @property
    def digest(self) -> str:
        """The space's digest: the Merkle root over every weights file and manifest (:mod:`alice.artifacts.space`)."""
        return self._inspection().digest

    @property
    def reference_digest(self) -> str:
        """The digest of ``reference.safetensors`` and ``reference.json``, which every adapter of it names."""
        return self._inspection().reference_digest

    def _inspection(self) -> Inspection:
        if self.inspection is None:
            self.inspection = inspect_space(self.path)
        return self.inspection

    def adapter_names(self) -> list[str]:
        return adapter_names(self.path, self._inspection().record)

    def load_adapter(self, name: str) -> Adapter:
        folder = self.path / ADAPTERS_FOLDER / name
        if name not in self.adapter_names() or not folder.is_dir():
            known = ", ".join(self.adapter_names()) or "none"
            raise AliceError(f"reference {self.path} has no adapter {name!r} (has: {known})")
        m = adapter_manifest(folder, self.sha256, self.reference_digest)
        known_sha = self._inspection().hashes.get(f"{ADAPTERS_FOLDER}/{name}/{m.weights.file}")
        tensors, digest = _read_weights(folder, m.weights, known_sha)
        feature_dim = m.backbone.feature_dim
        enc = _built(
            lambda: Encoder(feature_dim, self.latent_dim, m.encoder_hidden),
            _split(tensors, "encoder"),
            f"adapter {name!r} encoder",
        )
        dec = _built(
            lambda: Decoder(feature_dim, self.latent_dim, m.encoder_hidden),
            _split(tensors, "decoder"),
            f"adapter {name!r} decoder",
        )
        mean, std = tensors.get("normalisation.mean"), tensors.get("normalisation.std")
        if mean is None or std is None or mean.shape != (feature_dim,) or std.shape != (feature_dim,):
            raise AliceError(f"adapter {name!r}: feature normalisation missing or not of size {feature_dim}")
        search = m.search or {}
        search_mean, projector = None, None
        if search.get("centre"):
            search_mean = tensors.get(SEARCH_MEAN)
            if search_mean is None or search_mean.shape != (self.latent_dim,):
                raise AliceError(
                    f"adapter {name!r}: its manifest centres search, but {SEARCH_MEAN} is missing or "
                    f"not of size {self.latent_dim}"
                )
        if search.get("project"):
            if self.statistics is None:
                raise AliceError(
                    f"adapter {name!r} projects search onto the label subspace, but reference "
                    f"{self.path} stores no latent statistics"
                )
            projector = label_projector(self.statistics, float(search["project"]))
        return Adapter(folder, m, enc.eval(), dec.eval(), mean, std, digest, self.vocabulary, search_mean, projector)

    @classmethod
    def load(cls, path: str | Path, digest: str | None = None) -> ReferenceSpace:
        """Load and verify a reference folder: every file against ``space.json``, the weights against their manifests.

        Refuses hidden files, symbolic links and files no record names. ``digest`` pins the space: any other
        digest is refused (``--expect-digest``). A space written before ``space.json`` loads with a warning.
        """
        path = Path(path)
        _, inspection = open_space(path, digest)
        return cls.open(path, inspection)

    @classmethod
    def open(cls, path: Path, inspection: Inspection) -> ReferenceSpace:
        """C_ref and M_ref of a folder already inspected (its problems are the caller's to report)."""
        m = read_reference_manifest(path)
        tensors, digest = _read_weights(path, m.weights, inspection.hashes.get(REFERENCE_WEIGHTS))
        vocab, latent = m.vocabulary, m.latent_dim
        classifier = _built(
            lambda: Classifier(len(vocab), latent, m.classifier_hidden, m.classifier_dropout),
            _split(tensors, "classifier"),
            "reference classifier",
        )
        design_cls = get_registry().intervention(m.design, m.plugins.get("intervention", ""))
        intervention = _built(
            lambda: design_cls(len(vocab), latent, **m.design_settings),
            _split(tensors, "intervention"),
            f"reference intervention ({m.design})",
        )
        for p in (*classifier.parameters(), *intervention.parameters()):
            p.requires_grad_(False)
        statistics = LatentStatistics.from_tensors(tensors, STATISTICS_PREFIX)
        if m.statistics is not None and statistics is None:
            raise AliceError(f"{path / m.weights.file} lacks the latent statistics its manifest describes")
        if statistics is not None and (problem := statistics.shape_problem(latent, len(vocab))):
            raise AliceError(f"{path / m.weights.file}: {problem}")
        return cls(path, m, classifier.eval(), intervention.eval(), digest, inspection, statistics)
