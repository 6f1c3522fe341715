"""ALICE from Python, in the paper's own terms.

::

    import alice

    space = alice.load("artifacts/digits-image")            # C_ref, M_ref and every adapter, hashes verified
    z = space.encode("text", ["a seven next to a two"])     # E_text(backbone(x)), on the unit sphere
    p = space.classify(z)                                    # sigmoid(C_ref(z)): [n, classes]
    space.labels(z)                                          # [["two", "seven"]] (calibrated thresholds)
    z2 = space.intervene(z, replace=("seven", "three"))      # E(D(M_ref(z))): replace seven with three
    x = space.decode("image", z2)                            # D_image(z2), in the backbone's feature units

Encoding raw inputs runs the adapter's own backbone, rebuilt from its
manifest through the plugin registry (the one training used), and standardises
its features with the adapter's stored mean and std exactly as training did;
``encode_features`` takes backbone features you already have. Every tensor
returned is a plain ``torch.Tensor`` on the space's device, computed without
gradients. Mistakes (an unknown modality or label, features of the wrong
size, an empty input) raise :class:`alice.errors.AliceError` with one line
saying what is wrong.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from alice import console
from alice.artifacts.indexes import Index
from alice.artifacts.store import Adapter, ReferenceSpace
from alice.core.interventions import InterventionBatch
from alice.data.features import check_features
from alice.data.loading import make_backbone
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.plugin.backbone import Backbone
from alice.plugin.dataset import label_key
from alice.plugin.limits import InputLimits
from alice.plugin.manager import get_registry

__all__ = ["Reads", "Space", "UnannotatedReadingWarning", "Unread", "load"]

#: a class given by name ("three") or by index in the vocabulary (3)
Label = Union[str, int]
#: one "replace i with j" pair, or one pair per row
Replacement = Union[tuple[Label, Label], Sequence[tuple[Label, Label]]]
#: anything that becomes a float tensor: a tensor, a numpy array, nested lists
ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Any]]


class Unread(AliceError):
    """A query of a kind no adapter of the space reads, or not the adapter named (the server answers 415 for a
    file)."""


@dataclass(frozen=True)
class Reads:
    """What one adapter's backbone reads: its name, the file endings it reads, whether it reads text."""

    backbone: str
    file_suffixes: tuple[str, ...]
    reads_text: bool

    def describe(self) -> str:
        """``".png, .jpg files"``, ``"text"``, ``"no queries"``."""
        kinds = ([f"{', '.join(self.file_suffixes)} files"] if self.file_suffixes else []) + (
            ["text"] if self.reads_text else []
        )
        return " and ".join(kinds) or "no queries"


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


class UnannotatedReadingWarning(UserWarning):
    """C_ref reads latents of a modality as a class that modality's data set does not annotate.

    The adapter never learnt what that class looks like in its modality (it was masked out of its
    losses), so the reading is unfounded: ``labels`` leaves the class out, and a search with such a
    latent may return that class's items. Typical cause: the data set holds a class the reference
    lacks (aliased to ``""``), whose items C_ref can only read as one of the classes the modality
    does not annotate. :meth:`Space.warnings` gives the lines row by row.
    """


def _names(items: Sequence[str], limit: int = 20) -> str:
    items = list(items)
    shown = ", ".join(items[:limit]) or "none"
    return shown if len(items) <= limit else f"{shown}, … ({len(items)} in all)"


class Space:
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

    def backbone(self, modality: str) -> Backbone:
        """The modality's backbone, built from its adapter manifest through the plugin registry (once)."""
        return self._backbone(modality)[0]

    def _backbone(self, modality: str) -> tuple[Backbone, str]:
        adapter = self.adapter(modality)
        if modality not in self._backbones:
            spec = adapter.manifest.modality_spec().backbone
            backbone, plugin = make_backbone(spec, adapter.manifest.plugins.get("backbone", ""))
            backbone.bind(feature_dim=self.feature_dim(modality))
            expected = adapter.manifest.backbone.identity
            if expected and _canonical(backbone.identity()) != _canonical(expected):
                console.warn(
                    f"backbone {spec.name!r} now identifies as {_canonical(backbone.identity())}, but adapter "
                    f"{modality!r} "
                    f"was trained on {_canonical(expected)}: its features may differ from the training ones"
                )
            if backbone.feature_dim != self.feature_dim(modality):
                raise AliceError(
                    f"backbone {spec.name!r} gives {backbone.feature_dim} features, adapter {modality!r} takes "
                    f"{self.feature_dim(modality)}"
                )
            self._backbones[modality] = (backbone, plugin)
        return self._backbones[modality]

    def _backbone_class(self, modality: str) -> type[Backbone] | None:
        """The registered class of the modality's backbone, without building it (None: its plugin is not installed)."""
        try:
            return get_registry().backbone(self.adapter(modality).manifest.backbone.name)
        except AliceError:
            return None

    def reads(self, modality: str) -> Reads:
        """What the modality's backbone reads, as the backbone itself declares it (``file_suffixes``,
        ``reads_text``): an ``hf`` backbone reads what its model reads; one whose plugin is not installed reads
        nothing."""
        name = self.adapter(modality).manifest.backbone.name
        if self._backbone_class(modality) is None:
            return Reads(name, (), False)
        backbone = self.backbone(modality)
        return Reads(name, tuple(backbone.file_suffixes), bool(backbone.reads_text))

    def reader(self, suffix: str | None = None, source: str | None = None) -> str:
        """The adapter that reads a file ending in ``suffix`` (".png"), or text (``suffix=None``).

        ``source`` names it, refused unless its backbone reads that kind of query; else it is the one
        adapter whose backbone declares it. Raises :class:`Unread` when none does (or not the named one),
        :class:`AliceError` when several do and none is named.
        """
        kind = f"{suffix} files" if suffix else "text"
        if source is not None:
            reads = self.reads(source)
            if (suffix in reads.file_suffixes) if suffix else reads.reads_text:
                return source
            raise Unread(f"{source!r} reads {reads.describe()}, not {kind}")
        everything = {n: self.reads(n) for n in self.modalities}
        matching = [n for n, r in everything.items() if ((suffix in r.file_suffixes) if suffix else r.reads_text)]
        if len(matching) == 1:
            return matching[0]
        if not matching:
            what = "; ".join(f"{n}: {r.describe()}" for n, r in everything.items())
            raise Unread(f"no adapter of this space reads {kind} ({what or 'no adapters'})")
        raise AliceError(f"several adapters read {kind} ({', '.join(matching)}); name one (--from; from, in a request)")

    def modality_of(self, query: str | Path) -> str:
        """The adapter that reads a query: a file, the one whose backbone reads its suffix; text, the one reading text.

        What a backbone reads is its own declaration (:meth:`reads`); the space knows no modality by name.
        """
        path = Path(query)
        suffix = path.suffix.lower()
        files = suffix and any(suffix in self.reads(n).file_suffixes for n in self.modalities)
        if files and not path.is_file():
            raise AliceError(f"no file {str(query)!r}; give an existing file, or text with --from <modality>")
        try:
            return self.reader(suffix if files else None)
        except Unread as exc:
            raise Unread(f"{exc}; name the adapter that reads the query with --from") from None

    def read_file(self, modality: str, path: str | Path, limits: InputLimits | None = None) -> Any:
        """One file decoded by the modality's backbone into the input ``encode`` takes, refused over ``limits``
        (default :class:`alice.plugin.InputLimits`) before it is decoded."""
        return self.backbone(modality).read_file(Path(path), limits or InputLimits())

    def preview(self, modality: str, item: Any) -> Any:
        """How a person sees one input (:data:`alice.plugin.Preview`): its backbone's word, else its text."""
        cls = self._backbone_class(modality)
        return self.backbone(modality).preview(item) if cls is not None else str(item)

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
    def classify(self, z: ArrayLike, modality: str | None = None) -> torch.Tensor:
        """Per-class probabilities ``[n, classes]``: sigmoid(C_ref(z)), classes in ``vocabulary`` order.

        With ``modality`` (the adapter the latents came from), rows that read as a class it does not
        annotate raise an :class:`UnannotatedReadingWarning` (see :meth:`warnings`).
        """
        p = torch.sigmoid(self.reference.classifier(self._latents(z)))
        if modality is not None:
            self._warn(p, modality)
        return p

    def predict(self, z: ArrayLike, modality: str | None = None, warn: bool = True) -> torch.Tensor:
        """Multi-hot predictions ``[n, classes]`` (bool): ``classify(z) >= thresholds(modality)``.

        ``modality`` picks whose calibrated thresholds to use (default: the
        reference modality's); pass the modality the latents were encoded from.
        Classes that modality does not annotate (:meth:`annotated`) are never
        predicted: they are False in every row. A row that C_ref reads as such a
        class raises an :class:`UnannotatedReadingWarning` (``warn=False``: not).
        """
        p = self.classify(z)
        if warn:
            self._warn(p, modality)
        return (p >= self.thresholds(modality)) & self._annotated_mask(modality)

    def labels(self, z: ArrayLike, modality: str | None = None, warn: bool = True) -> list[list[str]]:
        """The predicted label names of each row, in vocabulary order (see ``predict``)."""
        vocab = self.vocabulary
        rows = self.predict(z, modality, warn).cpu().numpy()
        return [[vocab[c] for c in np.flatnonzero(row)] for row in rows]

    def warnings(self, z: ArrayLike, modality: str | None = None) -> list[list[str]]:
        """Per row, one line for a reading of ``z`` that rests on classes ``modality`` does not annotate ([] if none).

        A row is flagged when C_ref's probability of a class the modality's data set does not
        annotate reaches that class's threshold in the reference modality (where C_ref was
        calibrated): C_ref reads the latent as that class, but the adapter was never taught what it
        looks like, so ``labels`` leaves it out and a search with the latent may return its items.
        The reference modality annotates every class: its latents are never flagged.
        """
        return self._unfounded(self.classify(z), modality)

    def _annotated_mask(self, modality: str | None) -> torch.Tensor:
        known = set(self.annotated(modality))
        return torch.tensor([c in known for c in self.vocabulary], dtype=torch.bool, device=self.device)

    def _unfounded(self, p: torch.Tensor, modality: str | None) -> list[list[str]]:
        name = self.reference_modality if modality is None else modality
        return [[self._unfounded_line(name, read)] if read else [] for read in self._unannotated_readings(p, name)]

    def _unannotated_readings(self, p: torch.Tensor, name: str) -> list[list[tuple[str, float]]]:
        """Per row, the classes ``name`` does not annotate that C_ref reads in it, most probable first."""
        masked = ~self._annotated_mask(name)
        if not bool(masked.any()):
            return [[] for _ in range(p.shape[0])]
        # where C_ref was calibrated: the reference modality's thresholds (every class annotated there)
        cut = self.thresholds(self.reference_modality) if self.reference_modality in self.adapters else 0.5
        over = ((p >= cut) & masked).cpu().numpy()
        probs = p.cpu().numpy()
        return [
            sorted(((self.vocabulary[c], float(row[c])) for c in np.flatnonzero(flags)), key=lambda x: -x[1])
            for row, flags in zip(probs, over)
        ]

    @staticmethod
    def _unfounded_line(name: str, read: list[tuple[str, float]]) -> str:
        shown = ", ".join(f"{c} (p {p:.2f})" for c, p in read[:3]) + (
            f" and {len(read) - 3} more" if len(read) > 3 else ""
        )
        return (
            f"C_ref reads this {name} input as {shown}, a class adapter {name!r} does not annotate: the reading is "
            "unfounded (labels leave it out; search results may rest on it); the input may hold a class the "
            "reference lacks"
        )

    def _warn(self, p: torch.Tensor, modality: str | None) -> None:
        """One :class:`UnannotatedReadingWarning` for the rows of ``p`` read as unannotated classes (none: nothing)."""
        name = self.reference_modality if modality is None else modality
        readings = self._unannotated_readings(p, name)
        flagged = [read for read in readings if read]
        if not flagged:
            return
        if len(readings) == 1:
            message = self._unfounded_line(name, flagged[0])
        else:
            classes = sorted({c for read in flagged for c, _ in read}, key=self.vocabulary.index)
            message = (
                f"C_ref reads {len(flagged)} of {len(readings)} {name} inputs as {', '.join(classes)}, which adapter "
                f"{name!r} does not annotate: unfounded readings (labels leave them out; search results may rest on "
                f"them); Space.warnings(z, {name!r}) gives them row by row"
            )
        warnings.warn(message, UnannotatedReadingWarning, stacklevel=3)

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


def _canonical(identity: Any) -> str:
    return json.dumps(identity, sort_keys=True, default=str)
