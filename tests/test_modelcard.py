"""Model cards: a README.md in every artifact folder, written with it, outside the hashed weights."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import ok

from alice.artifacts.format.manifests import AdapterManifest, BackboneRecord, DataRecord, LabelRecord, ReferenceManifest
from alice.artifacts.integrity.verify import verify_reference
from alice.artifacts.loaded import ReferenceSpace
from alice.artifacts.modelcard import adapter_card, reference_card
from alice.errors import AliceError


def parse_front_matter(text: str) -> dict:
    """The card's metadata, as the Hugging Face Hub's own reader (``huggingface_hub.ModelCard``) reads it."""
    from huggingface_hub import ModelCard

    assert text.startswith("---\n"), "no front matter at the top of the card"
    return ModelCard(text).data.to_dict()


def _eval_values(text: str) -> set[str]:
    return set(re.findall(r"\d+\.\d{3}", text))


def test_every_folder_gets_a_card_with_front_matter_and_the_vocabulary(tiny_reference):
    ref = ReferenceSpace.load(tiny_reference)
    card = (tiny_reference / "README.md").read_text()
    meta = parse_front_matter(card)
    assert meta["library_name"] == "alice"
    assert {"alice", "image"} <= set(meta["tags"])
    assert meta["datasets"] == ["digits-image"]
    assert "roc_auc" in meta["metrics"]
    for section in (
        "## Model description",
        "## Label vocabulary",
        "## Data",
        "## Backbones",
        "## Training settings",
        "## Evaluation",
        "## Intended use",
        "## Limits",
    ):
        assert section in card, section
    for i, label in enumerate(ref.vocabulary):
        assert f"| {i} | {label} |" in card
    assert ref.sha256 in card
    assert "alice eval" in card  # no test numbers yet, and it says how to get them
    for name in ("image", "text"):
        adapter = ref.load_adapter(name)
        text = (tiny_reference / "adapters" / name / "README.md").read_text()
        meta = parse_front_matter(text)
        assert meta["library_name"] == "alice"
        assert name in meta["tags"]
        assert meta["datasets"] == [adapter.manifest.data.dataset]
        assert adapter.sha256 in text
        assert ref.sha256 in text
        assert all(f"| {label} |" in text for label in ref.vocabulary)
        assert adapter.manifest.backbone.name in text
    assert all(f.ok for f in verify_reference(tiny_reference))


@pytest.mark.slow
def test_eval_writes_its_tables_into_the_reference_card_and_verify_export_import_pass(reference_copy, tmp_path):
    from alice.artifacts.sharing import export_reference, import_reference

    adapter_cards = {n: (reference_copy / "adapters" / n / "README.md").read_bytes() for n in ("image", "text")}
    r = ok("eval", reference_copy, "--seeds", "1", "--json")
    assert json.loads(r.out)["modalities"]  # --json output stays pure JSON
    report = json.loads((reference_copy / "eval.json").read_text())
    card = (reference_copy / "README.md").read_text()
    parse_front_matter(card)
    assert "Table 1" in card
    assert "Table 2" in card
    for name, row in report["modalities"].items():
        c, i = row["classification"], row["interventions_cycle"]
        line = next(text for text in card.splitlines() if text.startswith(f"| {name} | {row['samples']} |"))
        assert {
            f"{c['auroc']:.3f}",
            f"{c['balanced_accuracy']:.3f}",
            f"{i['changed']:.3f}",
            f"{i['unchanged']:.3f}",
        } <= _eval_values(line)
    for row in report["retrieval"]:
        start = f"| {row['query']} → {row['gallery']} | {row['method']} | {row['pairs']} | {row['gallery_size']} | "
        line = next(text for text in card.splitlines() if text.startswith(start))
        assert f"{row['label_exact']:.3f}" in _eval_values(line)
    assert "recall" in parse_front_matter(card)["metrics"]
    # eval rewrites only the reference card; the adapters' cards stay as written
    assert {n: (reference_copy / "adapters" / n / "README.md").read_bytes() for n in adapter_cards} == adapter_cards
    assert all(f.ok for f in verify_reference(reference_copy)), [
        f for f in verify_reference(reference_copy) if not f.ok
    ]
    ok("reference", "verify", reference_copy)
    archive, digest = export_reference(reference_copy, tmp_path / "ref.alice.tar.gz")
    imported, imported_digest = import_reference(archive, tmp_path / "into")
    assert imported_digest == digest  # the space that left is the space that arrived
    assert (imported / "README.md").read_text() == card
    assert (imported / "adapters" / "text" / "README.md").read_bytes() == adapter_cards["text"]
    ReferenceSpace.load(imported).load_adapter("text")


def test_adding_an_adapter_writes_its_card_and_changes_no_earlier_file(reference_copy):
    import dataclasses

    from alice.artifacts import modelcard
    from alice.artifacts.publish import AdapterWeights, update_space

    before = {p: p.read_bytes() for p in reference_copy.rglob("*") if p.is_file() and p.name != "space.json"}
    ref = ReferenceSpace.load(reference_copy)
    text = ref.load_adapter("text")
    weights = AdapterWeights(
        text.encoder,
        text.decoder,
        text.feature_mean,
        text.feature_std,
        dataclasses.replace(text.manifest, name="text2"),
    )
    files = weights.files(ref.sha256, ref.reference_digest)
    files.update(modelcard.cards(files, reference=ref.manifest))
    update_space(ref.path, {f"adapters/text2/{rel}": v for rel, v in files.items()})
    assert {p: p.read_bytes() for p in before} == before
    card = (reference_copy / "adapters" / "text2" / "README.md").read_text()
    assert card.startswith("---\n")
    assert "# text2: an ALICE adapter for text" in card
    assert all(f.ok for f in verify_reference(reference_copy))


def _again(ref: ReferenceSpace):
    from alice.artifacts.publish import AdapterWeights

    a = ref.load_adapter("image")
    return [AdapterWeights(a.encoder, a.decoder, a.feature_mean, a.feature_std, a.manifest)]


def test_a_crash_while_writing_the_card_leaves_no_half_artifact(reference_copy, monkeypatch):
    from alice.train.jobs import save_reference

    before = (reference_copy / "reference.safetensors").read_bytes()
    ref = ReferenceSpace.load(reference_copy)
    real = Path.write_bytes

    def crash_on_card(self, data):
        if self.name == "README.md":
            raise OSError("disk full")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", crash_on_card)
    with pytest.raises(OSError, match="disk full"):
        save_reference(reference_copy, ref.classifier, ref.intervention, ref.manifest, _again(ref), overwrite=True)
    monkeypatch.undo()
    assert (reference_copy / "reference.safetensors").read_bytes() == before
    ReferenceSpace.load(reference_copy).load_adapter("text")
    assert [p for p in reference_copy.parent.iterdir() if p.name.startswith(".")] == []


def test_a_manifest_the_card_cannot_describe_never_stops_the_artifact(reference_copy, monkeypatch, capsys):
    from alice.artifacts import modelcard
    from alice.train.jobs import save_reference

    def broken(*a, **k):
        raise KeyError("something")

    monkeypatch.setattr(modelcard, "reference_card", broken)
    ref = ReferenceSpace.load(reference_copy)
    out = reference_copy.parent / "rewritten"
    save_reference(out, ref.classifier, ref.intervention, ref.manifest, _again(ref))
    assert "no model card for the reference" in capsys.readouterr().err
    assert not (out / "README.md").exists()
    assert (out / "adapters" / "image" / "README.md").exists()
    assert all(f.ok for f in verify_reference(out))


def _reference(vocabulary: list[str], **fields) -> ReferenceManifest:
    return ReferenceManifest("r", vocabulary, 4, [], 0.1, "global", {}, **fields)


def test_cards_from_sparse_manifests_and_awkward_labels():
    vocab = ["cat|dog", "yes", "a: b", "#1"]
    card = reference_card(_reference(vocab), {})
    meta = parse_front_matter(card)
    assert meta["library_name"] == "alice"
    assert "| 0 | cat\\|dog |" in card
    assert "| 2 | a: b |" in card
    adapter = AdapterManifest(
        "x",
        "sonar",
        DataRecord("pings", {"rate": "1|2"}),
        BackboneRecord("echo", {}, {}, 3),
        LabelRecord(mapping={"Yes": "yes", "n/a": None}, annotated=["yes"]),
        [8],
        [],
    )
    card = adapter_card(adapter, _reference(vocab))
    meta = parse_front_matter(card)
    assert meta["tags"] == ["alice", "multimodal", "adapter", "sonar", "backbone-echo"]
    assert "n/a" in card
    assert "- Adapters x annotate only part of the vocabulary" in card
    card = reference_card(_reference(vocab), {"x": adapter})
    assert '| x | sonar | `pings` | `{"rate": "1\\|2"}` |' in card  # a '|' in a value does not split its cell


def test_a_card_round_trips_through_huggingface_hub(tiny_reference, tmp_path):
    """What the Hub's reader loads from a card is the metadata it was written with; saving it again changes nothing."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(tiny_reference / "README.md")
    assert card.data.to_dict() == {
        "datasets": ["digits-image"],
        "library_name": "alice",
        "metrics": ["roc_auc", "balanced_accuracy"],
        "tags": [
            "alice",
            "multimodal",
            "multi-label-classification",
            "interventions",
            "reference-space",
            "image",
        ],
    }
    card.save(tmp_path / "again.md")
    assert (tmp_path / "again.md").read_text() == (tiny_reference / "README.md").read_text()
    licensed = ModelCard(reference_card(_reference(["a", "b"], extra={"license": "apache-2.0"}), {}))
    assert licensed.data.license == "apache-2.0"
    assert licensed.text.lstrip().startswith("# r: an ALICE reference space")


def test_a_stale_eval_json_is_not_shown_as_this_references():
    from alice.artifacts.format.manifests import WeightsRecord

    manifest = _reference(["a", "b"], weights=WeightsRecord("reference.safetensors", "1" * 64))
    evaluation = {
        "reference": {"sha256": "2" * 64},
        "modalities": {"image": {"samples": 5, "classification": {"auroc": 0.123456}}},
        "retrieval": [],
    }
    from alice.evaluation.tables import evaluation_tables

    card = reference_card(
        manifest, {}, evaluation_tables(evaluation), evaluated_sha256=evaluation["reference"]["sha256"]
    )
    assert "0.123" not in card
    assert "computed for another reference" in card


def test_verify_still_flags_other_files(reference_copy):
    (reference_copy / "adapters" / "text" / "notes.txt").write_text("hi")
    bad = [f for f in verify_reference(reference_copy) if not f.ok]
    assert [f.item for f in bad] == ["adapters/text/notes.txt"]
    with pytest.raises(AliceError):
        from alice.artifacts.sharing import export_reference

        export_reference(reference_copy, reference_copy.parent / "x.tar.gz")
