"""The COCO pipeline on the small real COCO-format sample, with random-config ViT and BERT (no download)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from cli_helpers import alice

from alice.errors import AliceError


@pytest.fixture(scope="module")
def coco_sample(tmp_path_factory):
    from alice_plugins.coco.cli import write_sample

    return write_sample(tmp_path_factory.mktemp("coco") / "coco-sample")


@pytest.fixture
def coco_copy(coco_sample, tmp_path):
    dst = tmp_path / "coco"
    shutil.copytree(coco_sample, dst)
    return dst


def test_sample_is_read_through_pycocotools(coco_sample):
    from alice_plugins.coco.datasets import CocoImage, CocoText

    img, txt = CocoImage(root=str(coco_sample)), CocoText(root=str(coco_sample))
    assert len(img.vocabulary) == 80
    assert img.vocabulary[0] == "person"
    assert img.vocabulary[-1] == "toothbrush"
    train, val, test = img.split("train"), img.split("val"), img.split("test")
    assert len(train.inputs) + len(val.inputs) == 12
    assert len(test.inputs) == 7
    assert not set(train.inputs) & set(val.inputs)
    cat = img.vocabulary.index("cat")
    assert test.labels[:, cat].sum() == 1  # the cropped cat face
    captions = txt.split("test")
    assert len(captions.inputs) == 14
    assert set(captions.pair_ids) == set(test.pair_ids)
    by_image = dict(zip(test.pair_ids, test.labels.tolist()))
    assert all(by_image[p] == y for p, y in zip(captions.pair_ids, captions.labels.tolist()))


@pytest.mark.slow
def test_coco_commands_end_to_end_with_random_vit_and_bert(coco_sample, tiny_vit, tiny_bert, tmp_path):
    """The paper's recipes with the backbones swapped for local random-config models: build, add, eval."""
    out = tmp_path / "coco-ref"
    common = [
        "--set",
        f"data.root={json.dumps(str(coco_sample))}",
        "--set",
        "data.val_fraction=0.25",
        "--set",
        "training.steps=40",
        "--set",
        "training.batch_size=8",
    ]
    r = alice(
        "reference",
        "build",
        "coco-image",
        "--out",
        out,
        *common,
        "--set",
        f"backbone.model={json.dumps(str(tiny_vit))}",
        "--set",
        f'intervention.prompt_backbone={{name = "bert", model = {json.dumps(str(tiny_bert))}}}',
        "--set",
        "intervention.num_templates=2",
        "--set",
        "model.latent_dim=16",
        "--set",
        "model.encoder_hidden=[32]",
        "--set",
        "model.classifier_hidden=[32]",
        "--set",
        "intervention.hidden=32",
    )
    assert r.code == 0, r.err
    ref = json.loads((out / "reference.json").read_text())
    assert len(ref["vocabulary"]) == 80
    assert ref["recipe"]["backbone"]["name"] == "vit"
    r = alice(
        "modality",
        "add",
        "text",
        "--reference",
        out,
        *common,
        "--set",
        f"backbone.model={json.dumps(str(tiny_bert))}",
        "--set",
        "model.encoder_hidden=[32]",
    )
    assert r.code == 0, r.err
    r = alice("eval", out, "--seeds", "1")
    assert r.code == 0, r.err
    assert "Table 1" in r.out
    assert "Table 2" in r.out
    report = json.loads((out / "eval.json").read_text())
    assert set(report["modalities"]) == {"image", "text"}
    sizes = {(x["query"], x["gallery"]): x["gallery_size"] for x in report["retrieval"]}
    assert sizes == {("image", "text"): 14, ("text", "image"): 7}


def test_interrupted_extraction_resumes_without_redoing_finished_shards(tmp_path, monkeypatch):
    from alice.data.features import extract_features
    from alice.plugin import Backbone

    calls: list[int] = []

    class Flaky(Backbone):
        name, modality, batch_size = "flaky", "text", 4
        fail_after = 3  # batches

        @property
        def feature_dim(self):
            return 2

        def extract(self, inputs, device):
            if len(calls) == self.fail_after:
                raise KeyboardInterrupt  # the process is stopped half-way
            calls.append(len(inputs))
            return torch.tensor([[float(len(s)), 1.0] for s in inputs])

    monkeypatch.setenv("ALICE_CACHE_DIR", str(tmp_path))
    texts = [f"caption {i}" for i in range(20)]
    kw = dict(dataset_identity={"name": "coco-text"}, split="train", device=torch.device("cpu"), shard_size=8)
    with pytest.raises(KeyboardInterrupt):
        extract_features(Flaky(), texts, **kw)
    assert len(list(tmp_path.rglob("shard-*.safetensors"))) == 1  # shard 0 (8 items) finished
    assert not list(tmp_path.rglob("*.tmp"))  # the interrupted shard left nothing half-written
    calls.clear()
    Flaky.fail_after = -1
    feats = extract_features(Flaky(), texts, **kw)
    assert sum(calls) == 12  # only shards 1 and 2 were extracted again
    assert feats[:, 0].tolist() == [float(len(t)) for t in texts]


def _edit(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_missing_annotation_file(coco_copy):
    from alice_plugins.coco.datasets import CocoImage

    (coco_copy / "annotations" / "instances_train2017.json").unlink()
    with pytest.raises(AliceError, match="COCO instances file .*instances_train2017.json does not exist"):
        CocoImage(root=str(coco_copy)).split("train")


def test_malformed_annotation_file(coco_copy):
    from alice_plugins.coco.datasets import CocoImage

    (coco_copy / "annotations" / "instances_val2017.json").write_text('{"images": []')
    with pytest.raises(AliceError, match="is not valid JSON"):
        CocoImage(root=str(coco_copy)).split("test")
    (coco_copy / "annotations" / "instances_val2017.json").write_text('{"images": []}')
    with pytest.raises(AliceError, match="not in COCO format: no 'annotations', 'categories'"):
        CocoImage(root=str(coco_copy)).split("test")


def test_image_listed_but_absent_is_a_counted_skip(coco_copy, capsys):
    from alice_plugins.coco.datasets import CocoImage

    (coco_copy / "val2017" / "000000000013.png").unlink()
    split = CocoImage(root=str(coco_copy)).split("test")
    assert len(split.inputs) == 6
    assert "skipped 1 image(s) listed in instances_val2017.json but absent" in capsys.readouterr().err


def test_unknown_category_is_a_counted_skip(coco_copy, capsys):
    from alice_plugins.coco.datasets import CocoImage

    _edit(
        coco_copy / "annotations" / "instances_val2017.json",
        lambda d: d["annotations"].append(
            {"id": 99999, "image_id": 13, "category_id": 12, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0}
        ),
    )
    split = CocoImage(root=str(coco_copy)).split("test")
    assert split.labels.sum() > 0
    assert "skipped 1 annotation(s) naming an unknown category" in capsys.readouterr().err


def test_empty_caption_is_a_counted_skip(coco_copy, capsys):
    from alice_plugins.coco.datasets import CocoText

    _edit(coco_copy / "annotations" / "captions_val2017.json", lambda d: d["annotations"][0].update(caption="   "))
    split = CocoText(root=str(coco_copy)).split("test")
    assert len(split.inputs) == 13
    assert all(t.strip() for t in split.inputs)
    assert "skipped 1 empty caption(s)" in capsys.readouterr().err


def test_recipe_without_coco_folder_is_a_clear_error():
    r = alice("reference", "build", "coco-image", "--out", "unused")
    assert r.code == 2
    assert "Traceback" not in r.err
    assert "needs the COCO folder: set option root" in r.err
