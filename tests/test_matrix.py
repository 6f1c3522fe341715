"""The matrix: every generic data set, with a backbone of each kind it can use, through every surface.

One tiny space is built for the module (36 items per data set, two labels, a few training steps):
a reference from an ``image-folder`` on ``pixels``, then one adapter per (data set, backbone) cell.
Each surface then runs once over the whole space (one ``alice eval``, one index of each kind per
cell, one server with every index, one page session, one report, one export and import) and is
asserted per cell. A pair of data set and backbone that is no cell is in ``NOT_A_CELL``, with its reason;
every surface applies to every cell (docs/your-data.md has the table).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import chromium_driver, ok, wait_in_page, write_recipe

pytestmark = pytest.mark.slow

VOCABULARY = ["cat", "dog"]
#: row i's labels; rows 24-29 are val, 30-35 test (pair ids p30-p35 shared across data sets)
LABELS = [["cat"], ["dog"], ["cat", "dog"]]
N, VAL, TEST = 36, 24, 30
TEXTS = {
    "cat": ["a small cat", "one cat", "a sleepy cat", "the cat"],
    "dog": ["a big dog", "one dog", "a barking dog", "the dog"],
    "cat;dog": ["a cat and a dog", "a dog and a cat", "one cat with one dog", "the cat and the dog"],
}
#: training, short: a few dozen items of two classes are learnt in a hundred or so steps at this rate
TRAINING = {
    "reference": ["--steps", "150", "--set", "training.lr=0.01"],
    "modality": ["--steps", "100", "--set", "training.lr=0.01"],
}


def _labels(i: int) -> list[str]:
    return LABELS[i % 3]


def _split(i: int) -> str:
    return "test" if i >= TEST else "val" if i >= VAL else "train"


def _picture(i: int) -> np.ndarray:
    """12x12 grey: noise, a bright left half for cat, a bright right half for dog."""
    x = np.random.default_rng(i).random((12, 12)) * 0.3
    if "cat" in _labels(i):
        x[2:10, 1:5] = 1.0
    if "dog" in _labels(i):
        x[2:10, 7:11] = 1.0
    return (x * 255).astype(np.uint8)


def _sound(i: int) -> np.ndarray:
    """0.2 s at 16 kHz: a high tone for cat, a low one for dog."""
    t = np.arange(3200) / 16000
    wave = sum(0.3 * np.sin(2 * np.pi * {"cat": 880, "dog": 220}[c] * t) for c in _labels(i))
    return (wave * (1 + 0.1 * (i % 4)) + 0.02 * np.random.default_rng(i).standard_normal(t.size)).astype(np.float32)


def _text(i: int) -> str:
    return TEXTS[";".join(_labels(i))][i % 4]


def _vector(i: int) -> np.ndarray:
    v = np.random.default_rng(100 + i).standard_normal(8) * 0.3
    for c in _labels(i):
        v[VOCABULARY.index(c)] += 2.0
    return v.astype(np.float32)


def _rows_csv(first: str, items: list[str]) -> str:
    lines = [f"{first},labels,split,pair_id"] if first else ["labels,split,pair_id"]
    for i in range(N):
        cells = ([items[i]] if first else []) + [";".join(_labels(i)), _split(i), f"p{i}"]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def write_data(root: Path) -> dict[str, Path]:
    """Every data set's files: photos, captions, sounds, vectors, and three hf datasets (images, texts, sounds)."""
    import datasets
    import soundfile
    from PIL import Image

    photos, sounds, vectors = root / "photos", root / "sounds", root / "vectors"
    for folder in (photos, sounds, vectors):
        folder.mkdir(parents=True)
    for i in range(N):
        Image.fromarray(_picture(i)).save(photos / f"img{i}.png")
        soundfile.write(sounds / f"clip{i}.wav", _sound(i), 16000)
    (photos / "labels.csv").write_text(_rows_csv("path", [f"img{i}.png" for i in range(N)]))
    (sounds / "labels.csv").write_text(_rows_csv("path", [f"clip{i}.wav" for i in range(N)]))
    np.save(vectors / "vectors.npy", np.stack([_vector(i) for i in range(N)]))
    (vectors / "labels.csv").write_text(_rows_csv("", []))
    captions = root / "captions.jsonl"
    with captions.open("w") as f:
        for i in range(N):
            f.write(json.dumps({"text": _text(i), "labels": _labels(i), "split": _split(i), "pair_id": f"p{i}"}) + "\n")

    def parts(column: str, feature, value) -> datasets.DatasetDict:
        out = {}
        for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
            rows = [i for i in range(N) if _split(i) == split]
            data = {column: [value(i) for i in rows], "labels": [_labels(i) for i in rows]}
            part = datasets.Dataset.from_dict({**data, "pair_id": [f"p{i}" for i in rows]})
            out[name] = part.cast_column(column, feature)  # a cast, not an encoding: no torchcodec for sounds
        return datasets.DatasetDict(out)

    hf = {}
    hf["hf-images"] = root / "hf-images"
    parts("image", datasets.Image(), lambda i: Image.fromarray(_picture(i))).save_to_disk(str(hf["hf-images"]))
    hf["hf-texts"] = root / "hf-texts"
    parts("text", datasets.Value("string"), _text).save_to_disk(str(hf["hf-texts"]))
    hf["hf-sounds"] = root / "hf-sounds"
    wav = sounds / "clip{}.wav"
    audio = datasets.Audio(decode=False)
    parts(
        "audio", audio, lambda i: {"bytes": Path(str(wav).format(i)).read_bytes(), "path": f"clip{i}.wav"}
    ).save_to_disk(str(hf["hf-sounds"]))
    return {"photos": photos, "sounds": sounds, "vectors": vectors, "captions": captions, **hf}


@dataclass(frozen=True)
class Cell:
    """One (data set, backbone) pair: the adapter it becomes and what its inputs are."""

    adapter: str
    dataset: str
    backbone: str
    kind: str  # image, text, audio or vectors: what a query read by this adapter is


#: the cells; the first is the reference
CELLS = [
    Cell("image", "image-folder", "pixels", "image"),
    Cell("image-mobilenet", "image-folder", "mobilenet-v2", "image"),
    Cell("image-hf", "image-folder", "hf", "image"),
    Cell("text", "text-file", "minilm", "text"),
    Cell("text-hf", "text-file", "hf", "text"),
    Cell("text-st", "text-file", "sentence-transformers", "text"),
    Cell("audio", "audio-folder", "logmel", "audio"),
    Cell("audio-hf", "audio-folder", "hf", "audio"),
    Cell("vectors", "embeddings", "identity", "vectors"),
    Cell("hfd-image", "hf-dataset", "pixels", "image"),
    Cell("hfd-text", "hf-dataset", "minilm", "text"),
    Cell("hfd-audio", "hf-dataset", "logmel", "audio"),
]


@pytest.fixture(scope="module")
def tiny_sentence_transformer(tmp_path_factory, tiny_bert) -> Path:
    """The random tiny BERT as a sentence-transformers folder (mean pooling)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    folder = tmp_path_factory.mktemp("tiny-st")
    word = Transformer(str(tiny_bert))
    SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension())]).save(str(folder))
    return folder


def _recipe_of(cell: Cell, files: dict[str, Path], models: dict[str, Path], folder: Path) -> Path:
    data = {
        "image-folder": {"root": str(files["photos"])},
        "text-file": {"path": str(files["captions"])},
        "audio-folder": {"root": str(files["sounds"])},
        "embeddings": {"path": str(files["vectors"] / "vectors.npy"), "labels": str(files["vectors"] / "labels.csv")},
    }.get(cell.dataset)
    if cell.dataset == "embeddings":
        data = {**data, "modality": "vectors"}
    if cell.dataset == "hf-dataset":
        data = {"path": str(files[{"image": "hf-images", "text": "hf-texts", "audio": "hf-sounds"}[cell.kind]])}
    backbone = {"name": cell.backbone}
    if cell.backbone == "pixels":
        backbone["size"] = 12
    if cell.backbone in ("hf", "sentence-transformers"):
        backbone["model"] = str(models[cell.adapter])
    stage = "reference" if cell is CELLS[0] else "modality"
    modality = cell.kind
    return write_recipe(
        folder / f"{cell.adapter}.toml",
        {"dataset": cell.dataset, **data, "vocabulary": VOCABULARY},
        backbone,
        stage,
        modality,
    )


#: backbones of each kind, and the (data set, backbone) pairs that are no cell, with the reason
BACKBONES = ["pixels", "mobilenet-v2", "hf", "minilm", "sentence-transformers", "logmel", "identity"]
READS = {
    "image": {"pixels", "mobilenet-v2", "hf"},
    "text": {"minilm", "sentence-transformers", "hf"},
    "audio": {"logmel", "hf"},
    "vectors": {"identity"},
}
SAME_INPUTS = (
    "hf-dataset hands this backbone the same decoded {what} that {folder} does (its cell above); one backbone per "
    "kind of input column keeps the module within its time budget"
)
NOT_A_CELL = {
    **{
        ("image-folder", b): "image-folder holds images; this backbone reads none"
        for b in BACKBONES
        if b not in READS["image"]
    },
    **{
        ("text-file", b): "text-file holds texts; this backbone reads none" for b in BACKBONES if b not in READS["text"]
    },
    **{
        ("audio-folder", b): "audio-folder holds sounds; this backbone reads none"
        for b in BACKBONES
        if b not in READS["audio"]
    },
    **{
        ("embeddings", b): "embeddings holds vectors another model computed: identity reads them, no other backbone"
        for b in BACKBONES
        if b != "identity"
    },
    ("hf-dataset", "mobilenet-v2"): SAME_INPUTS.format(what="images", folder="image-folder"),
    ("hf-dataset", "hf"): SAME_INPUTS.format(what="images, texts and sounds", folder="each folder data set"),
    ("hf-dataset", "sentence-transformers"): SAME_INPUTS.format(what="strings", folder="text-file"),
    ("hf-dataset", "identity"): SAME_INPUTS.format(what="number lists", folder="embeddings"),
}
CELL_IDS = [c.adapter for c in CELLS]
BY_NAME = {c.adapter: c for c in CELLS}


def test_every_data_set_and_backbone_is_a_cell_or_says_why():
    datasets = sorted({c.dataset for c in CELLS})
    assert datasets == ["audio-folder", "embeddings", "hf-dataset", "image-folder", "text-file"]
    for dataset in datasets:
        for backbone in BACKBONES:
            cells = [c for c in CELLS if (c.dataset, c.backbone) == (dataset, backbone)]
            assert bool(cells) != ((dataset, backbone) in NOT_A_CELL), (dataset, backbone)
    assert {c.backbone for c in CELLS} == set(BACKBONES)


def _inputs(cell: Cell, files: dict[str, Path]) -> list:
    """All 36 inputs of a cell's data set, as a user would hand them to Space.encode."""
    if cell.dataset == "image-folder":
        return [str(files["photos"] / f"img{i}.png") for i in range(N)]
    if cell.dataset == "audio-folder":
        return [str(files["sounds"] / f"clip{i}.wav") for i in range(N)]
    if cell.kind == "text":
        return [_text(i) for i in range(N)]
    if cell.kind == "image":
        return [_picture(i) for i in range(N)]
    if cell.kind == "audio":
        return [(_sound(i), 16000) for i in range(N)]
    return [_vector(i) for i in range(N)]


def _query_file(cell: Cell, files: dict[str, Path]) -> Path | None:
    """A file this cell's adapter reads as a query (test item 30, a cat), or None for a text adapter."""
    return {
        "image": files["photos"] / "img30.png",
        "audio": files["sounds"] / "clip30.wav",
        "vectors": files["vectors"] / "query.npy",
    }.get(cell.kind)


@pytest.fixture(scope="module")
def space(tmp_path_factory, tiny_vit, tiny_bert, tiny_wav2vec2, tiny_sentence_transformer, recipe_dir):
    """The reference and one adapter per cell, through `alice reference build` and `alice modality add`."""
    folder = tmp_path_factory.mktemp("matrix")
    files = write_data(folder / "data")
    np.save(files["vectors"] / "query.npy", _vector(30))
    models = {
        "image-hf": tiny_vit,
        "text-hf": tiny_bert,
        "audio-hf": tiny_wav2vec2,
        "text-st": tiny_sentence_transformer,
    }
    ref = folder / "space"
    built = {}
    for cell in CELLS:
        recipe = _recipe_of(cell, files, models, folder)
        if cell is CELLS[0]:
            built[cell.adapter] = ok("reference", "build", recipe, "--out", ref, *TRAINING["reference"])
        else:
            add = ["modality", "add", cell.kind, "--reference", ref, "--recipe", recipe, "--name", cell.adapter]
            built[cell.adapter] = ok(*add, *TRAINING["modality"])
    return ref, files, built


@pytest.mark.parametrize("name", CELL_IDS)
def test_build(space, name):
    ref, _, built = space
    cell = BY_NAME[name]
    manifest = json.loads((ref / "adapters" / name / "adapter.json").read_text())
    assert manifest["backbone"]["name"] == cell.backbone and manifest["data"]["dataset"] == cell.dataset
    assert f"({cell.backbone})" in built[name].err  # its features extracted by its own backbone
    assert "val AUROC" in built[name].err


@pytest.fixture(scope="module")
def evaluation(space):
    ref = space[0]
    return json.loads(ok("eval", ref, "--json", "--seeds", "1").out)


@pytest.mark.parametrize("name", CELL_IDS)
def test_eval(evaluation, name):
    cell = BY_NAME[name]
    row = evaluation["modalities"][name]
    assert 0 <= row["classification"]["auroc"] <= 1
    partners = {r["gallery"] for r in evaluation["retrieval"] if r["query"] == name}
    same = {c.adapter for c in CELLS if (c.dataset, c.kind) == (cell.dataset, cell.kind)}
    assert partners == set(CELL_IDS) - same  # every other data set; never another reading of the same inputs


@pytest.fixture(scope="module")
def indexed(space):
    """Two indexes per cell: its test split exact, its val split with an HNSW index (FAISS)."""
    ref = space[0]
    built = {}
    for name in CELL_IDS:
        exact = ok("index", "build", ref, "--modality", name, "--split", "test")
        hnsw = ok("index", "build", ref, "--modality", name, "--split", "val", "--kind", "hnsw")
        built[name] = (exact, hnsw)
    listed = {i["file"].removesuffix(".safetensors"): i for i in json.loads(ok("index", "list", ref, "--json").out)}
    return space, listed


@pytest.mark.parametrize("name", CELL_IDS)
def test_index(indexed, name):
    _, listed = indexed
    exact, hnsw = listed[f"{name}-test"], listed[f"{name}-val"]
    assert (exact["kind"], exact["items"], exact["status"], exact["modality"]) == ("exact", N - TEST, "ok", name)
    assert (hnsw["kind"], hnsw["items"], hnsw["status"]) == ("hnsw", TEST - VAL, "ok")
    assert hnsw["recall_at_10"] == 1.0  # six items: the approximate index finds them all


def _shown_as(cell: Cell) -> str:
    """What a search result of this cell's index carries: the file's path, the text, or only its pair id."""
    return "file" if cell.dataset in ("image-folder", "audio-folder") else "text" if cell.kind == "text" else "pair_id"


@pytest.fixture(scope="module")
def searched(indexed):
    """Two `alice search` runs per cell: it is the gallery of one query and reads the other."""
    (ref, files, _), _ = indexed
    answers = {}
    for cell in CELLS:
        query = _query_file(cell, files)
        if query is None:  # a text adapter reads the text query; a picture is searched for among its texts
            first = ["a small cat", "--in", "image", "--from", cell.adapter]
            second = [files["photos"] / "img30.png", "--in", cell.adapter, "--from", "image"]
        else:
            first = ["a small cat", "--in", cell.adapter, "--from", "text"]
            second = [query, "--in", "text", "--from", cell.adapter]
        answers[cell.adapter] = [
            json.loads(ok("search", ref, *first, "--replace", "cat=dog", "-k", "3", "--json").out),
            json.loads(ok("search", ref, *second, "-k", "3", "--json").out),
        ]
    return answers


@pytest.mark.parametrize("name", CELL_IDS)
def test_search(searched, name):
    cell = BY_NAME[name]
    text, by_file = searched[name]
    for answer in (text, by_file):
        assert len(answer["results"]) == 3 and all(set(r["labels"]) <= set(VOCABULARY) for r in answer["results"])
        assert [r["rank"] for r in answer["results"]] == [1, 2, 3]
    assert text["replace"] == ["cat", "dog"] and set(text["edited_labels"]) <= set(VOCABULARY)
    gallery = text if cell.kind != "text" else by_file
    reader = by_file if cell.kind != "text" else text
    assert gallery["index"] == f"{name}-test" and reader["from"] == name
    shown = _shown_as(cell)
    for r in gallery["results"]:
        assert r[shown] and not ({"file", "text"} - {shown}) & set(r)
        if shown == "file":
            assert r["file"].endswith(".png" if cell.kind == "image" else ".wav")


@pytest.fixture(scope="module")
def api(indexed):
    """The space through the Python API: every input of every cell encoded once."""
    import alice

    (ref, files, _), _ = indexed
    loaded = alice.load(ref)
    latents = {c.adapter: loaded.encode(c.adapter, _inputs(c, files)) for c in CELLS}
    return loaded, latents


def _auroc(probabilities: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    truth = np.array([[c in _labels(i) for c in VOCABULARY] for i in range(N)])
    return float(np.mean([roc_auc_score(truth[:, c], probabilities[:, c]) for c in range(len(VOCABULARY))]))


@pytest.mark.parametrize("name", CELL_IDS)
def test_python_api(api, indexed, name):
    from alice.search.indexes import Index

    loaded, latents = api
    (ref, _, _), _ = indexed
    z = latents[name]
    assert z.shape == (N, loaded.latent_dim) and torch.allclose(z.norm(dim=1), torch.ones(N), atol=1e-5)
    p = loaded.classify(z, name).numpy()
    assert p.shape == (N, 2) and ((p >= 0) & (p <= 1)).all()
    assert _auroc(p) > 0.75  # learnable data: the classes apart through C_ref
    assert all(set(labels) <= set(VOCABULARY) for labels in loaded.labels(z, name, warn=False))
    cats = [i for i in range(N) if _labels(i) == ["cat"]]
    edited = loaded.intervene(z[cats], replace=("cat", "dog"), through=name)
    assert edited.shape == (len(cats), loaded.latent_dim)
    before, after = loaded.classify(z[cats], name).numpy(), loaded.classify(edited, name).numpy()
    assert after[:, 1].mean() > before[:, 1].mean()  # more dog after "replace cat with dog"
    index = Index.open(ref / "indexes" / f"{name}-test.safetensors").load()
    scores, rows = loaded.search(index, z[TEST:], name, k=3)
    assert rows.shape == (N - TEST, 3) and rows[:, 0].tolist() == list(range(N - TEST))  # each test item finds itself
    assert torch.all(scores[:, :-1] >= scores[:, 1:])


@pytest.fixture(scope="module")
def server(indexed):
    """One `alice serve` app over the whole space (every index), on a free port in a thread of this process."""
    import socket
    import threading

    import uvicorn

    from alice.serve.app import create_app

    (ref, _, _), _ = indexed
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    running = uvicorn.Server(uvicorn.Config(create_app(ref), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.time() + 120
    while not running.started and thread.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    assert running.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=30)


#: routes and what asked them, filled by `served`; every operation of /openapi.json must be in it
CALLED: set[tuple[str, str]] = set()


def _call(client, method: str, route: str, path: str | None = None, **kwargs):
    answer = client.request(method, path or route, **kwargs)
    assert answer.status_code == 200, f"{method} {path or route}: {answer.status_code} {answer.text[:500]}"
    CALLED.add((method.lower(), route))
    return answer


@pytest.fixture(scope="module")
def served(server, indexed):
    """Every route of the server, asked about every cell: its answers by cell."""
    import httpx

    (_, files, _), _ = indexed
    out = {}
    with httpx.Client(base_url=server, timeout=120) as client:
        schema = _call(client, "GET", "/openapi.json").json()
        health = _call(client, "GET", "/api/health").json()
        facts = _call(client, "GET", "/api/space").json()
        for cell in CELLS:
            name, query = cell.adapter, _query_file(cell, files)
            answers = {}
            text = {"text": "a small cat", "replace": "cat=dog"}
            if query is None:  # this adapter reads the text; a picture is searched for among its texts
                read = {**text, "from": name}
                answers["search"] = _call(client, "POST", "/api/search", json={**read, "index": "image-test", "k": 3})
                answers["classify"] = _call(client, "POST", "/api/classify", json=read)
                upload = {"files": {"file": ("img30.png", (files["photos"] / "img30.png").read_bytes())}}
                answers["gallery"] = _call(
                    client,
                    "POST",
                    "/api/search/file",
                    data={"index": f"{name}-test", "k": 3, "from": "image", "replace": "cat=dog"},
                    **upload,
                )
            else:  # a file this adapter reads, in an upload; a text searched for among its items
                upload = {"files": {"file": (query.name, query.read_bytes())}}
                answers["search"] = _call(
                    client,
                    "POST",
                    "/api/search/file",
                    data={"index": "text-test", "k": 3, "from": name, "replace": "cat=dog"},
                    **upload,
                )
                answers["classify"] = _call(client, "POST", "/api/classify/file", data={"from": name}, **upload)
                answers["gallery"] = _call(
                    client, "POST", "/api/search", json={**text, "from": "text", "index": f"{name}-test", "k": 3}
                )
            approximate = {"item": {"index": f"{name}-test", "row": 0}, "index": f"{name}-val", "k": 3}
            answers["item-search"] = _call(client, "POST", "/api/search", json=approximate)
            item_route = "/api/indexes/{name}/items/{row}"
            answers["item"] = _call(client, "GET", item_route, f"/api/indexes/{name}-test/items/0")
            answers["preview"] = _call(
                client, "GET", item_route + "/preview", f"/api/indexes/{name}-test/items/0/preview"
            )
            out[name] = {k: v.json() if k != "preview" else v for k, v in answers.items()}
    return schema, health, facts, out


def test_every_route_of_the_schema_is_asked(served):
    schema, health, _, _ = served
    operations = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert operations and operations <= CALLED, operations - CALLED
    assert health["status"] == "ok" and health["indexes"] == 2 * len(CELLS)


PREVIEW_MEDIA = {"image": ("image/png", b"\x89PNG"), "audio": ("audio/wav", b"RIFF")}


@pytest.mark.parametrize("name", CELL_IDS)
def test_serve(served, name):
    cell = BY_NAME[name]
    _, _, facts, answers = served
    answers = answers[name]
    modality = {m["name"]: m for m in facts["modalities"]}[name]
    assert modality["backbone"] == cell.backbone and modality["reads_text"] == (cell.kind == "text")
    indexes = {i["name"]: i for i in facts["indexes"]}
    preview = {"image": "image", "audio": "sound", "text": "text", "vectors": "text"}[cell.kind]
    assert indexes[f"{name}-test"]["preview"] == indexes[f"{name}-val"]["preview"] == preview
    for key in ("search", "gallery", "item-search"):
        results = answers[key]["results"]
        assert len(results) == 3 and all(set(r["labels"]) <= set(VOCABULARY) for r in results), key
    assert answers["search"]["query"]["from"] == name and answers["gallery"]["index"]["name"] == f"{name}-test"
    approximate = answers["item-search"]
    assert (
        approximate["query"]["kind"] == "item" and approximate["index"]["kind"] == "hnsw" and not approximate["exact"]
    )
    for key in ("search", "gallery"):
        edited = answers[key]["query"]
        assert edited["replace"] == ["cat", "dog"] and set(edited["edited_labels"]) <= set(VOCABULARY), key
    reading = answers["classify"]["query"]
    assert len(reading["probabilities"]) == 2 and all(0 <= p <= 1 for p in reading["probabilities"].values())
    assert answers["item"]["row"] == 0 and answers["item"]["labels"] == _labels(TEST)
    media, magic = PREVIEW_MEDIA.get(cell.kind, ("text/plain", b""))
    got = answers["preview"]
    assert got.headers["content-type"].startswith(media) and got.content.startswith(magic)
    if cell.kind == "text":
        assert got.content.decode() == _text(TEST)


@pytest.fixture(scope="module")
def page(server):
    """One Chromium session on the server's page: a typed query searched in each cell's index, the results as shown."""

    driver = chromium_driver()  # skips where Debian's chromium is not installed, as the other page tests do
    shown = {}
    try:
        driver.get(server + "/")
        wait_in_page(driver, f"return document.querySelectorAll('#index option').length >= {2 * len(CELLS)};")
        for cell in CELLS:
            driver.execute_script(
                "document.querySelector('#results').replaceChildren();"
                "document.querySelector('#summary').textContent = '';"
                "document.querySelector('#index').value = arguments[0];"
                "document.querySelector('#from').value = 'text';"
                "document.querySelector('#text').value = 'a small cat';",
                f"{cell.adapter}-test",
            )
            driver.find_element("css selector", "#search").click()
            wait_in_page(
                driver,
                "return document.querySelector('#summary').textContent.includes(arguments[0]);".replace(
                    "arguments[0]", json.dumps(f"in {cell.adapter}-test")
                ),
            )
            shown[cell.adapter] = wait_in_page(
                driver,
                "const r = Array.from(document.querySelectorAll('#results .result'));"
                "const img = r.map(x => x.querySelector('img')).filter(Boolean);"
                # wait for the pictures to load, the sounds to be read, a vector's preview to arrive
                "if (img.some(i => !(i.complete && i.naturalWidth > 0))) return null;"
                "if (r.some(x => x.querySelector('audio') && x.querySelector('audio').readyState < 1)) return null;"
                "if (r.some(x => (x.querySelector('.text') || {}).textContent?.startsWith('#'))) return null;"
                "return r.length ? r.map(x => ({"
                "  img: x.querySelector('img') ? x.querySelector('img').naturalWidth : null,"
                "  audio: x.querySelector('audio') ? x.querySelector('audio').duration : null,"
                "  text: x.querySelector('.text') ? x.querySelector('.text').textContent : null,"
                "  file: x.querySelector('.file') ? x.querySelector('.file').textContent : null})) : null;",
            )
    finally:
        driver.quit()
    return shown


@pytest.mark.parametrize("name", CELL_IDS)
def test_page(page, name):
    cell = BY_NAME[name]
    results = page[name]
    assert len(results) == N - TEST  # the whole index: k is 10 on the page
    for r in results:
        if cell.kind == "image":  # a picture, loaded
            assert r["img"] and r["img"] > 0 and r["audio"] is None and r["text"] is None
        elif cell.kind == "audio":  # a player, its sound read: 0.2 s
            assert r["audio"] == pytest.approx(0.2, abs=0.01) and r["img"] is None
        elif cell.kind == "text":  # its text
            assert r["text"] in {_text(i) for i in range(TEST, N)} and r["img"] is None and r["audio"] is None
        else:  # a vector is none of them: its preview, its first numbers (the page fetches it)
            assert r["text"].startswith("[8 numbers] ") and r["img"] is None and r["audio"] is None
        if cell.dataset in ("image-folder", "audio-folder"):
            assert r["file"].startswith("img" if cell.kind == "image" else "clip")


@pytest.fixture(scope="module")
def report(evaluation, indexed, tmp_path_factory):
    """One `alice report` of the whole space (outside it), from the evaluation already run."""
    (ref, _, _), _ = indexed
    out = tmp_path_factory.mktemp("report") / "report"
    ok("report", ref, "--out", out, "--items", "10", "--projection", "pca", "--queries", "1", "-k", "2", "--seeds", "1")
    return out, (out / "index.html").read_text(), json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("name", CELL_IDS)
def test_report(report, name):
    cell = BY_NAME[name]
    out, page, record = report
    assert {r["query"] for r in record["search"] if r["gallery"] == name} == set(CELL_IDS) - {name}
    rows = {r["row"] for r in record["search"] if r["query"] == name}
    assert rows
    row = next(iter(rows))
    if cell.kind == "image":
        assert (out / "items" / f"{name}-{row}.png").read_bytes().startswith(b"\x89PNG")
        assert f'<img src="items/{name}-{row}.png"' in page
    elif cell.kind == "audio":
        assert (out / "items" / f"{name}-{row}.wav").read_bytes().startswith(b"RIFF")
        assert f'<audio controls src="items/{name}-{row}.wav">' in page
    else:
        assert f"<figcaption>{name}: " in page and not (out / "items" / f"{name}-{row}.png").exists()


@pytest.fixture(scope="module")
def exported(api, indexed, tmp_path_factory):
    """The space exported to one archive, imported elsewhere and verified; loaded through the Python API."""
    import alice

    (ref, _, _), _ = indexed
    folder = tmp_path_factory.mktemp("shared")
    ok("reference", "export", ref, "--out", folder / "space.alice.tar.gz")
    ok("reference", "import", folder / "space.alice.tar.gz", "--into", folder / "into")
    imported = next((folder / "into").iterdir())
    verified = json.loads(ok("reference", "verify", imported, "--json").out)
    return imported, verified, alice.load(imported)


@pytest.mark.parametrize("name", CELL_IDS)
def test_export_import_verify(exported, api, indexed, name):
    from alice.search.indexes import Index

    imported, verified, space = exported
    (_, files, _), _ = indexed
    loaded, latents = api
    assert space.digest == loaded.digest and name in space.modalities
    assert not (imported / "indexes").exists()  # derived: left out of an archive, rebuilt by the recipient
    cell = BY_NAME[name]
    z = space.encode(name, _inputs(cell, files))
    assert torch.equal(z, latents[name])  # the same adapter, bit for bit
    # so the index built beside the original is current for the copy: the same reference, the same adapter
    index = Index.open(indexed[0][0] / "indexes" / f"{name}-test.safetensors").load()
    assert space.search(index, z[TEST:], name, k=1)[1][:, 0].tolist() == list(range(N - TEST))
    assert verified["ok"] and verified["digest"] == loaded.digest
    checked = {f["item"] for f in verified["findings"] if f["ok"]}
    assert any(name in item for item in checked)  # its adapter's files among those re-hashed
