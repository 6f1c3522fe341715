"""What a space's adapters read, as their backbones declare it: which adapter reads a file or a text, the backbone
built once per modality, a file decoded, an input previewed. :class:`Inputs` is a part of :class:`alice.api.Space`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alice import console
from alice.data.loading import make_backbone
from alice.errors import AliceError
from alice.plugin.backbone import Backbone
from alice.plugin.limits import InputLimits
from alice.plugin.manager import get_registry


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


class Inputs:
    """The part of :class:`alice.api.Space` that asks each adapter's backbone what it reads."""

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


def _canonical(identity: Any) -> str:
    return json.dumps(identity, sort_keys=True, default=str)
