"""The JSON API: requests and answers as pydantic models (FastAPI publishes them as ``/openapi.json``).

Every refusal is a 4xx whose body is ``{"error": "one line"}``; the server goes on serving.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Literal, Optional

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from alice.errors import AliceError
from alice.search import query as q
from alice.serve.state import HTTPProblem, Served

router = APIRouter(prefix="/api")

#: longest text query accepted, in characters
MAX_TEXT = 2_000


# --------------------------------------------------------------------------- requests


class ItemRef(BaseModel):
    """An item already in an index: its latent is the query."""

    model_config = ConfigDict(extra="forbid")
    index: str = Field(description="An index's name (its file name without .safetensors).")
    row: int = Field(ge=0, description="The item's row in that index.")


class QueryRequest(BaseModel):
    """One query: a text or an item of an index, read by an adapter, optionally edited."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    text: Optional[str] = Field(None, min_length=1, max_length=MAX_TEXT, description="A text query.")
    item: Optional[ItemRef] = Field(None, description="Or an item already in an index.")
    source: Optional[str] = Field(
        None, alias="from", description="The adapter that reads the query (default: the one whose backbone reads text)."
    )
    replace: Optional[str] = Field(
        None, description="A counterfactual edit, OLD=NEW (e.g. three=seven): M_ref replaces OLD with NEW first."
    )


class SearchRequest(QueryRequest):
    index: Optional[str] = Field(
        None, description="Where to search (default: the first index of another modality than the query's)."
    )
    k: int = Field(10, description="How many results (1 to the server's max_k).")
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
    text: Optional[str] = None
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


class Health(BaseModel):
    status: Literal["ok"]
    reference_sha256: str
    indexes: int
    uptime_s: float


# --------------------------------------------------------------------------- the work


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
    if (body.text is None) == (body.item is None):
        raise HTTPProblem(422, "give exactly one of text or item (files go to the /file endpoints)")
    if body.item is not None:
        index = served.index(body.item.index)
        if body.source is not None and served.modality(body.source) != index.modality:
            raise HTTPProblem(400, f"index {index.name!r} holds {index.modality!r} items, not {body.source!r}")
        return index.modality, q.item_latent(index, body.item.row), "item", f"{index.name}:{body.item.row}"
    if body.source is not None:
        name = served.modality(body.source)
    else:
        texts = [n for n, r in served.reads().items() if r["reads_text"]]
        if len(texts) != 1:
            raise HTTPProblem(
                400, f"{'no' if not texts else 'several'} modalities of this space read text; choose one with from"
            )
        name = texts[0]
    return name, served.space.encode(name, [body.text]), "text", body.text


def _file_reading(served: Served, upload: UploadFile, source: str | None, replace: str | None) -> tuple[Reading, Any]:
    """Encode an uploaded file as the backbone that reads its ending reads a file of that name; its reading."""
    filename = Path(upload.filename or "upload").name
    name = served.file_modality(filename, source)
    data = upload.file.read()
    if not data:
        raise HTTPProblem(422, f"the uploaded file {filename!r} is empty")
    with tempfile.TemporaryDirectory(prefix="alice-upload-") as tmp:
        path = Path(tmp) / f"upload{Path(filename).suffix.lower()}"
        path.write_bytes(data)
        try:
            z = served.space.encode(name, [path])
        except AliceError as exc:
            message = str(exc).replace(str(path), filename)
            raise HTTPProblem(422, f"cannot read the uploaded file {filename!r} as {name}: {message}") from None
    return _reading(served, name, z, "file", filename, replace)


def _check(served: Served, replace: str | None, k: int = 1) -> None:
    """Refuse a malformed edit or k before any work."""
    if not 1 <= k <= served.spec.max_k:
        raise HTTPProblem(422, f"k must be from 1 to {served.spec.max_k}, got {k}")
    if replace:
        q.parse_replacement(replace, "replace")


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
        modalities=[ModalityFacts(name=n, **r) for n, r in served.reads().items()],
        indexes=[_facts(served, n) for n in served.indexes],
        refused_indexes=served.refused,
        max_k=served.spec.max_k,
        max_upload_bytes=served.spec.max_upload_bytes,
    )


@router.post(
    "/search", response_model=SearchAnswer, response_model_by_alias=True, summary="Search with text or an item"
)
def search(body: SearchRequest, request: Request) -> SearchAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, body.replace, body.k)
    with served.work():
        name, z, kind, shown = _latent(served, body)
        reading, z = _reading(served, name, z, kind, shown, body.replace)
        return _search(served, reading, z, body.index, body.k, body.exact, t0)


@router.post(
    "/search/file", response_model=SearchAnswer, response_model_by_alias=True, summary="Search with an uploaded file"
)
def search_file(
    request: Request,
    file: UploadFile = File(..., description="An image, a sound, ...: a file one of the backbones reads."),
    source: Optional[str] = Form(None, alias="from"),
    replace: Optional[str] = Form(None),
    index: Optional[str] = Form(None),
    k: int = Form(10),
    exact: bool = Form(False),
) -> SearchAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, replace, k)
    with served.work():
        reading, z = _file_reading(served, file, source, replace)
        return _search(served, reading, z, index, k, exact, t0)


@router.post(
    "/classify", response_model=ClassifyAnswer, response_model_by_alias=True, summary="Labels of a text or an item"
)
def classify(body: QueryRequest, request: Request) -> ClassifyAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, body.replace)
    with served.work():
        name, z, kind, shown = _latent(served, body)
        reading, _ = _reading(served, name, z, kind, shown, body.replace)
    return ClassifyAnswer(query=reading, took_ms=round(1000 * (time.perf_counter() - t0), 2))


@router.post(
    "/classify/file", response_model=ClassifyAnswer, response_model_by_alias=True, summary="Labels of an uploaded file"
)
def classify_file(
    request: Request,
    file: UploadFile = File(...),
    source: Optional[str] = Form(None, alias="from"),
    replace: Optional[str] = Form(None),
) -> ClassifyAnswer:
    served, t0 = _served(request), time.perf_counter()
    _check(served, replace)
    with served.work():
        reading, _ = _file_reading(served, file, source, replace)
    return ClassifyAnswer(query=reading, took_ms=round(1000 * (time.perf_counter() - t0), 2))


@router.get("/indexes/{name}/items/{row}", response_model=Hit, summary="One item of an index")
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
        pair_id=index.pair_ids[row] if index.pair_ids else None,
        preview=f"/api/indexes/{name}/items/{row}/preview" if served.preview_kind(name) else None,
    )


@router.get(
    "/indexes/{name}/items/{row}/preview",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "audio/wav": {}, "text/plain": {}}}},
    summary="How one item looks or sounds: a PNG, a WAV or its text",
)
def preview(name: str, row: int, request: Request) -> Response:
    served = _served(request)
    with served.work():
        data, media = served.preview(name, row)
    return Response(content=data, media_type=media, headers={"Cache-Control": "max-age=3600"})
