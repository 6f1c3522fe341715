"""The loaded space: :class:`Space`, which :func:`alice.load` returns (see :mod:`alice.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from alice.api._inputs import Inputs
from alice.api._readings import ArrayLike, Readings
from alice.artifacts.loaded import Adapter, ReferenceSpace
from alice.core.interventions import InterventionBatch
from alice.data.features import check_features
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.plugin.backbone import Backbone
from alice.plugin.dataset import label_key
from alice.search.indexes import Index

#: a class given by name ("three") or by index in the vocabulary (3)
Label = Union[str, int]
#: one "replace i with j" pair, or one pair per row
Replacement = Union[tuple[Label, Label], Sequence[tuple[Label, Label]]]


def load(path: str | Path, device: str | torch.device = "cpu", digest: str | None = None) -> Space:
    """Load a reference folder and all its adapters, re-hashing every file against ``space.json``.

    ``device`` is where the networks run ("cpu", "cuda", "auto"). ``digest``
    pins the space (the 64 hex digits ``alice reference show`` prints): any
    other space is refused, even one whose record was consistently rewritten.
    Raises :class:`AliceError` if a file does not match its record or manifest,
    the folder holds a file no record names (hidden ones included) or a
    symbolic link, or an adapter was trained against another reference.
    """
    return Space.load(path, device, digest)


def _names(items: Sequence[str], limit: int = 20) -> str:
    items = list(items)
    shown = ", ".join(items[:limit]) or "none"
    return shown if len(items) <= limit else f"{shown}, … ({len(items)} in all)"


class Space(Inputs, Readings):
    """A loaded ALICE space: the frozen reference (C_ref, M_ref) with one adapter (E, D) per modality.

    Build one with :func:`alice.load`. ``modalities`` are the adapter names
    (``encode("text", …)`` uses the adapter folder ``adapters/text``).
    """

    def __init__(self, reference: ReferenceSpace, adapters: dict[str, Adapter], device: torch.device) -> None:
        self.reference = reference
        self.adapters = adapters
        self.device = device
        self._backbones: dict[str, tuple[Backbone, str]] = {}
        reference.classifier.to(device).eval()
        reference.intervention.to(device).eval()
        for adapter in adapters.values():
            adapter.to(device)

    # ------------------------------------------------------------------ loading and facts

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", digest: str | None = None) -> Space:
        """See :func:`alice.load`."""
        dev = device if isinstance(device, torch.device) else pick_device(str(device))
        reference = ReferenceSpace.load(path, digest)
        adapters = {name: reference.load_adapter(name) for name in reference.adapter_names()}
        return cls(reference, adapters, dev)

    @property
    def path(self) -> Path:
        return self.reference.path

    @property
    def vocabulary(self) -> list[str]:
        """The label vocabulary, in the order of the classifier's outputs."""
        return self.reference.vocabulary

    @property
    def digest(self) -> str:
        """The space's digest: a Merkle root over every weights file and manifest (what ``digest=`` pins)."""
        return self.reference.digest

    def annotated(self, modality: str | None = None) -> list[str]:
        """The classes a modality's data set annotates (default: the reference modality's), in vocabulary order.

        ``predict`` and ``labels`` never name another class for that modality: its thresholds for the others
        were never calibrated.
        """
        names = set(self.adapter(self.reference_modality if modality is None else modality).manifest.labels.annotated)
        return [c for c in self.vocabulary if c in names] if names else list(self.vocabulary)

    @property
    def latent_dim(self) -> int:
        return self.reference.latent_dim

    @property
    def modalities(self) -> list[str]:
        """Names of the adapters, the modalities this space can encode and decode."""
        return sorted(self.adapters)

    @property
    def reference_modality(self) -> str:
        """The adapter trained with C_ref and M_ref in stage 1 (its name, usually the modality)."""
        name = self.reference.manifest.reference_modality
        if name in self.adapters:
            return name
        return self.modalities[0] if self.adapters else name

    def __repr__(self) -> str:
        return (
            f"Space({str(self.path)!r}, {len(self.vocabulary)} labels, latent {self.latent_dim}, "
            f"modalities: {', '.join(self.modalities) or 'none'})"
        )

    def adapter(self, modality: str) -> Adapter:
        """The adapter (E, D, feature normalisation, manifest) of one modality."""
        if not isinstance(modality, str) or modality not in self.adapters:
            raise AliceError(f"unknown modality {modality!r}: this space has {_names(self.modalities)}")
        return self.adapters[modality]

    def feature_dim(self, modality: str) -> int:
        """How many backbone features one input of this modality has."""
        return int(self.adapter(modality).feature_mean.shape[0])

    def thresholds(self, modality: str | None = None) -> torch.Tensor:
        """Per-class decision thresholds on ``classify``'s probabilities, ``[classes]``.

        Calibrated when the adapter was trained (Youden's J on its validation
        split) and stored in its ``adapter.json``; ``modality=None`` takes the
        reference modality's. Classes that modality does not annotate hold a
        placeholder 0.5 that ``predict`` never uses.
        """
        name = self.reference_modality if modality is None else modality
        adapter = self.adapter(name)
        values = adapter.manifest.thresholds
        if len(values) != len(self.vocabulary):
            raise AliceError(f"adapter {name!r} stores no calibrated thresholds for the {len(self.vocabulary)} classes")
        return torch.tensor([float(v) for v in values], dtype=torch.float32, device=self.device)

    # ------------------------------------------------------------------ the four operations

    @torch.no_grad()
    def encode(self, modality: str, inputs: Any, batch_size: int | None = None) -> torch.Tensor:
        """Raw inputs -> latents ``[n, latent_dim]`` on the unit sphere: E_m(standardise(backbone(inputs))).

        ``inputs`` are what the modality's backbone reads: strings for text,
        image arrays ([H, W] or [H, W, 3]), PIL images or file paths for images,
        waveforms for audio. One string or path counts as one input.
        """
        adapter = self.adapter(modality)
        if isinstance(inputs, (str, Path)):
            inputs = [inputs]
        try:
            items = list(inputs)
        except TypeError:
            raise AliceError(f"encode({modality!r}, …) takes a list of inputs, got {type(inputs).__name__}") from None
        if not items:
            raise AliceError(f"encode({modality!r}, …) got no inputs")
        backbone, plugin = self._backbone(modality)
        step = batch_size or backbone.batch_size
        feats = torch.cat(
            [
                check_features(
                    backbone.extract(items[i : i + step], self.device), backbone, len(items[i : i + step]), plugin
                )
                for i in range(0, len(items), step)
            ]
        )
        return self._encode(adapter, feats)

    @torch.no_grad()
    def encode_features(self, modality: str, features: ArrayLike) -> torch.Tensor:
        """Backbone features ``[n, feature_dim]`` (as the backbone gives them) -> latents ``[n, latent_dim]``."""
        adapter = self.adapter(modality)
        x = _as_matrix(features, f"features for {modality!r}")
        if x.shape[1] != self.feature_dim(modality):
            backbone = adapter.manifest.backbone.name
            raise AliceError(
                f"adapter {modality!r} takes {self.feature_dim(modality)} features per input (backbone "
                f"{backbone!r}), got {x.shape[1]}"
            )
        return self._encode(adapter, x)

    def _encode(self, adapter: Adapter, features: torch.Tensor) -> torch.Tensor:
        # as alice.data.loading.load_modality: float32 on the CPU, (x - mean) / std, then to the device
        x = features.detach().to("cpu", torch.float32).sub(adapter.feature_mean).div_(adapter.feature_std)
        return adapter.encode(x.to(self.device))

    @torch.no_grad()
    def search_latents(self, modality: str, z: ArrayLike) -> torch.Tensor:
        """Latents of ``modality`` as search compares them across modalities, ``[n, latent_dim]`` on the sphere.

        ``z`` as ``encode`` or ``intervene`` give them. As the modality's adapter declares (its
        manifest's ``search``, from the recipe's ``[alignment] centre`` and ``project``): its own
        mean latent taken out, the directions outside the reference's label subspace weighed
        down, the result put back on the sphere; with neither, ``z`` as it is. Indexes hold search
        latents; ``search`` applies this to the query.
        """
        return self.adapter(modality).search_latents(self._latents(z))

    def search(self, index: Index, z: ArrayLike, modality: str, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """The top ``k`` items of ``index`` for latents ``z`` of ``modality``: ``(scores [n, k], rows [n, k])``.

        The index is checked against this space (``check_index``) and the query goes through
        ``search_latents`` first, as the index's items did. Queries that C_ref reads as a class
        ``modality`` does not annotate raise an :class:`UnannotatedReadingWarning` (:meth:`warnings`).
        """
        self.check_index(index)
        self._warn(self.classify(z), modality)
        return index.search(self.search_latents(modality, z), k)

    def check_index(self, index: Index) -> None:
        """Refuse an index of a modality this space lacks, or built with another reference, adapter or vocabulary."""
        if index.modality not in self.adapters:
            raise AliceError(
                f"index {index.path} holds {index.modality!r} latents, a modality this space has no adapter for"
            )
        if index.dim != self.latent_dim:
            raise AliceError(f"index {index.path} holds {index.dim}-d latents; this space's are {self.latent_dim}-d")
        adapter = self.adapter(index.modality)
        index.check_against(self.reference.sha256, adapter.sha256, len(self.vocabulary), adapter.manifest.search or {})

    @torch.no_grad()
    def decode(self, modality: str, z: ArrayLike, standardised: bool = False) -> torch.Tensor:
        """Latents -> that modality's backbone features ``[n, feature_dim]``: D_m(z).

        By default the adapter's standardisation is undone (``x * std + mean``),
        so the result is in the units ``encode_features`` takes; with
        ``standardised=True`` it is D_m's raw output.
        """
        adapter = self.adapter(modality)
        x = adapter.decoder(self._latents(z))
        if standardised:
            return x
        return x * adapter.feature_std.to(x.device) + adapter.feature_mean.to(x.device)

    @torch.no_grad()
    def intervene(
        self, z: ArrayLike, replace: Replacement, through: str | None = None, direct: bool = False, template: int = 0
    ) -> torch.Tensor:
        """Replace class i with class j in latent space: ``[n, latent_dim]``, on the unit sphere.

        ``replace`` is one pair ``(i, j)`` for every row, or a list of one pair
        per row; classes by name or index. The result is E_m(D_m(M_ref(z))):
        M_ref's edit passed through modality m's decoder and encoder, the path
        L_sem trains M_ref on and the one the classifier reads reliably
        (``alice eval``'s "changed"/"unchanged" columns). ``through`` names m
        (default: the reference modality). ``direct=True`` returns M_ref(z)
        itself, which ``alice eval`` scores as "(direct)": usually much weaker.
        ``template`` picks the prompt sentence of text-conditioned designs
        (0: "replace all i with j").
        """
        zz = self._latents(z)
        remove, add = self._pairs(replace, zz.shape[0])
        module = self.reference.intervention
        templates = int(getattr(module, "num_templates", 1) or 1)
        if isinstance(template, bool) or not isinstance(template, (int, np.integer)) or not 0 <= template < templates:
            raise AliceError(f"template must be an integer from 0 to {templates - 1}, got {template!r}")
        if direct and through is not None:
            raise AliceError("intervene: give through=<modality> or direct=True, not both")
        adapter = None if direct else self.adapter(self.reference_modality if through is None else through)
        n = zz.shape[0]
        k = InterventionBatch(
            remove=remove.to(self.device),
            add=add.to(self.device),
            valid=torch.ones(n, dtype=torch.bool, device=self.device),
            template=torch.full((n,), int(template), dtype=torch.long, device=self.device),
        )
        edited = module(zz, k)
        if adapter is not None:
            edited = adapter.encode(adapter.decoder(edited))
        return edited

    # ------------------------------------------------------------------ checks

    def label_index(self, label: Label) -> int:
        """The position of a class in ``vocabulary``, from its name (case ignored) or index."""
        vocab = self.vocabulary
        if isinstance(label, (bool, np.bool_)):
            raise AliceError(f"unknown label {label!r}: give a class name or index")
        if isinstance(label, (int, np.integer)):
            if 0 <= int(label) < len(vocab):
                return int(label)
            raise AliceError(
                f"label index {int(label)} is out of range: the vocabulary has {len(vocab)} classes (0 to "
                f"{len(vocab) - 1})"
            )
        if isinstance(label, str):
            if label in vocab:
                return vocab.index(label)
            folded = {label_key(v): i for i, v in enumerate(vocab)}
            if label_key(label) in folded:
                return folded[label_key(label)]
        raise AliceError(f"unknown label {label!r}: the vocabulary is {_names(vocab)}")

    def _pairs(self, replace: Replacement, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        def is_label(x: Any) -> bool:
            return isinstance(x, (str, int, np.integer)) and not isinstance(x, (bool, np.bool_))

        if isinstance(replace, (tuple, list)) and len(replace) == 2 and all(is_label(x) for x in replace):
            pairs = [tuple(replace)] * n
        elif isinstance(replace, Sequence) and not isinstance(replace, str):
            pairs = list(replace)
            if len(pairs) != n:
                raise AliceError(
                    f"replace gives {len(pairs)} pairs for {n} latents: give one (i, j) pair, or one per latent"
                )
        else:
            raise AliceError(f"replace must be a pair (i, j) of classes or a list of pairs, got {replace!r}")
        remove, add = [], []
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise AliceError(f"replace pairs are (i, j): replace class i with class j; got {pair!r}")
            i, j = self.label_index(pair[0]), self.label_index(pair[1])
            if i == j:
                raise AliceError(f"replace ({pair[0]!r}, {pair[1]!r}) names the same class twice")
            remove.append(i)
            add.append(j)
        return torch.tensor(remove, dtype=torch.long), torch.tensor(add, dtype=torch.long)

    def _latents(self, z: ArrayLike) -> torch.Tensor:
        x = _as_matrix(z, "latents")
        if x.shape[1] != self.latent_dim:
            raise AliceError(f"latents of this space have {self.latent_dim} dimensions, got {x.shape[1]}")
        return x.to(self.device)


def _as_matrix(data: ArrayLike, what: str) -> torch.Tensor:
    """A finite float32 tensor ``[n, d]`` with n > 0 (one row may be given as a vector)."""
    try:
        x = data.detach() if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data, dtype=np.float32))
    except (TypeError, ValueError):
        raise AliceError(f"{what} must be numbers of shape [n, d], got {type(data).__name__}") from None
    x = x.to(torch.float32)
    if x.ndim == 1:
        x = x.unsqueeze(0) if x.shape[0] else x.reshape(0, 0)
    if x.ndim != 2:
        raise AliceError(f"{what} must have shape [n, d], got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise AliceError(f"{what}: empty input (no rows)")
    if not torch.isfinite(x).all():
        raise AliceError(f"{what} hold NaN or infinite values")
    return x
