"""An index exported to LanceDB and searched through it: the same answers as ALICE's own exact search."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
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
    # several queries at once go to LanceDB as one batch: each answered as when asked alone
    from alice.search.export import LanceIndex
    from alice.search.indexes import Index

    own_index, lance = Index.open(index).load(), LanceIndex.open_export(db)
    queries = torch.from_numpy(own_index.rows(np.array([3, 40, 7, 3])))
    scores, rows = lance.search(queries, 6)
    want_scores, want_rows = own_index.search(queries, 6, exact=True)
    assert rows.shape == (4, 6) and torch.equal(rows, want_rows) and torch.allclose(scores, want_scores, atol=1e-3)
    assert torch.equal(lance.search(queries[1:2], 6)[1], want_rows[1:2]) and rows[:, 0].tolist() == [3, 40, 7, 3]
    assert lance.search(queries[:0], 6)[1].shape == (0, 6)
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


def test_the_server_searches_an_exported_database_as_it_searches_the_index(reference_copy, tmp_path):
    """`alice serve PATH --index DB`: a LanceDB database is served under its folder's name, with the same answers."""
    fastapi_testclient = pytest.importorskip("fastapi.testclient")

    from alice.config.serve import ServeSpec
    from alice.serve.app import create_app
    from alice.serve.state import Served

    ref = reference_copy
    ok("index", "build", ref, "--modality", "image")
    db = tmp_path / "images-db"
    ok("index", "export", ref / "indexes" / "image-test.safetensors", "--to", "lancedb", db)
    served = Served.load(ref, ServeSpec(indexes=[db]))
    assert served.indexes["images-db"].kind == "lancedb"
    with fastapi_testclient.TestClient(create_app(served=served)) as client:
        for word in ("five", "two"):
            ask = {"text": f"one digit: {word}", "k": 5}
            own = client.post("/api/search", json={**ask, "index": "image-test"}).json()
            via = client.post("/api/search", json={**ask, "index": "images-db"}).json()
            assert via["index"]["name"] == "images-db"
            assert [x["row"] for x in via["results"]] == [x["row"] for x in own["results"]]
            assert [x["labels"] for x in via["results"]] == [x["labels"] for x in own["results"]]
        item = client.post("/api/search", json={"item": {"index": "images-db", "row": 3}, "index": "image-test"})
        assert item.status_code == 200, item.text
        assert item.json()["results"][0]["row"] == 3  # an item of the database finds itself in the index
