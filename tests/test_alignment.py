"""Unpaired geometric alignment (stage 2's [alignment]), search centring, the modality gap, design switching."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from cli_helpers import alice, ok, refused

from alice.artifacts.loaded import ReferenceSpace
from alice.core.alignment import AlignmentTarget, LatentStatistics, alignment_loss, centred, label_projector
from alice.core.metrics import modality_gap
from alice.core.modules import state_digest
from alice.files import sha256_file


def _labelled_latents(n: int = 4000, d: int = 8, classes: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, classes, generator=g) < 0.4).float()
    W, b = torch.randn(classes, d, generator=g), torch.randn(d, generator=g)
    return b + y @ W + 0.01 * torch.randn(n, d, generator=g), y, W, b


def test_statistics_are_the_moments_and_give_back_a_linear_conditional_mean():
    z, y, W, b = _labelled_latents()
    s = LatentStatistics.of(z, y, chunk=1000)  # in chunks: the same as at once
    assert torch.allclose(s.mean, z.mean(0), atol=1e-5)
    assert torch.allclose(s.second_moment, z.T @ z / len(z), atol=1e-4)
    assert torch.allclose(s.class_mean[2], z[y[:, 2] > 0.5].mean(0), atol=1e-5)
    assert torch.allclose(s.label_second_moment, y.T @ y / len(y), atol=1e-6)
    W_fit, b_fit = s.conditional_mean_model()
    assert torch.allclose(W_fit, W, atol=0.02)
    assert torch.allclose(b_fit, b, atol=0.02)
    # a modality annotating classes 0-2 only: the model averages over the others instead of reading them
    W_part, _ = s.conditional_mean_model(torch.tensor([True, True, True, False, False]))
    assert (W_part[3:] == 0).all()
    assert torch.allclose(W_part[:3], W[:3], atol=0.15)
    back = LatentStatistics.from_tensors(s.tensors())
    assert back is not None
    assert torch.equal(back.class_mean, s.class_mean)
    assert LatentStatistics.from_tensors({}) is None  # an artifact older than the statistics
    assert s.shape_problem(8, 5) is None
    assert "class_count has shape (5,)" in s.shape_problem(8, 6)
    # search's projector: the identity at 0; at 1 the orthogonal projection onto the 5-d span of W's rows
    assert torch.allclose(label_projector(s, 0.0), torch.eye(8), atol=1e-5)
    p = label_projector(s, 1.0)
    assert torch.allclose(p @ p, p, atol=1e-4)
    assert round(float(torch.trace(p))) == 5
    assert torch.allclose(W @ p, W, atol=1e-3)


@pytest.mark.parametrize("loss", ["conditional-mean", "class-means", "moments"])
def test_each_alignment_loss_is_least_on_the_reference_and_pulls_toward_it(loss):
    z, y, _, _ = _labelled_latents()
    target = AlignmentTarget(LatentStatistics.of(z, y), torch.ones(5, dtype=torch.bool), loss, torch.device("cpu"))
    shifted = z + 0.5
    assert alignment_loss(z, y, target) < 0.1 * alignment_loss(shifted, y, target)
    moved = shifted.clone().requires_grad_(True)
    alignment_loss(moved, y, target).backward()
    assert (moved.grad.mean(0) > 0).all()  # downhill is back toward the reference


def test_centring_and_the_gap_metric():
    g = torch.Generator().manual_seed(1)
    a = F.normalize(torch.randn(300, 6, generator=g) + torch.tensor([3.0, 0, 0, 0, 0, 0]), dim=-1)
    b = F.normalize(torch.randn(300, 6, generator=g) - torch.tensor([3.0, 0, 0, 0, 0, 0]), dim=-1)
    apart = modality_gap(a, b)
    assert apart["mean_distance"] > 1.0
    assert apart["own_neighbours_a"] > 0.95
    together = modality_gap(centred(a, a.mean(0)), centred(b, b.mean(0)))
    assert together["mean_distance"] < 0.2
    assert together["own_neighbours_a"] < 0.7
    assert torch.allclose(centred(a, None), a)
    assert torch.allclose(centred(a, a.mean(0)).norm(dim=-1), torch.ones(300))


@pytest.fixture
def aligned_copy(reference_copy, recipe_dir):
    """The tiny reference with a text adapter trained with alignment and search centring (30 steps)."""
    ok(
        "modality", "add", "text", "--reference", reference_copy, "--recipe", "tiny-text", "--name", "text2",
        "--steps", "30", "--set", "alignment.weight=1.0", "--set", "alignment.centre=true",
        "--set", "alignment.project=1.0",
    )  # fmt: skip
    return reference_copy


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["conditional-mean", "class-means", "moments"])
def test_every_aligned_stage_two_leaves_the_reference_bit_identical(reference_copy, recipe_dir, loss):
    from alice.data.recipes import load_recipe
    from alice.train.jobs import add_modality

    before = sha256_file(reference_copy / "reference.safetensors")
    ref = ReferenceSpace.load(reference_copy)
    digest = state_digest(ref.classifier, ref.intervention)
    recipe = load_recipe("tiny-text", ["training.steps=20", "alignment.weight=1.0", f"alignment.loss={loss!r}"])
    add_modality(reference_copy, recipe, name="text2")
    after = ReferenceSpace.load(reference_copy)
    assert sha256_file(reference_copy / "reference.safetensors") == before == after.sha256
    assert state_digest(after.classifier, after.intervention) == digest
    assert after.load_adapter("text2").manifest.latent_alignment == {
        "loss": loss,
        "weight": 1.0,
        "toward": "the reference's latent statistics",
    }


@pytest.mark.slow
def test_centred_adapter_is_searched_as_declared_everywhere(aligned_copy):
    from alice.api import Space
    from alice.search.indexes import Index

    ref = ReferenceSpace.load(aligned_copy)
    manifest = json.loads((aligned_copy / "reference.json").read_text())
    assert manifest["statistics"]["samples"] == 3000
    assert ref.statistics is not None
    text = ref.load_adapter("text2")
    assert text.manifest.search["centre"] is True
    assert text.search_mean.shape == (ref.latent_dim,)
    assert torch.allclose(text.search_projector, label_projector(ref.statistics, 1.0))
    assert ref.load_adapter("image").search_mean is None  # the tiny recipe does not centre the reference modality
    space = Space.load(aligned_copy)
    z = space.encode("text2", ["a 3 next to a seven"])
    s = space.search_latents("text2", z)
    expected = F.normalize((z - text.search_mean) @ text.search_projector, dim=-1)
    assert torch.allclose(s, expected, atol=1e-6)
    assert not torch.allclose(s, z)
    assert torch.equal(space.search_latents("image", z), z)
    ok("index", "build", aligned_copy, "--modality", "text2")
    index = Index.open(aligned_copy / "indexes" / "text2-test.safetensors").load()
    data = text.load_data(("test",), torch.device("cpu"))
    with torch.no_grad():
        expected = text.search_latents(text.encode(data.features["test"]))
    assert torch.allclose(next(index.blocks())[1], expected, atol=1e-6)
    assert index.meta["search"]["centre"] is True
    caption = index.texts[7]  # a caption finds itself among the captions, from Python and from the CLI
    scores, rows = space.search(index, space.encode("text2", [caption]), "text2", k=1)
    assert scores[0, 0] > 0.999
    assert index.texts[int(rows[0, 0])] == caption
    out = alice("search", aligned_copy, caption, "--from", "text2", "--in", "text2", "-k", "1", "--json")
    assert out.code == 0
    assert json.loads(out.out)["results"][0]["score"] > 0.999


@pytest.mark.slow
def test_eval_reports_the_gap_in_eval_json_and_the_model_card(aligned_copy):
    ok("eval", aligned_copy, "--seeds", "1")
    report = json.loads((aligned_copy / "eval.json").read_text())
    rows = {(r["a"], r["b"], r["space"]) for r in report["gap"]}
    assert ("image", "text", "search") in rows
    assert ("image", "text2", "latent") in rows
    assert all(0 <= r["own_neighbours_a"] <= 1 and r["k"] == 10 for r in report["gap"])
    assert "Table 4: the modality gap" in (aligned_copy / "README.md").read_text()


def test_alignment_needs_statistics_older_references_keep_loading(reference_copy, recipe_dir):
    """A reference written before the statistics existed loads; stage 2 with alignment refuses it in one line."""
    from alice.artifacts.format.manifests import ReferenceManifest, read_reference_manifest
    from alice.artifacts.publish import AdapterWeights
    from alice.train.jobs import save_reference

    ref = ReferenceSpace.load(reference_copy)
    manifest: ReferenceManifest = read_reference_manifest(reference_copy)
    manifest.statistics = None
    adapter = ref.load_adapter("image")
    weights = AdapterWeights(
        adapter.encoder, adapter.decoder, adapter.feature_mean, adapter.feature_std, adapter.manifest
    )
    save_reference(reference_copy, ref.classifier, ref.intervention, manifest, [weights], overwrite=True)
    old = ReferenceSpace.load(reference_copy)
    assert old.statistics is None
    assert "statistics" not in json.loads((reference_copy / "reference.json").read_text())
    refused(
        "stores no latent statistics",
        "modality", "add", "text", "--reference", reference_copy, "--recipe", "tiny-text", "--steps", "5",
        "--set", "alignment.weight=1.0",
    )  # fmt: skip
    ok("modality", "add", "text", "--reference", reference_copy, "--recipe", "tiny-text", "--steps", "5")


def test_design_switch_leaves_out_the_other_designs_settings(recipe_dir, tmp_path):
    from alice.data.recipes import load_recipe

    for design in ("global", "affine"):
        r = load_recipe("digits-image", [f"intervention.design={design}"])
        assert r.intervention.settings == {}
        assert r.intervention.prompt_backbone is None
    # the recipe is read (one info line naming what is left out) before the existing output is refused
    out = alice("reference", "build", "tiny-image", "--set", "intervention.design=affine", "--out", tmp_path)
    assert out.code == 2
    assert len(out.errors) == 1
    assert "already exists" in out.errors[0]
    assert "intervention design 'affine' takes no hidden, condition (settings of another design" in out.err
    refused(
        "intervention.hiden is no setting of design 'nonlinear' (it takes: hidden, condition, prompt_dim",
        "reference", "build", "tiny-image", "--set", "intervention.hiden=3", "--out", tmp_path / "new",
    )  # fmt: skip


@pytest.mark.slow
def test_eval_on_a_shifted_test_distribution_leaves_eval_json_alone(reference_copy):
    """Scenes of 5 to 9 digits (a 3x3 grid) for a space trained on 1 to 4: scored, printed, nothing written."""
    eval_json = reference_copy / "eval.json"
    before = eval_json.read_bytes() if eval_json.exists() else None
    out = alice("eval", reference_copy, "--seeds", "1", "--set", "data.max_digits=9", "--set", "data.min_digits=5",
                "--json")  # fmt: skip
    assert out.code == 0, out.err
    report = json.loads(out.out)
    assert report["data_options"] == {"max_digits": 9, "min_digits": 5}
    assert report["modalities"]["image"]["classification"]["auroc"] > 0.5  # it reads them, worse than its own
    assert (eval_json.read_bytes() if eval_json.exists() else None) == before
    refused("--set here takes data.KEY=VALUE", "eval", reference_copy, "--set", "training.steps=3")
    refused("max_digits <= 9", "eval", reference_copy, "--set", "data.max_digits=12")


def test_bad_alignment_settings_are_one_line(recipe_dir, tmp_path):
    refused("alignment.project from 0 to 1", "modality", "add", "text", "--reference", tmp_path, "--recipe",
            "tiny-text", "--set", "alignment.project=2")  # fmt: skip
    refused("alignment.loss one of conditional-mean, class-means, moments", "reference", "build", "tiny-image",
            "--set", "alignment.loss='mmd'", "--out", tmp_path / "x")  # fmt: skip


def test_digit_scenes_of_up_to_nine_and_with_companions():
    from alice_plugins.digits.datasets import DigitsImage, DigitsText

    image = DigitsImage(test=40, max_digits=9, min_digits=6).split("test")
    assert len(image.inputs) == 40
    assert image.inputs[0].shape == (20, 20)
    assert (image.labels.sum(1) >= 6).all()
    captions = DigitsText(test=5, max_digits=9, min_digits=9).split("test").inputs
    assert all(sum(w in c.lower() for w in ("zero one two three four five six seven eight nine".split()
                                             + list("0123456789"))) >= 9 for c in captions)  # fmt: skip
    y = DigitsImage(test=2000, companion=0.8).split("test").labels
    both = (y[:, 3] * y[:, 8]).mean() / (y[:, 3].mean() * y[:, 8].mean())
    assert both > 2  # three and eight come together far more often than chance
    assert DigitsImage().identity() == DigitsImage(min_digits=1, companion=0.0).identity()  # cached features stay valid


@pytest.mark.slow
def test_an_index_of_another_search_transform_or_a_malformed_one_is_refused_everywhere(aligned_copy, tmp_path):
    """One check (IndexHeader.check_against) for search, verify and index list; a bad `search` is one line."""
    from alice.artifacts.integrity.verify import rehash
    from alice.artifacts.publish import update_space
    from alice.search.indexes import Index, write_index

    ok("index", "build", aligned_copy, "--modality", "text2")
    built = Index.open(aligned_copy / "indexes" / "text2-test.safetensors")
    meta = {**built.meta, "search": {}}  # as if built before the adapter centred its search latents
    plain = write_index(tmp_path / "plain.safetensors", torch.from_numpy(built.rows(list(range(built.count)))), meta)
    refused("another search transform", "search", aligned_copy, "a two", "--from", "text2", "--in", plain)
    (aligned_copy / "indexes" / "stale.safetensors").write_bytes(plain.read_bytes())
    rehash(aligned_copy)  # recorded: only its transform is wrong
    code, out, _ = alice("reference", "verify", aligned_copy)
    assert code != 0
    assert "another search transform" in out
    assert "another search transform" in ok("index", "list", aligned_copy).out
    adapter = aligned_copy / "adapters" / "text2" / "adapter.json"
    data = json.loads(adapter.read_text())
    data["search"]["project"] = "high"
    adapter.write_text(json.dumps(data, indent=2) + "\n")
    (aligned_copy / "indexes" / "stale.safetensors").unlink()
    refused("changed after the space was written", "eval", aligned_copy)  # space.json catches it first
    update_space(aligned_copy, {}, rehash=True)  # recorded as it is, as anyone with write access could
    refused("field 'search' must hold centre", "eval", aligned_copy)
    refused("field 'search' must hold centre", "reference", "verify", aligned_copy, "--rehash")


@pytest.mark.slow
def test_a_clip_encoder_from_scratch_does_not_inherit_the_old_search_transform(aligned_copy, tmp_path):
    out = tmp_path / "clip"
    ok(
        "align", "clip", aligned_copy, "--modality", "image", "--modality", "text2", "--pairs", "40",
        "--scratch", "--steps", "5", "--out", out,
    )  # fmt: skip
    manifest = json.loads((out / "adapters" / "text2" / "adapter.json").read_text())
    assert manifest["alignment"]["method"] == "clip"
    assert "search" not in manifest
    assert ReferenceSpace.load(out).load_adapter("text2").search_mean is None
