"""`alice serve` and `alice search` over a space of your own files, on the generic `hf` backbone.

One tiny space, built once for the module: an `image-folder` reference on a random-config ViT
(`hf`), captions from a `text-file` on a random-config BERT (`hf`), and sounds from an
`audio-folder` (`logmel`); an index of each test split. The server answers the space and text
searches (an `hf` backbone says what it reads per instance), and shows each item as what it is:
a picture, a sound, a text; the CLI's table names a file item's path under "file".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ok
from test_your_data import _photos, _recipe

fastapi_testclient = pytest.importorskip("fastapi.testclient")

WORDS = {"cat": "a small cat", "dog": "a big dog", "cat;dog": "a cat and a dog"}


def _sounds(root: Path, n: int = 16) -> Path:
    """n short tones, cat high and dog low, and a labels.csv (the last 4 test, the 4 before val)."""
    import soundfile

    root.mkdir(parents=True)
    lines = ["path,labels,split"]
    for i in range(n):
        label = ("cat", "dog")[i % 2]
        t = np.arange(3200) / 16000
        tone = 0.3 * np.sin(2 * np.pi * (880 if label == "cat" else 220) * t) * (1 + 0.1 * (i % 3))
        soundfile.write(root / f"clip{i}.wav", tone.astype(np.float32), 16000)
        lines.append(f"clip{i}.wav,{label},{'test' if i >= n - 4 else 'val' if i >= n - 8 else 'train'}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def space(tmp_path_factory, tiny_vit, tiny_bert) -> Path:
    folder = tmp_path_factory.mktemp("your-space")
    photos = _photos(folder / "photos")
    captions = folder / "captions.jsonl"
    with captions.open("w") as f:
        for i in range(24):
            labels = list(WORDS)[i % 3]
            split = "test" if i >= 20 else "val" if i >= 16 else "train"
            f.write(json.dumps({"text": WORDS[labels], "labels": labels.split(";"), "split": split}) + "\n")
    sounds = _sounds(folder / "sounds")
    ref = folder / "ref"
    image = _recipe(
        folder / "r.toml", {"dataset": "image-folder", "root": str(photos)}, {"name": "hf", "model": str(tiny_vit)}
    )
    ok("reference", "build", image, "--out", ref)
    text = _recipe(
        folder / "t.toml",
        {"dataset": "text-file", "path": str(captions)},
        {"name": "hf", "model": str(tiny_bert)},
        "modality",
        "text",
    )
    ok("modality", "add", "text", "--reference", ref, "--recipe", text)
    audio = _recipe(
        folder / "a.toml", {"dataset": "audio-folder", "root": str(sounds)}, {"name": "logmel"}, "modality", "audio"
    )
    ok("modality", "add", "audio", "--reference", ref, "--recipe", audio)
    for modality in ("image", "text", "audio"):
        ok("index", "build", ref, "--modality", modality, "--split", "test")
    return ref


@pytest.fixture(scope="module")
def client(space):
    from alice.plugin import InputLimits
    from alice.serve.app import create_app
    from alice.serve.spec import ServeSpec

    spec = ServeSpec(limits=InputLimits(max_seconds=0.1))
    with fastapi_testclient.TestClient(create_app(space, spec)) as c:
        yield c


def test_a_space_on_hf_backbones_answers_and_shows_items_as_what_they_are(client, space):
    facts = client.get("/api/space")
    assert facts.status_code == 200, facts.text  # hf says what it reads per instance, and the server asks it
    reads = {m["name"]: m for m in facts.json()["modalities"]}
    assert reads["image"]["backbone"] == "hf" and ".png" in reads["image"]["file_suffixes"]
    assert (
        reads["text"]["reads_text"] and not reads["image"]["reads_text"] and ".wav" in reads["audio"]["file_suffixes"]
    )
    kinds = {i["name"]: i["preview"] for i in facts.json()["indexes"]}
    assert kinds == {"image-test": "image", "text-test": "text", "audio-test": "sound"}
    shown = {}
    for index in kinds:
        answer = client.post("/api/search", json={"text": "a small cat", "index": index, "k": 3})
        assert answer.status_code == 200, answer.text
        hit = answer.json()["results"][0]
        preview = client.get(hit["preview"])
        assert preview.status_code == 200
        shown[index] = (hit, preview.headers["content-type"], preview.content)
    hit, media, data = shown["image-test"]
    assert media == "image/png" and data.startswith(b"\x89PNG") and hit["file"].startswith("img") and not hit["text"]
    hit, media, data = shown["audio-test"]
    assert media == "audio/wav" and data.startswith(b"RIFF") and hit["file"].startswith("clip") and not hit["text"]
    hit, media, data = shown["text-test"]
    assert media.startswith("text/plain") and data.decode() == hit["text"] in WORDS.values() and not hit["file"]
    # an uploaded picture, read by the hf image backbone; a sound longer than --max-seconds refused from its header
    picture = (space.parent / "photos" / "img0.png").read_bytes()
    answer = client.post("/api/search/file", files={"file": ("img0.png", picture)}, data={"index": "text-test"})
    assert answer.status_code == 200 and answer.json()["query"]["from"] == "image"
    long = client.post(
        "/api/classify/file", files={"file": ("long.wav", (space.parent / "sounds/clip0.wav").read_bytes())}
    )
    assert long.status_code == 413 and long.json()["error"].startswith(
        "sound long.wav lasts 0.2 s, more than the 0.1 s allowed"
    )


def test_the_search_table_names_a_file_item_s_path(space):
    out = ok("search", space, "a big dog", "--in", "image", "-k", "3").out
    assert "file" in out and "img2" in out and "text" not in out.split("\n", 3)[2]
    found = json.loads(ok("search", space, "a big dog", "--in", "audio", "-k", "2", "--json").out)
    assert all(r["file"].endswith(".wav") and "text" not in r for r in found["results"])
