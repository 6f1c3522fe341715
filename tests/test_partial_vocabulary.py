"""A modality whose data set holds a class the reference lacks: its training, and readings flagged everywhere.

The tiny space gets a second image adapter whose recipe drops ``nine`` (``nine = ""``, as
``alice recipe init --reference`` writes a label the reference lacks): its scenes of a nine alone
have no label left, and the reference class ``nine`` is one it does not annotate. C_ref still reads
its latents of nines as ``nine``; ``labels`` leaves the class out, and every surface says why.
"""

from __future__ import annotations

import io
import json
import shutil
import warnings

import numpy as np
import pytest
from cli_helpers import alice

from alice.api import Space, UnannotatedReadingWarning

pytestmark = pytest.mark.usefixtures("recipe_dir")

RECIPE = """stage = "modality"
family = "tiny"
modality = "image"

[data]
dataset = "digits-image"
train = 3000
val = 300
test = 300

[backbone]
name = "pixels"
size = 20

[labels]
mapper = "by-name"
[labels.aliases]
nine = ""

[model]
encoder_hidden = [128, 128]

[training]
steps = 200
batch_size = 128
rec_weight = 1.0
eval_every = 0
"""


@pytest.fixture(scope="module")
def nonine(tiny_reference, tmp_path_factory):
    """(folder, the output of `alice modality add`, a test image read as nine through the new adapter, its PNG)."""
    from PIL import Image

    from alice.data.loading import make_dataset
    from alice.data.recipes import DataSpec
    from alice.search.index import build_index

    work = tmp_path_factory.mktemp("nonine")
    ref = work / "ref"
    shutil.copytree(tiny_reference, ref)
    recipe = work / "image-nonine.toml"
    recipe.write_text(RECIPE)
    added = alice("modality", "add", "image", "--reference", ref, "--recipe", recipe, "--name", "image-nonine")
    assert added.code == 0, added.err
    build_index(ref, "text", "test", device_name="cpu")
    space = Space.load(ref)
    images = make_dataset(DataSpec("digits-image", {"train": 3000, "val": 300, "test": 300})).split("test").inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnannotatedReadingWarning)
        p_nine = space.classify(space.encode("image-nonine", images))[:, space.label_index("nine")]
    row = int(p_nine.argmax())
    png = work / "query.png"
    Image.fromarray((np.clip(np.asarray(images[row]), 0, 1) * 255).round().astype(np.uint8)).save(png)
    return ref, added, images[row], png


def test_items_with_only_labels_the_reference_lacks_are_reported_at_training(nonine):
    ref, added, _, _ = nonine
    line = next(x for x in added.err.splitlines() if "only labels the reference lacks" in x)
    assert line.startswith("warning: data set 'digits-image' (train): ") and "(nine)" in line, line
    assert "kept as negatives for every annotated class" in line and "flagged when queried" in line
    assert "have no label;" not in added.err  # they are not counted twice as unlabelled
    space = Space.load(ref)
    assert "nine" not in space.annotated("image-nonine") and "nine" in space.annotated("image")


def test_python_api_flags_a_reading_on_a_class_the_adapter_does_not_annotate(nonine):
    ref, _, image, _ = nonine
    space = Space.load(ref)
    nine = space.label_index("nine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnannotatedReadingWarning)
        z = space.encode("image-nonine", [image])
    p = float(space.classify(z)[0, nine])
    assert p >= float(space.thresholds("image")[nine])  # C_ref reads it as nine, as the reference modality would
    lines = space.warnings(z, "image-nonine")
    assert len(lines) == 1 and len(lines[0]) == 1
    assert lines[0][0].startswith(f"C_ref reads this image-nonine input as nine (p {p:.2f}), a class adapter ")
    assert "'image-nonine' does not annotate" in lines[0][0]
    with pytest.warns(UnannotatedReadingWarning, match="as nine"):
        labels = space.labels(z, "image-nonine")
    assert "nine" not in labels[0]
    with pytest.warns(UnannotatedReadingWarning):
        space.classify(z, "image-nonine")
    from alice.artifacts.indexes import Index

    index = Index.open(ref / "indexes" / "text-test.safetensors")
    with pytest.warns(UnannotatedReadingWarning):
        space.search(index, z, "image-nonine", k=3)
    # the same latent through an adapter that annotates nine, or without a modality: nothing to flag
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnannotatedReadingWarning)
        assert space.warnings(z, "image") == [[]]
        assert "nine" in space.labels(z, "image")[0]
        space.classify(z)
        assert space.labels(z, "image-nonine", warn=False) == labels
    # many rows: one warning, counting them
    zz = z.repeat(3, 1)
    with pytest.warns(UnannotatedReadingWarning, match=r"reads 3 of 3 image-nonine inputs as nine"):
        space.predict(zz, "image-nonine")


def test_search_cli_and_server_pass_the_warning_on(nonine):
    ref, _, _, png = nonine
    done = alice("search", ref, png, "--from", "image-nonine", "--in", "text", "-k", "3", "--json")
    assert done.code == 0, done.err
    result = json.loads(done.out)
    assert len(result["warnings"]) == 1 and "as nine (p " in result["warnings"][0]
    assert "nine" not in result["query_labels"]
    assert "warning: C_ref reads this image-nonine input as nine" in done.err
    assert "Traceback" not in done.err and "UnannotatedReadingWarning" not in done.err  # said once, as a line
    plain = alice("search", ref, png, "--from", "image", "--in", "text", "-k", "3", "--json")
    assert json.loads(plain.out)["warnings"] == []
    # an edit of the query keeps the reading's warning and flags the edited latent's too
    edited = alice("search", ref, png, "--from", "image-nonine", "--in", "text", "--replace", "zero=one", "--json")
    assert any(w.startswith("C_ref reads this") for w in json.loads(edited.out)["warnings"])

    testclient = pytest.importorskip("fastapi.testclient")
    from alice.serve.app import create_app
    from alice.serve.state import Served

    with testclient.TestClient(create_app(served=Served.load(ref))) as client:
        for path in ("/api/classify/file", "/api/search/file"):
            for source, flagged in (("image-nonine", True), ("image", False)):
                answer = client.post(
                    path, files={"file": ("q.png", io.BytesIO(png.read_bytes()), "image/png")}, data={"from": source}
                )
                assert answer.status_code == 200, answer.text
                query = answer.json()["query"]
                assert bool(query["warnings"]) == flagged, (path, source, query["warnings"])
                if flagged:
                    assert "as nine (p " in query["warnings"][0] and "nine" not in query["labels"]
