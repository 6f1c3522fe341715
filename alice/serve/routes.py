"""The JSON API: requests and answers as pydantic models (FastAPI publishes them as ``/openapi.json``).

Every refusal is a 4xx (a 503 when the server is busy) whose body is ``{"error": "one line"}``; the
server goes on serving. Each route declares every status it answers (:func:`refusals`); what
depends on the space served (which adapters read text or files, the index names, ``k``'s
bounds, the labels a replacement names) is added to the schema by :mod:`alice.serve.contract`.

A text query is text: it is encoded by an adapter whose backbone reads text, and never opened as
a path. Files arrive only as uploads, decoded (within the server's ``--max-pixels`` and
``--max-seconds``) before the request takes its turn at the models.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Optional

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from alice.errors import AliceError
from alice.plugin.limits import TooLarge
from alice.search import query as q
from alice.serve.state import HTTPProblem, Served

router = APIRouter(prefix="/api")

#: longest text query accepted, in characters
MAX_TEXT = 2_000
#: a text holds at least one character that is not white space (as Python's str.isspace says: the text
#: backbones refuse a blank text); written with \uXXXX escapes, which JSON Schema and Python read alike
NOT_BLANK = "[^" + "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace()) + "]"


# --------------------------------------------------------------------------- refusals


class Problem(BaseModel):
    """Every refusal's body."""

    error: str = Field(description="One line: what is wrong, and what to do.")


#: why each status is answered
WHY = {
    400: "a query this space cannot answer: an unknown adapter (from) or one that does not read this kind of query, "
    "an unknown label, a malformed replacement",
    401: "no token, or not this server's (send Authorization: Bearer <token>)",
    404: "an unknown index or row, or an item whose preview is not available",
    409: "an index found beside the space but not served (built against another reference or adapter)",
    413: "the request is larger than --max-upload-mb, or the image or sound it holds is larger than --max-pixels or "
    "--max-seconds (read from the file's header, before decoding)",
    415: "a file no adapter of this space reads (by its ending), or one the named adapter does not read",
    422: "a request the schema refuses (see the message), or a file that cannot be read as what its ending says",
    503: "the server is busy: the request got no turn within its bound; try again shortly",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that may answer these refusals."""
    return {status: {"model": Problem, "description": WHY[status]} for status in statuses}


# --------------------------------------------------------------------------- requests


def _whole(value: Any) -> Any:
    """A JSON number without a fraction (3.0) is an integer, as JSON Schema counts it; a bool or a string is not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: an integer as JSON Schema has it: 3 or 3.0, never true or "3"
Whole = Annotated[int, BeforeValidator(_whole)]


class ItemRef(BaseModel):
    """An item already in an index: its latent is the query."""

    model_config = ConfigDict(extra="forbid", strict=True)
    index: str = Field(description="An index's name (its file name without .safetensors).")
    row: Whole = Field(ge=0, description="The item's row in that index.")


def _exactly_one(schema: dict[str, Any]) -> None:
    """The schema says what the validator checks: exactly one of text and item, and from only with a text."""
    for key in ("text", "item"):
        schema["properties"][key].pop("default", None)
    schema["oneOf"] = [
        {"required": ["text"], "not": {"required": ["item"]}},
        {"required": ["item"], "not": {"anyOf": [{"required": ["text"]}, {"required": ["from"]}]}},
    ]


class QueryRequest(BaseModel):
    """One query: a text, or an item of an index; optionally edited by M_ref."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True, json_schema_extra=_exactly_one)
    text: str = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT,
        json_schema_extra={"pattern": NOT_BLANK},
        description="A text query: always read as text, never as a path (files go to the /file routes).",
    )
    item: ItemRef = Field(None, description="Or an item already in an index, read by that index's adapter.")
    source: Optional[str] = Field(
        None,
        alias="from",
        description="With a text: the adapter that reads it (default: the one whose backbone reads text).",
    )
    replace: Optional[str] = Field(
        None, description="A counterfactual edit, OLD=NEW (e.g. three=seven): M_ref replaces OLD with NEW first."
    )

    @field_validator("text")
    @classmethod
    def _readable(cls, text: str) -> str:
        if not re.search(NOT_BLANK, text):
            raise ValueError("the text holds no character but white space")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("the text is not valid Unicode (a lone surrogate)") from None
        return text

    @model_validator(mode="after")
    def _one_query(self) -> QueryRequest:
        if (self.text is None) == (self.item is None):
            raise ValueError("give exactly one of text or item (files go to the /file routes)")
        if self.item is not None and "source" in self.model_fields_set:
            raise ValueError("from goes with a text: an item is read by its own index's adapter")
        return self


class SearchRequest(QueryRequest):
    index: Optional[str] = Field(
        None, description="Where to search (default: the first index of another modality than the query's)."
    )
    k: Whole = Field(10, description="How many results (1 to the server's max_k).")
    exact: bool = Field(False, description="Scan every item even when the index is approximate.")


# --------------------------------------------------------------------------- answers


class Reading(BaseModel):
    """C_ref's reading of the query (and of the edited query)."""

    model_config = ConfigDict(populate_by_name=True)
    kind: Literal["text", "file", "item"]
    shown: str = Field(description="The text, the file's name, or index:row.")
    source: str = Field(alias="from", description="The adapter that read the query.")
    labels: list[str]
    probabilities: dict[str, float]
    replace: Optional[list[str]] = None
    edited_labels: Optional[list[str]] = None
    edited_probabilities: Optional[dict[str, float]] = None
    warnings: list[str] = Field(
        [], description="One line each: a reading that rests on classes the adapter does not annotate, an odd edit."
    )


class Hit(BaseModel):
    rank: int
    row: int
    score: float = Field(description="Cosine similarity to the (edited) query.")
    labels: list[str]
    text: Optional[str] = Field(None, description="The item's text, for an item that is a text.")
    file: Optional[str] = Field(
        None, description="The name of the file the item was read from (an image, a sound; its folder is not shown)."
    )
    pair_id: Optional[str] = None
    preview: Optional[str] = Field(None, description="URL of the item's picture, sound or text.")


class IndexFacts(BaseModel):
    name: str
    modality: str
    split: Optional[str] = None
    items: int
    kind: str = Field(description="exact, ivf or hnsw")
    recall_at_10: Optional[float] = Field(None, description="Measured against exact search when it was built.")
    preview: Optional[str] = Field(None, description="image, sound or text: how its items are shown.")


class SearchAnswer(BaseModel):
    query: Reading
    index: IndexFacts
    exact: bool
    results: list[Hit]
    took_ms: float


class ClassifyAnswer(BaseModel):
    query: Reading
    took_ms: float


class ModalityFacts(BaseModel):
    name: str
    backbone: str
    file_suffixes: list[str]
    reads_text: bool


class SpaceFacts(BaseModel):
    name: str
    sha256: str = Field(description="sha256 of reference.safetensors (C_ref and M_ref).")
    vocabulary: list[str]
    latent_dim: int
    reference_modality: str
    modalities: list[ModalityFacts]
    indexes: list[IndexFacts]
    refused_indexes: dict[str, str] = Field(description="Index files found but not served, and why.")
    max_k: int
    max_upload_bytes: int
    max_pixels: int = Field(description="The most pixels an uploaded image may have.")
    max_seconds: float = Field(description="The longest an uploaded sound may last.")


class Health(BaseModel):
    status: Literal["ok"]
    reference_sha256: str
    indexes: int
    uptime_s: float


# --------------------------------------------------------------------------- the work


class Upload(NamedTuple):
    """An uploaded file as the modality that reads it decoded it, and where it lies while the request lasts."""

    modality: str
    item: Any
    filename: str
    path: str


def _served(request: Request) -> Served:
    return request.app.state.served


def _facts(served: Served, name: str) -> IndexFacts:
    index = served.indexes[name]
    return IndexFacts(
        name=name,
        modality=index.modality,
        split=index.meta.get("split"),
        items=index.count,
        kind=index.kind,
        recall_at_10=index.meta.get("ann", {}).get("recall_at_10"),
        preview=served.preview_kind(name),
    )


def _latent(served: Served, body: QueryRequest) -> tuple[str, Any, str, str]:
    """``(modality, latent, kind, shown)`` of a text or item query."""
    if body.item is not None:
        index = served.index(body.item.index)
        if body.item.row >= index.count:
            raise HTTPProblem(404, f"index {index.name!r} has rows 0 to {index.count - 1}, not {body.item.row}")
        return index.modality, q.item_latent(index, body.item.row), "item", f"{index.name}:{body.item.row}"
    name = served.text_modality(body.source)
    return name, served.space.encode(name, [body.text]), "text", body.text


@contextmanager
def _upload(served: Served, upload: UploadFile, source: str | None) -> Iterator[Upload]:
    """An uploaded file, decoded by the modality that reads it: refused by its ending (415), by its header
    (413: more pixels or seconds than this server accepts) or when it cannot be read (422), before any model runs.
    The file lasts until the block ends: a backbone that decodes nothing in ``read_file`` reads it when it encodes."""
    filename = Path(upload.filename or "upload").name
    name = served.file_modality(filename, source)
    with tempfile.TemporaryDirectory(prefix="alice-upload-") as tmp:
        path = Path(tmp) / f"upload{Path(filename).suffix.lower()}"
        with served.decoding():
            data = upload.file.read()
            if not data:
                raise HTTPProblem(422, f"the uploaded file {filename!r} is empty")
            path.write_bytes(data)
            del data
            try:
                item = served.space.read_file(name, path, served.spec.limits)
            except TooLarge as exc:
                raise HTTPProblem(413, str(exc).replace(str(path), filename)) from None
            except AliceError as exc:
                message = str(exc).replace(str(path), filename)
                raise HTTPProblem(422, f"cannot read the uploaded file {filename!r} as {name}: {message}") from None
        yield Upload(name, item, filename, str(path))


def _encode_upload(served: Served, upload: Upload) -> Any:
    """The latent of a decoded upload (under the models' lock)."""
    try:
        return served.space.encode(upload.modality, [upload.item])
    except AliceError as exc:
        message = str(exc).replace(upload.path, upload.filename)
        raise HTTPProblem(
            422, f"cannot read the uploaded file {upload.filename!r} as {upload.modality}: {message}"
        ) from None


def _check(served: Served, replace: str | None, k: int = 1) -> None:
    """Refuse a malformed edit or k before any work: labels as the vocabulary spells them, two different ones."""
    if not 1 <= k <= served.spec.max_k:
        raise HTTPProblem(422, f"k must be from 1 to {served.spec.max_k}, got {k}")
    if replace is not None:
        vocabulary, pair = served.space.vocabulary, q.parse_replacement(replace, "replace")
        old, new = (vocabulary[served.space.label_index(x)] for x in pair)
        if old == new:
            raise HTTPProblem(400, f"replace {replace!r} names the same class twice")
        if replace != f"{old}={new}":
            raise HTTPProblem(400, f"replace takes labels as the vocabulary spells them: {old}={new}, not {replace!r}")


def _reading(served: Served, name: str, z: Any, kind: str, shown: str, replace: str | None) -> tuple[Reading, Any]:
    """The query's labels, and with ``replace`` the edited latent and its labels."""
    seen = q.classification(served.space, z, name)
    reading = Reading(kind=kind, shown=shown, source=name, **seen)  # with the reading's warnings
    if replace:
        z, reading.replace, warning = q.edit(served.space, z, name, q.parse_replacement(replace, "replace"))
        edited = q.classification(served.space, z, name, edited=True)
        reading.edited_labels, reading.edited_probabilities = edited["labels"], edited["probabilities"]
        reading.warnings += ([warning] if warning else []) + edited["warnings"]
    return reading, z


def _search(served: Served, reading: Reading, z: Any, index_name: str | None, k: int, exact: bool, t0: float):
    index = served.index(index_name, reading.source)
    # an index item is a search latent already, unless M_ref edited it: an edit gives a latent as encoded
    searched_as = None if reading.kind == "item" and not reading.replace else reading.source
    hits = q.ranked(served.space, index, z, k, exact, searched_as)
    has_preview = served.preview_kind(index.name) is not None
    for hit in hits:
        hit["preview"] = f"/api/indexes/{index.name}/items/{hit['row']}/preview" if has_preview else None
        if "file" in hit:  # the file's name: where the server keeps its data is not the client's business
            hit["file"] = Path(hit["file"]).name
    return SearchAnswer(
        query=reading,
        index=_facts(served, index.name),
        exact=exact or index.kind == "exact",
        results=[Hit(**h) for h in hits],
        took_ms=round(1000 * (time.perf_counter() - t0), 2),
    )


# --------------------------------------------------------------------------- routes


@router.get("/health", response_model=Health, summary="The server is up; which reference it serves")
def health(request: Request) -> Health:
    served = _served(request)
    return Health(
        status="ok",
        reference_sha256=served.space.reference.sha256,
        indexes=len(served.indexes),
        uptime_s=round(time.time() - served.started, 1),
    )


@router.get("/space", response_model=SpaceFacts, summary="The space: vocabulary, modalities, indexes, hashes")
def space(request: Request) -> SpaceFacts:
    served = _served(request)
    s = served.space
    return SpaceFacts(
        name=s.reference.manifest.name,
        sha256=s.reference.sha256,
        vocabulary=s.vocabulary,
        latent_dim=s.latent_dim,
        reference_modality=s.reference_modality,
        modalities=[
            ModalityFacts(name=n, backbone=r.backbone, file_suffixes=list(r.file_suffixes), reads_text=r.reads_text)
            for n, r in served.reads().items()
        ],
        indexes=[_facts(served, n) for n in served.indexes],
        refused_indexes=served.refused,
        max_k=served.spec.max_k,
        max_upload_bytes=served.spec.max_upload_bytes,
        max_pixels=served.spec.limits.max_pixels,
        max_seconds=served.spec.limits.max_seconds,
    )


@router.post(
    "/search",
    response_model=SearchAnswer,
    response_model_by_alias=True,
    summary="Search with a text or an item",
    responses=refusals(400, 404, 409, 413, 422, 503),
)
def search(body: SearchRequest, request: Request) -> SearchAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, body.replace, body.k)
    with served.work():
        name, z, kind, shown = _latent(served, body)
        reading, z = _reading(served, name, z, kind, shown, body.replace)
        return _search(served, reading, z, body.index, body.k, body.exact, t0)


@router.post(
    "/search/file",
    response_model=SearchAnswer,
    response_model_by_alias=True,
    summary="Search with an uploaded file",
    responses=refusals(400, 404, 409, 413, 415, 422, 503),
)
def search_file(
    request: Request,
    file: UploadFile = File(..., description="An image, a sound, ...: a file one of the backbones reads."),
    source: Optional[str] = Form(None, alias="from", description="The adapter that reads it (default: by its ending)."),
    replace: Optional[str] = Form(None, description="A counterfactual edit, OLD=NEW."),
    index: Optional[str] = Form(None, description="Where to search."),
    k: int = Form(10, description="How many results."),
    exact: bool = Form(False, description="Scan every item even when the index is approximate."),
) -> SearchAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, replace, k)
    with _upload(served, file, source) as upload, served.work():
        z = _encode_upload(served, upload)
        reading, z = _reading(served, upload.modality, z, "file", upload.filename, replace)
        return _search(served, reading, z, index, k, exact, t0)


@router.post(
    "/classify",
    response_model=ClassifyAnswer,
    response_model_by_alias=True,
    summary="Labels of a text or an item",
    responses=refusals(400, 404, 409, 413, 422, 503),
)
def classify(body: QueryRequest, request: Request) -> ClassifyAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, body.replace)
    with served.work():
        name, z, kind, shown = _latent(served, body)
        reading, _ = _reading(served, name, z, kind, shown, body.replace)
    return ClassifyAnswer(query=reading, took_ms=round(1000 * (time.perf_counter() - t0), 2))


@router.post(
    "/classify/file",
    response_model=ClassifyAnswer,
    response_model_by_alias=True,
    summary="Labels of an uploaded file",
    responses=refusals(400, 413, 415, 422, 503),
)
def classify_file(
    request: Request,
    file: UploadFile = File(..., description="An image, a sound, ...: a file one of the backbones reads."),
    source: Optional[str] = Form(None, alias="from", description="The adapter that reads it (default: by its ending)."),
    replace: Optional[str] = Form(None, description="A counterfactual edit, OLD=NEW."),
) -> ClassifyAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, replace)
    with _upload(served, file, source) as upload, served.work():
        z = _encode_upload(served, upload)
        reading, _ = _reading(served, upload.modality, z, "file", upload.filename, replace)
    return ClassifyAnswer(query=reading, took_ms=round(1000 * (time.perf_counter() - t0), 2))


@router.get(
    "/indexes/{name}/items/{row}",
    response_model=Hit,
    summary="One item of an index",
    responses=refusals(404, 409, 422),
)
def item(name: str, row: int, request: Request) -> Hit:
    served = _served(request)
    index = served.index(name)
    if not 0 <= row < index.count:
        raise HTTPProblem(404, f"index {name!r} has rows 0 to {index.count - 1}, not {row}")
    return Hit(
        rank=0,
        row=row,
        score=1.0,
        labels=index.label_names(row, served.space.vocabulary),
        text=index.texts[row] if index.texts else None,
        file=Path(index.files[row]).name if index.files else None,
        pair_id=index.pair_ids[row] if index.pair_ids else None,
        preview=f"/api/indexes/{name}/items/{row}/preview" if served.preview_kind(name) else None,
    )


@router.get(
    "/indexes/{name}/items/{row}/preview",
    response_class=Response,
    responses={
        200: {
            "description": "The item as a PNG, a WAV or its text",
            "content": {"image/png": {}, "audio/wav": {}, "text/plain": {}},
        },
        **refusals(404, 409, 422, 503),
    },
    summary="How one item looks or sounds: a PNG, a WAV or its text",
)
def preview(name: str, row: int, request: Request) -> Response:
    served = _served(request)
    with served.decoding():
        data, media = served.preview(name, row)
    return Response(content=data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
