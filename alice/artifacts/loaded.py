"""Reference spaces and adapters read back from disk: C_ref, M_ref and each modality's encoder and decoder, loaded.

Loading checks every file against ``space.json`` (:mod:`alice.artifacts.integrity.record`) and each weights file
against its manifest, and builds each module from its manifest's sizes only after the weights' shapes fit them.
Writing a space is :mod:`alice.artifacts.publish`'s job. No pickle anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from alice.artifacts.format.layout import ADAPTERS_FOLDER, REFERENCE_WEIGHTS, SEARCH_MEAN, STATISTICS_PREFIX
from alice.artifacts.format.manifests import AdapterManifest, ReferenceManifest, WeightsRecord, read_reference_manifest
from alice.artifacts.integrity.describe import adapter_manifest, adapter_names, checked_sha256, open_space
from alice.artifacts.integrity.record import Inspection, inspect_space
from alice.config.modality import DataSpec
from alice.core.alignment import LatentStatistics, SearchEncoder, label_projector, search_transform
from alice.core.interventions import Intervention
from alice.core.modules import Classifier, Decoder, Encoder
from alice.data.loading import ModalityData, load_modality
from alice.errors import AliceError
from alice.plugin.manager import get_registry

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
        self,
        splits: tuple[str, ...],
        device: torch.device,
        options: dict[str, Any] | None = None,
        dataset: DataSpec | None = None,
    ) -> ModalityData:
        """Splits of this adapter's own data set (features from the cache), normalised as it was trained.

        ``options`` replace data set options of its manifest (``alice eval --set data.KEY=VALUE``);
        ``dataset`` replaces the data set (a recipe's ``[data]``: ``alice embed --data``), read by the same
        backbone and mapped to the same labels.
        """
        spec = self.manifest.modality_spec()
        if dataset is not None:
            spec.data = DataSpec(dataset.dataset, dict(dataset.options))
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
        """The space's digest: the Merkle root over every weights file and manifest (see ``integrity.record``)."""
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
        m = adapter_manifest(folder, self.reference_digest)
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
        digest is refused (``--expect-digest``), and so is a folder without ``space.json``.
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
