"""What the JSON API takes and gives: requests and answers as pydantic models (FastAPI publishes them as
``/openapi.json``), and the refusals each route may answer (:func:`refusals`, one line in ``{"error": ...}``).

The routes that use them are :mod:`alice.serve.routes`; what depends on the space served is added to the
schema by :mod:`alice.serve.contract`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

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
