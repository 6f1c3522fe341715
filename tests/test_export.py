"""An index exported to LanceDB and searched through it: the same answers as ALICE's own exact search."""

from __future__ import annotations

import json

import pytest
from cli_helpers import ok, refused

pytest.importorskip("lancedb")


def test_export_to_lancedb_and_search_through_it(reference_copy, tmp_path):
    ref = reference_copy
    ok("index", "build", ref, "--modality", "image")
    index = ref / "indexes" / "image-test.safetensors"
    db = tmp_path / "db"
    r = ok("index", "export", index, "--to", "lancedb", db)
    assert "search it with" in r.err and (db / "alice.json").is_file()
    for query in ("one digit: five", "one digit: two"):
        own = json.loads(ok("search", ref, query, "--in", "image", "-k", "5", "--exact", "--json").out)
        via = json.loads(ok("search", ref, query, "--in", db, "-k", "5", "--json").out)
        assert [x["row"] for x in via["results"]] == [x["row"] for x in own["results"]]
        assert [x["labels"] for x in via["results"]] == [x["labels"] for x in own["results"]]
        assert all(abs(a["score"] - b["score"]) < 1e-3 for a, b in zip(via["results"], own["results"]))
    refused("already exists; pass --overwrite", "index", "export", index, "--to", "lancedb", db)
    ok("index", "export", index, "--to", "lancedb", db, "--overwrite")
    refused("unknown vector database 'milvus'", "index", "export", index, "--to", "milvus", tmp_path / "m")
    (tmp_path / "other").mkdir()
    refused(
        "is not a database written by alice index export",
        "index",
        "export",
        index,
        "--to",
        "lancedb",
        tmp_path / "other",
    )
