"""What a server holds: one space, its backbones and its indexes, loaded once, and the locks that guard them.

Requests run in FastAPI's thread pool; encoding, intervening and searching go through
:meth:`Served.work`, one request at a time (a tokenizer or a lazily built model is not safe to
share between threads, and two cores gain nothing from running two queries at once). An upload
is decoded before that, through :meth:`Served.decoding` (one at a time, so that two large
images never sit in memory at once), so a slow file never holds the models. A request that
gets neither turn within ``busy_after_s`` is a 503, never a wait without end. Health and the
description of the space answer without either.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alice import console
from alice.api import Reads, Space, Unread
from alice.artifacts.indexes import Index, split_pin
from alice.errors import AliceError
from alice.report import previews
from alice.search import query as q
from alice.serve.spec import ServeSpec

#: previews kept in memory (PNG/WAV bytes), most recently used first out last
PREVIEW_CACHE = 4096


class HTTPProblem(AliceError):
    """A refused request with its HTTP status (404 not found, 409 not served, 413 too large, 415 unsupported file,
    503 busy)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Served:
    """The loaded space and its indexes; ``refused`` names the index files found that cannot be served, and why."""

    space: Space
    spec: ServeSpec
    indexes: dict[str, Index]
    refused: dict[str, str]
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _decoding: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _items: dict[str, Any] = field(default_factory=dict, repr=False)  # index name -> its data set's inputs, or None
    _kinds: dict[str, str | None] = field(default_factory=dict, repr=False)  # index name -> how its items are shown
    _previews: OrderedDict = field(default_factory=OrderedDict, repr=False)

    @classmethod
    def load(cls, path: str | Path, spec: ServeSpec | None = None) -> Served:
        """Load the space, build every backbone (text ones run once), and hold every index in memory."""
        spec = spec or ServeSpec()
        space = Space.load(path, spec.device)
        for name in space.modalities:
            backbone = space.backbone(name)
            if backbone.reads_text:
                space.encode(name, ["warm up"])  # loads the weights now, not on the first request
        indexes: dict[str, Index] = {}
        refused: dict[str, str] = {}
        folder = sorted((space.path / "indexes").glob("*.safetensors"))
        for file, explicit in [(f, False) for f in folder] + [(Path(f), True) for f in spec.indexes]:
            name = file.name.removesuffix(".safetensors")
            try:
                if explicit:  # FILE@sha256:HEX: pinned to its sha256
                    name = split_pin(file)[0].name.removesuffix(".safetensors")
                if name in indexes or name in refused:
                    raise AliceError(f"two index files are named {name!r}; rename one")
                indexes[name] = q.open_index(space, file).load()
            except AliceError as exc:
                if explicit:
                    raise
                refused[name] = str(exc)
                console.warn(f"index {name!r} is not served: {exc}")
        served = cls(space, spec, indexes, refused)
        for name in indexes:
            served.preview_kind(name)  # each index's data set, for previews, made now
        return served

    @contextmanager
    def work(self) -> Iterator[None]:
        """One request's encoding and search at a time; a 503 after ``busy_after_s`` without a turn."""
        with self._turn(self._lock, "the models"):
            yield

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """One upload (or item preview) decoded at a time, outside the models' lock; a 503 after ``busy_after_s``."""
        with self._turn(self._decoding, "decoding"):
            yield

    @contextmanager
    def _turn(self, lock: threading.Lock, what: str) -> Iterator[None]:
        if not lock.acquire(timeout=self.spec.busy_after_s):
            raise HTTPProblem(
                503, f"the server is busy: no turn at {what} within {self.spec.busy_after_s:g} s; try again shortly"
            )
        try:
            yield
        finally:
            lock.release()

    # ------------------------------------------------------------------ lookups that answer a request or refuse it

    def index(self, name: str | None, modality: str | None = None) -> Index:
        """An index by name; none named: the first of another modality than the query's, else the first."""
        if name is None:
            others = [n for n, i in self.indexes.items() if i.modality != modality]
            if not (others or self.indexes):
                raise HTTPProblem(404, "this server has no index; build one with `alice index build`")
            name = (others or list(self.indexes))[0]
        if name in self.refused:
            raise HTTPProblem(409, f"index {name!r} is not served: {self.refused[name]}")
        if name not in self.indexes:
            raise HTTPProblem(404, f"unknown index {name!r} (served: {', '.join(self.indexes) or 'none'})")
        return self.indexes[name]

    def modality(self, name: str) -> str:
        if name not in self.space.adapters:
            raise HTTPProblem(
                400, f"unknown modality {name!r}: this space has {', '.join(self.space.modalities) or 'none'}"
            )
        return name

    def reads(self) -> dict[str, Reads]:
        """What each modality's backbone reads, as the backbone instance declares it (:meth:`Space.reads`)."""
        return {name: self.space.reads(name) for name in self.space.modalities}

    def text_modality(self, source: str | None) -> str:
        """The modality that reads a text query: the named one if its backbone reads text, else the one that does.

        A text is only ever text here: it never names a file on the server's disk.
        """
        if source is not None:
            self.modality(source)
        try:
            return self.space.reader(None, source)
        except Unread as exc:
            raise HTTPProblem(400, f"{exc}; send a file to /api/search/file or /api/classify/file") from None

    def file_modality(self, filename: str, source: str | None) -> str:
        """The modality that reads an uploaded file: the named one, else the one whose backbone reads its ending."""
        if source is not None:
            self.modality(source)
        suffix = Path(filename or "").suffix.lower()
        if not suffix:
            raise HTTPProblem(415, f"the uploaded file {filename!r} has no ending (.png, .wav, ...) saying what it is")
        try:
            return self.space.reader(suffix, source)
        except Unread as exc:
            raise HTTPProblem(415, str(exc)) from None

    # ------------------------------------------------------------------ previews

    def _inputs(self, name: str) -> Any:
        """The raw inputs of an index's items, from the data set and split it was built from (None: not available)."""
        if name not in self._items:
            index = self.indexes[name]
            self._items[name] = None
            source = index.meta.get("dataset") or {}
            try:
                from alice.data.loading import make_dataset
                from alice.data.recipes import DataSpec

                inputs = (
                    make_dataset(DataSpec(source["name"], dict(source.get("options") or {})))
                    .split(str(index.meta.get("split")))
                    .inputs
                )
                if len(inputs) == index.count:
                    self._items[name] = inputs
            except Exception as exc:  # previews are a nicety: a data set that cannot be read leaves them out
                console.info(f"index {name!r}: no previews ({type(exc).__name__}: {exc})")
        return self._items[name]

    def _shown(self, name: str, row: int) -> Any:
        """How one item of an index looks (:data:`alice.plugin.Preview`): its text, or its backbone's preview of its
        file or of its input in the data set."""
        index = self.indexes[name]
        if index.texts is not None:
            return index.texts[row]
        if index.files is not None:
            return self.space.preview(index.modality, index.files[row])
        inputs = self._inputs(name)
        if inputs is None:
            raise HTTPProblem(404, f"index {name!r} has no previews (its data set is not available here)")
        return self.space.preview(index.modality, inputs[row])

    def preview_kind(self, name: str) -> str | None:
        """How an index's items are shown (``image``, ``sound``, ``text``), or None without previews."""
        if name not in self._kinds:
            index = self.indexes[name]
            self._kinds[name] = None
            if index.texts is not None:
                self._kinds[name] = "text"
            elif index.count:
                try:
                    self._kinds[name] = previews.kind(self._shown(name, 0))
                except HTTPProblem:  # its data set is not available here (said when it was read)
                    pass
                except (AliceError, OSError, ValueError) as exc:  # a nicety: a missing file leaves previews out
                    console.info(f"index {name!r}: no previews ({exc})")
        return self._kinds[name]

    def preview(self, name: str, row: int) -> tuple[bytes, str]:
        """``(bytes, media type)`` of one item's preview: a PNG, a WAV, or UTF-8 text."""
        index = self.index(name)
        if not 0 <= row < index.count:
            raise HTTPProblem(404, f"index {name!r} has rows 0 to {index.count - 1}, not {row}")
        if self.preview_kind(name) is None:
            raise HTTPProblem(404, f"index {name!r} has no previews (its items are not available here)")
        key = (name, row)
        if key in self._previews:
            self._previews.move_to_end(key)
            return self._previews[key]
        try:
            shown = self._shown(name, row)
        except (AliceError, OSError, ValueError) as exc:  # a file moved or changed since the index was built
            raise HTTPProblem(404, f"item {row} of index {name!r} cannot be shown: {exc}") from None
        kind = previews.kind(shown)
        if kind == "image":
            out = (previews.thumbnail_png(shown), "image/png")
        elif kind == "sound":
            out = (previews.sound_wav(*shown), "audio/wav")
        else:
            out = (str(shown).encode("utf-8"), "text/plain; charset=utf-8")
        self._previews[key] = out
        if len(self._previews) > PREVIEW_CACHE:
            self._previews.popitem(last=False)
        return out
