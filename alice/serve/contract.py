"""The OpenAPI schema of one server: what FastAPI writes from the models, plus what depends on the space served.

A request the schema allows is answered (a 2xx, or a 404 for a row past an index's end); one it
refuses is a 4xx. So the schema names, for this space: the adapters a text may be read by (those
whose backbone reads text) and a file by (those that read files), the indexes served, ``k``'s
bounds, a replacement as two different labels of the vocabulary spelt as it spells them, and,
when the server has a token, the bearer scheme and the 401 every route but ``/api/health``
answers without it. A file's content cannot be described by a schema: an upload the schema
allows may still be refused, by its ending (415), by the size its header gives (413) or when it
cannot be decoded (422), as each ``/file`` route declares.
"""

from __future__ import annotations

from typing import Any

from alice.serve.routes import WHY
from alice.serve.state import Served

#: where the token is never asked for (the page asks for the token itself; a health check needs none)
OPEN_PATHS = ("/", "/api/health")
#: characters a regular expression reads as syntax, escaped alike in JSON Schema's and Python's dialects
SYNTAX = set("\\^$.|?*+()[]{}/")


def literal(text: str) -> str:
    """``text`` as a regular expression that matches it alone (a backslash before each character of syntax only:
    JSON Schema's regular expressions refuse escapes of plain characters)."""
    return "".join(f"\\{c}" if c in SYNTAX else c for c in text)


def replacement_pattern(vocabulary: list[str]) -> str:
    """``OLD=NEW``: two different labels of the vocabulary as it spells them (labels holding ``=`` cannot be named)."""
    labels = [literal(label) for label in vocabulary if "=" not in label]
    either = "(?:" + "|".join(labels) + ")"
    same = "(?:" + "|".join(f"{label}={label}" for label in labels) + ")"
    return f"^(?!{same}$){either}={either}$"


def _one_of(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": values} if values else {"not": {}}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def constrain(schema: dict[str, Any], served: Served) -> dict[str, Any]:
    """Add this space's constraints (and its token's scheme) to the schema FastAPI generated; returns it."""
    components = schema["components"]["schemas"]
    reads = served.reads()
    text_readers = [n for n, r in reads.items() if r.reads_text]
    file_readers = [n for n, r in reads.items() if r.file_suffixes]
    names = list(served.indexes)
    replace = {"type": "string", "pattern": replacement_pattern(served.space.vocabulary)}
    k = {"type": "integer", "minimum": 1, "maximum": served.spec.max_k, "default": 10}

    def body(path: str) -> dict[str, Any]:
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        ref = next(iter(content.values()))["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[1]]["properties"]

    for path, readers in (("/api/search", text_readers), ("/api/classify", text_readers)):
        fields = body(path)
        fields["from"] = {**_nullable(_one_of(readers)), "description": fields["from"].get("description", "")}
        fields["replace"] = {**_nullable(replace), "description": fields["replace"].get("description", "")}
        if "index" in fields:
            fields["index"] = {**_nullable(_one_of(names)), "description": fields["index"].get("description", "")}
            fields["k"] = {**k, "description": fields["k"].get("description", "")}
    for path in ("/api/search/file", "/api/classify/file"):
        fields = body(path)  # a form has no null: a field left out takes its default
        fields["from"] = {**_one_of(file_readers), "description": fields["from"].get("description", "")}
        fields["replace"] = {**replace, "description": fields["replace"].get("description", "")}
        if "index" in fields:
            fields["index"] = {**_one_of(names), "description": fields["index"].get("description", "")}
            fields["k"] = {**k, "description": fields["k"].get("description", "")}
    components["ItemRef"]["properties"]["index"] = {
        **_one_of(names),
        "description": components["ItemRef"]["properties"]["index"].get("description", ""),
    }
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "name":
                    parameter["schema"] = {**_one_of(names), "title": "Name"}
                if parameter["in"] == "path" and parameter["name"] == "row":
                    parameter["schema"] = {"type": "integer", "minimum": 0, "title": "Row"}
            if served.spec.token is not None and path not in OPEN_PATHS:
                operation["security"] = [{"bearer": []}]
                operation["responses"]["401"] = {
                    "description": WHY[401],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
    if served.spec.token is not None:
        schema["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "the server's token (--token-file)"}
        }
    return schema
