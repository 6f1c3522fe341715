"""`alice serve`: the JSON API through FastAPI's TestClient (no port), its refusals, and the server going on after."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import refused

from alice.artifacts.ann import AnnSpec
from alice.artifacts.indexes import write_index
from alice.errors import AliceError

pytestmark = pytest.mark.usefixtures("recipe_dir")
ROOT = Path(__file__).resolve().parents[1]

fastapi_testclient = pytest.importorskip("fastapi.testclient")


@pytest.fixture(scope="module")
def served_ref(tiny_reference, tmp_path_factory):
    """The tiny reference with an exact image index and an approximate (ivf) text index of the test split."""
    ref = tmp_path_factory.mktemp("serve") / "ref"
    shutil.copytree(tiny_reference, ref)
    from alice.search.index import build_index

    build_index(ref, "image", "test", device_name="cpu")
    build_index(ref, "text", "test", device_name="cpu", approximate=AnnSpec(kind="ivf", nprobe=8))
    return ref


@pytest.fixture(scope="module")
def served(served_ref):
    from alice.serve.state import Served

    return Served.load(served_ref)


@pytest.fixture(scope="module")
def client(served):
    from alice.serve.app import create_app

    with fastapi_testclient.TestClient(create_app(served=served)) as c:
        yield c


def scene_png(ref, wanted: list[str]) -> tuple[bytes, int]:
    """A test-split scene showing exactly ``wanted``, as PNG bytes, and its row in the image index."""
    from PIL import Image

    from alice.artifacts.indexes import Index

    index = Index.open(ref / "indexes" / "image-test.safetensors")
    vocab = json.loads((ref / "reference.json").read_text())["vocabulary"]
    from alice.data.loading import make_dataset
    from alice.data.recipes import DataSpec

    split = make_dataset(DataSpec(index.meta["dataset"]["name"], index.meta["dataset"]["options"])).split("test")
    for row in range(index.count):
        if index.label_names(row, vocab) == wanted:
            image = (np.clip(np.asarray(split.inputs[row]), 0, 1) * 255).round().astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            return buffer.getvalue(), row
    raise AssertionError(f"no test scene showing exactly {wanted}")


def refusal(response, status: int, needle: str, client) -> None:
    """A 4xx with a one-line message naming the problem, and the server answers the next request."""
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    assert needle in message and "\n" not in message and "Traceback" not in message, message
    assert client.get("/api/health").json()["status"] == "ok"


# ----------------------------------------------------------------- what it serves


def test_health_space_and_schema(client, served_ref):
    health = client.get("/api/health").json()
    sha = json.loads((served_ref / "reference.json").read_text())["weights"]["sha256"]
    assert health["status"] == "ok" and health["reference_sha256"] == sha and health["indexes"] == 2
    space = client.get("/api/space").json()
    assert space["sha256"] == sha and len(space["vocabulary"]) == 10 and space["latent_dim"] == 32
    reads = {m["name"]: m for m in space["modalities"]}
    assert (
        ".png" in reads["image"]["file_suffixes"] and reads["text"]["reads_text"] and not reads["image"]["reads_text"]
    )
    indexes = {i["name"]: i for i in space["indexes"]}
    assert indexes["image-test"]["kind"] == "exact" and indexes["image-test"]["preview"] == "image"
    assert indexes["text-test"]["kind"] == "ivf" and indexes["text-test"]["preview"] == "text"
    assert indexes["text-test"]["recall_at_10"] > 0.5
    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/search/file", "/api/classify", "/api/space", "/api/health"} <= set(schema["paths"])
    # the schema says what the server answers: every status, exactly one of text or item, this space's names
    declared = lambda path, method="post": set(schema["paths"][path][method]["responses"])  # noqa: E731
    assert declared("/api/search") == {"200", "400", "404", "409", "413", "422", "503"}
    assert declared("/api/search/file") == {"200", "400", "404", "409", "413", "415", "422", "503"}
    assert declared("/api/indexes/{name}/items/{row}/preview", "get") == {"200", "404", "409", "422", "503"}
    request = schema["components"]["schemas"]["SearchRequest"]
    assert [branch["required"] for branch in request["oneOf"]] == [["text"], ["item"]]
    assert request["properties"]["from"]["anyOf"][0]["enum"] == ["text"]  # the adapters that read text
    assert request["properties"]["index"]["anyOf"][0]["enum"] == ["image-test", "text-test"]
    assert request["properties"]["k"]["maximum"] == 100
    assert re.fullmatch(request["properties"]["replace"]["anyOf"][0]["pattern"], "three=seven")
    assert not re.fullmatch(request["properties"]["replace"]["anyOf"][0]["pattern"], "three=three")
    page = client.get("/")
    assert page.status_code == 200 and "ALICE search" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from the network


def test_text_query_finds_images_of_its_digit_with_previews(client):
    hits = 0
    for word in ("zero", "three", "seven", "nine"):
        answer = client.post("/api/search", json={"text": f"one digit: {word}", "index": "image-test", "k": 10}).json()
        assert answer["query"]["from"] == "text" and answer["index"]["name"] == "image-test" and answer["exact"]
        scores = [r["score"] for r in answer["results"]]
        assert len(scores) == 10 and scores == sorted(scores, reverse=True)
        assert set(answer["query"]["probabilities"]) == set(client.get("/api/space").json()["vocabulary"])
        hits += sum(word in r["labels"] for r in answer["results"])
    assert hits >= 12  # chance is about a fifth of 40
    picture = client.get(answer["results"][0]["preview"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG")


def test_an_uploaded_image_and_its_counterfactual(client, served_ref):
    png, _ = scene_png(served_ref, ["three"])
    files = {"file": ("scene.png", png, "image/png")}
    plain = client.post("/api/search/file", files=files, data={"index": "text-test", "k": "10"}).json()
    assert plain["query"]["from"] == "image" and plain["query"]["kind"] == "file" and plain["index"]["kind"] == "ivf"
    assert plain["results"][0]["text"]  # captions come with their text
    edited = client.post(
        "/api/search/file", files=files, data={"index": "text-test", "k": "10", "replace": "three=seven"}
    ).json()
    assert edited["query"]["replace"] == ["three", "seven"]
    assert "seven" in edited["query"]["edited_labels"] and "three" not in edited["query"]["edited_labels"]
    sevens = lambda a: sum("seven" in r["labels"] and "three" not in r["labels"] for r in a["results"])  # noqa: E731
    assert sevens(edited) >= 5 and sevens(edited) > sevens(plain)
    labels = client.post("/api/classify/file", files=files, data={"replace": "three=seven"}).json()["query"]
    assert labels["labels"] == edited["query"]["labels"] and labels["edited_labels"] == edited["query"]["edited_labels"]


def test_an_item_of_an_index_as_the_query_and_classify(client):
    answer = client.post("/api/search", json={"item": {"index": "image-test", "row": 5}, "index": "image-test"}).json()
    assert answer["query"]["kind"] == "item" and answer["query"]["from"] == "image"
    assert answer["results"][0]["row"] == 5 and answer["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    item = client.get("/api/indexes/image-test/items/5").json()
    assert item["labels"] == answer["results"][0]["labels"]
    text = client.post("/api/classify", json={"text": "one digit: four", "replace": "four=eight"}).json()["query"]
    assert text["from"] == "text" and "four" in text["labels"] and "eight" in text["edited_labels"]


def test_approximate_and_exact_answers_agree(client):
    for word in ("two", "six"):
        body = {"text": f"a {word}", "index": "text-test", "k": 10}
        fast = client.post("/api/search", json=body).json()
        exact = client.post("/api/search", json={**body, "exact": True}).json()
        assert not fast["exact"] and exact["exact"]
        overlap = {r["row"] for r in fast["results"]} & {r["row"] for r in exact["results"]}
        assert len(overlap) >= 7, overlap


# ----------------------------------------------------------------- refusals


def test_bad_requests_are_one_line_4xx_and_the_server_goes_on(client, served_ref):
    post = lambda body: client.post("/api/search", json=body)  # noqa: E731
    refusal(post({"text": "a two", "from": "sonar"}), 400, "unknown modality 'sonar'", client)
    refusal(post({"text": "a two", "replace": "three"}), 400, "replace takes OLD=NEW", client)
    refusal(post({"text": "a two", "replace": "eleven=two"}), 400, "unknown label 'eleven'", client)
    refusal(post({"text": "a two", "replace": "two=two"}), 400, "names the same class twice", client)
    refusal(post({"text": "a two", "k": 0}), 422, "k must be from 1 to 100, got 0", client)
    refusal(post({"text": "a two", "k": 5000}), 422, "k must be from 1 to 100, got 5000", client)
    refusal(post({"text": "a two", "k": "many"}), 422, "k:", client)
    refusal(post({"text": "a two", "index": "nope"}), 404, "unknown index 'nope'", client)
    refusal(post({"text": "a two", "colour": "red"}), 422, "colour", client)
    refusal(post({}), 422, "give exactly one of text or item", client)
    refusal(post({"item": {"index": "image-test", "row": 10_000}}), 404, "has rows 0 to 299", client)
    both = {"text": "a two", "item": {"index": "image-test", "row": 1}}
    refusal(post(both), 422, "exactly one of text or item", client)
    refusal(post({"item": {"index": "image-test", "row": 1}, "from": "image"}), 422, "from goes with a text", client)
    refusal(post({"text": "   "}), 422, "no character but white space", client)
    refusal(post({"text": "a two", "k": True}), 422, "k:", client)
    refusal(post({"text": "a two", "replace": "Two=seven"}), 400, "as the vocabulary spells them: two=seven", client)
    refusal(client.put("/api/search"), 405, "Method Not Allowed", client)
    assert client.put("/api/search").headers["allow"] == "POST"  # a 405 says which methods the path answers
    refusal(
        client.post("/api/search", content=b"{not json", headers={"content-type": "application/json"}), 422, "", client
    )
    refusal(client.get("/api/indexes/image-test/items/999/preview"), 404, "has rows 0 to 299", client)
    refusal(client.get("/api/nothing-here"), 404, "Not Found", client)
    upload = lambda name, data: client.post("/api/search/file", files={"file": (name, data)})  # noqa: E731
    refusal(upload("notes.txt", b"a seven"), 415, "no adapter of this space reads .txt files (image: .png", client)
    refusal(upload("notes", b"a seven"), 415, "the uploaded file 'notes' has no ending", client)
    refusal(upload("scene.png", b"not a png at all"), 422, "cannot read the uploaded file 'scene.png' as image", client)
    refusal(upload("empty.png", b""), 422, "is empty", client)
    png, _ = scene_png(served_ref, ["three"])
    refusal(
        client.post("/api/search/file", files={"file": ("s.png", png)}, data={"from": "text"}),
        415,
        "'text' reads text, not .png files",
        client,
    )


def test_an_oversized_upload_is_refused_before_it_is_read(served, served_ref):
    from alice.serve.app import create_app
    from alice.serve.spec import ServeSpec

    png, _ = scene_png(served_ref, ["three"])
    with fastapi_testclient.TestClient(create_app(spec=ServeSpec(max_upload_bytes=len(png) // 2), served=served)) as c:
        refusal(c.post("/api/search/file", files={"file": ("s.png", png)}), 413, "larger than this server accepts", c)
        assert c.post("/api/search", json={"text": "a two", "k": 3}).status_code == 200


def test_an_index_of_another_reference_is_not_served(served_ref, tmp_path):
    """In the folder: left out at start, and a request naming it is a 409 saying why. Given by hand: no start."""
    from alice.artifacts.verify import rehash
    from alice.serve.app import create_app
    from alice.serve.spec import ServeSpec
    from alice.serve.state import Served

    ref = tmp_path / "ref"
    shutil.copytree(served_ref, ref)
    z = torch.nn.functional.normalize(torch.randn(20, 32), dim=1)
    foreign = write_index(
        ref / "indexes" / "foreign.safetensors",
        z,
        {"modality": "image", "reference_sha256": "0" * 64, "adapter_sha256": "a"},
    )
    rehash(ref)  # recorded in space.json, as `alice reference verify --rehash` would: only its reference is wrong
    with fastapi_testclient.TestClient(create_app(ref)) as c:
        assert "foreign" in c.get("/api/space").json()["refused_indexes"]
        refusal(
            c.post("/api/search", json={"text": "a two", "index": "foreign"}), 409, "was built against reference", c
        )
    with pytest.raises(AliceError, match="was built against reference"):
        Served.load(served_ref, ServeSpec(indexes=[foreign]))
    refused("was built against reference", "serve", served_ref, "--index", foreign, "--port", "1")


# ----------------------------------------------------------------- safe to hand to strangers


def uploads_module():
    """benchmarks/serve_uploads.py: the PNGs it measures the server with (written a row at a time)."""
    spec = importlib.util.spec_from_file_location("serve_uploads", ROOT / "benchmarks" / "serve_uploads.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_text_is_text_never_a_path_on_the_server(client, tmp_path):
    """A text naming a file of the server (an image there is, one there is not, a folder, a pipe) sent to the image
    adapter is refused at once, with one line that says nothing of the file; read as text, it is text."""
    png = tmp_path / "there.png"
    png.write_bytes(scene_png_bytes())
    os.mkfifo(tmp_path / "pipe.png")
    lines = set()
    for text in (png, tmp_path / "absent.png", tmp_path, tmp_path / "pipe.png"):
        for route in ("/api/classify", "/api/search"):
            t0 = time.perf_counter()
            answer = client.post(route, json={"text": str(text), "from": "image"})
            assert time.perf_counter() - t0 < 10 and answer.status_code == 400, answer.text
            lines.add(answer.json()["error"])
    assert lines == {
        "'image' reads .png, .jpg, .jpeg, .bmp, .gif, .webp, .tif, .tiff files, not text; send a file to "
        "/api/search/file or /api/classify/file"
    }
    read = client.post("/api/classify", json={"text": str(png)}).json()["query"]
    assert read["kind"] == "text" and read["from"] == "text" and read["shown"] == str(png)


def scene_png_bytes(side: int = 20) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((side, side), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_over_the_caps_are_refused_from_their_header(served, tmp_path):
    """413 with one line for an image of more pixels than --max-pixels, even one Pillow itself calls a bomb; read
    from the header, so at once. One just under the cap is answered."""
    from alice.plugin import InputLimits
    from alice.serve.app import create_app
    from alice.serve.spec import ServeSpec

    pngs = uploads_module()
    spec = ServeSpec(limits=InputLimits(max_pixels=200 * 200))
    with fastapi_testclient.TestClient(create_app(spec=spec, served=served)) as c:
        upload = lambda path: c.post("/api/classify/file", files={"file": (path.name, path.read_bytes())})  # noqa: E731
        big = pngs.grey_png(tmp_path / "big.png", 201, 200)
        refusal(upload(big), 413, "image big.png is 201 x 200 pixels, more than the 40,000 allowed; make it", c)
        for side in (12_000, 20_000):  # a bomb by Pillow's own measure, and one under it
            t0 = time.perf_counter()
            claim = pngs.png_claiming(tmp_path / f"claims-{side}.png", side, side)
            refusal(upload(claim), 413, f"image claims-{side}.png ", c)
            assert time.perf_counter() - t0 < 5
        assert upload(pngs.grey_png(tmp_path / "fits.png", 200, 200)).status_code == 200
        assert c.get("/api/space").json()["max_pixels"] == 40_000


def test_no_request_blocks_the_others(served, tmp_path):
    """While another request holds the models, a query gets a 503 after the bound, not a wait without end; an upload
    is decoded outside that lock (refused for its size while the models are busy); then all goes on."""
    from alice.plugin import InputLimits
    from alice.serve.app import create_app
    from alice.serve.spec import ServeSpec

    spec = ServeSpec(busy_after_s=0.5, limits=InputLimits(max_pixels=100))
    claim = uploads_module().png_claiming(tmp_path / "large.png", 5000, 5000)
    with fastapi_testclient.TestClient(create_app(spec=spec, served=served)) as c:
        assert served._lock.acquire(timeout=60)  # another request at the models
        try:
            t0 = time.perf_counter()
            refusal_while_busy = c.post("/api/search", json={"text": "a two", "k": 3})
            assert 0.5 <= time.perf_counter() - t0 < 10
            assert refusal_while_busy.status_code == 503, refusal_while_busy.text
            assert "the server is busy: no turn at the models within 0.5 s" in refusal_while_busy.json()["error"]
            early = c.post("/api/classify/file", files={"file": ("large.png", claim.read_bytes())})
            assert early.status_code == 413 and "5,000 x 5,000 pixels" in early.json()["error"]
            assert c.get("/api/health").status_code == 200
        finally:
            served._lock.release()
        assert c.post("/api/search", json={"text": "a two", "k": 3}).status_code == 200


def test_a_token_guards_all_but_health_and_the_page(served, served_ref, tmp_path):
    """With a token, a request without it (or with another) is a 401 before its body is read; health and the page
    answer anyone. Beyond the loopback a token (or --open) is required before anything loads."""
    from alice.serve.app import create_app
    from alice.serve.spec import ServeSpec

    token = "a-token-long-enough-to-guess-never"
    with fastapi_testclient.TestClient(create_app(spec=ServeSpec(token=token), served=served)) as c:
        assert c.get("/api/health").status_code == 200 and "ALICE search" in c.get("/").text
        for headers in ({}, {"Authorization": "Bearer not-the-token-at-all-no"}, {"Authorization": token}):
            for method, path in (("GET", "/api/space"), ("GET", "/openapi.json"), ("POST", "/api/search")):
                answer = c.request(method, path, headers=headers, json={"text": "a two"})
                assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
                assert "needs its token" in answer.json()["error"]
        big = c.post("/api/search/file", files={"file": ("x.png", b"\0" * (11 * 2**20))})
        assert big.status_code == 401  # refused before the upload is read
        good = {"Authorization": f"Bearer {token}"}
        assert c.post("/api/search", headers=good, json={"text": "a two", "k": 2}).status_code == 200
        schema = c.get("/openapi.json", headers=good).json()
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert "401" in schema["paths"]["/api/space"]["get"]["responses"]
        assert "401" not in schema["paths"]["/api/health"]["get"]["responses"]
    refused("serves beyond this machine: set a token", "serve", served_ref, "--host", "0.0.0.0", "--port", "1")
    (tmp_path / "short").write_text("tiny\n")
    refused("give one of at least 16", "serve", served_ref, "--token-file", tmp_path / "short", "--port", "1")
    (tmp_path / "empty").write_text("\n")
    refused("the token file", "serve", served_ref, "--host", "0.0.0.0", "--token-file", tmp_path / "empty")
    ServeSpec(host="0.0.0.0", open=True).check()
    ServeSpec(host="0.0.0.0", token=token).check()


def test_a_backbone_that_decodes_nothing_reads_the_upload_when_it_encodes(client, served, served_ref, monkeypatch):
    """A plugin's backbone without its own read_file gets the upload's path: the file lasts until it is encoded."""
    from alice.plugin import Backbone

    png, _ = scene_png(served_ref, ["three"])
    decoded = client.post("/api/classify/file", files={"file": ("scene.png", png)}).json()["query"]
    monkeypatch.setattr(type(served.space.backbone("image")), "read_file", Backbone.read_file)
    answer = client.post("/api/classify/file", files={"file": ("scene.png", png)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["query"]["probabilities"] == decoded["probabilities"]  # the same pixels, read later
