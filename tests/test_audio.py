"""The audio plugin: espeak-ng speech, log-mel and wav2vec2 features, audio folders, and speech added
to a reference space without changing any file already in it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import ok, refused

from alice.errors import AliceError

CPU = torch.device("cpu")


def test_espeak_speaks_and_voices_differ():
    from alice_plugins.digits.espeak import speaker

    (a, rate), (b, _) = (speaker().say("a three next to a seven", "en+m3", rate=160, pitch=40) for _ in range(2))
    c, _ = speaker().say("a three next to a seven", "en-us+f2", rate=200, pitch=70)
    assert rate == 22050
    assert 0.5 < a.size / rate < 5
    assert np.abs(a).max() > 0.1  # not silence
    assert abs(a.size - b.size) < 0.01 * a.size  # espeak-ng jitters by a few samples per call
    assert abs(a.size - c.size) > 0.05 * a.size  # a faster, other voice
    with pytest.raises(ValueError, match="no voice 'xx-nonsense'"):
        speaker().say("three", "xx-nonsense")


def test_logmel_matches_transformers_reference_spectrogram():
    """Our torch.stft path against transformers' numpy implementation of the same HTK mel spectrogram."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    from alice_plugins.audio.backbones import LogMelBackbone

    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000) + 0.05 * rng.standard_normal(8000)).astype(np.float32)
    b = LogMelBackbone(impl="torch")
    ours = b.mel_spectrogram(torch.from_numpy(x)).numpy()
    fb = mel_filter_bank(
        num_frequency_bins=201,
        num_mel_filters=40,
        min_frequency=0.0,
        max_frequency=8000,
        sampling_rate=16000,
        norm=None,
        mel_scale="htk",
    )
    ref = spectrogram(
        x,
        window_function(400, "hann"),
        frame_length=400,
        hop_length=160,
        power=2.0,
        mel_filters=fb,
        center=True,
        pad_mode="reflect",
    )
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-5)


def test_logmel_torchaudio_and_torch_paths_agree():
    from alice_plugins.audio.backbones import LogMelBackbone, torchaudio_available

    if not torchaudio_available():
        pytest.skip("torchaudio is not installed (no release matches this torch build); the torch path is tested above")
    x = torch.randn(16000)
    a, b = LogMelBackbone(impl="torchaudio"), LogMelBackbone(impl="torch")
    torch.testing.assert_close(a.mel_spectrogram(x), b.mel_spectrogram(x), rtol=1e-3, atol=1e-4)


def test_logmel_features_from_every_input_kind(tmp_path):
    import soundfile

    from alice_plugins.audio.backbones import LogMelBackbone
    from alice_plugins.media import Waveform

    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    soundfile.write(tmp_path / "clip.wav", wave, 22050)
    b = LogMelBackbone()
    f = b.extract([Waveform(wave, 22050), (wave, 22050), str(tmp_path / "clip.wav")], CPU)
    assert f.shape == (3, b.feature_dim) == (3, 400)
    torch.testing.assert_close(f[0], f[1])
    torch.testing.assert_close(f[0], f[2], rtol=1e-3, atol=1e-3)  # the WAV file stores 16-bit samples
    with pytest.raises(AliceError, match="does not exist"):
        b.extract([str(tmp_path / "missing.wav")], CPU)
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(AliceError, match="cannot read audio file"):
        b.extract([str(tmp_path / "junk.wav")], CPU)


def test_wav2vec2_from_a_local_folder_pools_each_clip_ignoring_padding(tiny_wav2vec2):
    from alice_plugins.audio.backbones import Wav2Vec2Backbone

    b = Wav2Vec2Backbone(model=str(tiny_wav2vec2))
    assert b.feature_dim == 32
    rng = np.random.default_rng(0)
    short, long = rng.standard_normal(4000).astype(np.float32), rng.standard_normal(12000).astype(np.float32)
    alone = b.extract([(short, 16000)], CPU)
    batched = b.extract([(short, 16000), (long, 16000)], CPU)
    assert batched.shape == (2, 32)
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-3, atol=1e-3)
    with pytest.raises(AliceError, match="cannot load audio model"):
        _ = Wav2Vec2Backbone(model=str(tiny_wav2vec2 / "nope")).feature_dim


def _write_folder(root: Path, rows: list[dict], fmt: str) -> None:
    import soundfile

    rng = np.random.default_rng(0)
    for r in rows:
        soundfile.write(root / r["path"], (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    if fmt == "csv":
        lines = ["path,labels,split"] + [f"{r['path']},{';'.join(r['labels'])},{r['split']}" for r in rows]
        (root / "labels.csv").write_text("\n".join(lines) + "\n")
    else:
        (root / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_audio_folder_reads_multi_label_files(tmp_path, fmt):
    from alice.config.modality import DataSpec
    from alice.data.loading import make_dataset

    rows = [
        {
            "path": f"clip{i}.wav",
            "labels": ["dog", "bark"] if i % 2 else ["cat"],
            "split": "test" if i >= 4 else "train",
        }
        for i in range(6)
    ]
    _write_folder(tmp_path, rows, fmt)
    ds = make_dataset(DataSpec("audio-folder", {"root": str(tmp_path), "labels": f"labels.{fmt}"}))
    assert ds.vocabulary == ["bark", "cat", "dog"]
    train, test = ds.split("train"), ds.split("test")
    assert len(train.inputs) == 4
    assert len(test.inputs) == 2
    assert train.labels[1].tolist() == [1.0, 0.0, 1.0]
    assert train.labels[0].tolist() == [0.0, 1.0, 0.0]


def test_audio_folder_bad_input_is_named(tmp_path):
    from alice.config.modality import DataSpec
    from alice.data.loading import make_dataset

    def load(**options):
        return make_dataset(DataSpec("audio-folder", {"root": str(tmp_path), **options}))

    with pytest.raises(AliceError, match="labels file .* does not exist"):
        load()
    _write_folder(tmp_path, [{"path": "a.wav", "labels": ["x"], "split": "train"}], "jsonl")
    (tmp_path / "broken.jsonl").write_text('{"path": "a.wav", "labels": ["x"]}\n{"path": \n')
    with pytest.raises(AliceError, match="line 2 is not valid JSON"):
        load(labels="broken.jsonl")
    (tmp_path / "ghost.csv").write_text("path,labels\nghost.wav,x\n")
    with pytest.raises(AliceError, match="ghost.wav does not exist"):
        load(labels="ghost.csv")
    (tmp_path / "noheader.csv").write_text("a.wav,x\n")
    with pytest.raises(AliceError, match="columns path and labels"):
        load(labels="noheader.csv")
    with pytest.raises(AliceError, match="label 'x' .* not in the vocabulary"):
        load(labels="labels.jsonl", vocabulary=["y"])
    (tmp_path / "commas.csv").write_text("path,labels\na.wav,x,y\n")
    with pytest.raises(AliceError, match="line 2 has more fields than the header"):
        load(labels="commas.csv")
    (tmp_path / "excel.csv").write_bytes(
        "\ufeffpath, labels\na.wav,x\n".encode("utf-8")
    )  # BOM and a space, as spreadsheets write
    assert load(labels="excel.csv").vocabulary == ["x"]
    with pytest.raises(AliceError, match="root .* is not a folder"):
        make_dataset(DataSpec("audio-folder", {"root": str(tmp_path / "nowhere")}))


def test_digits_speech_pairs_with_the_image_test_scenes_and_holds_out_voices():
    from alice.config.modality import DataSpec
    from alice.data.loading import make_dataset
    from alice_plugins.digits.speech import TEST_VARIANTS

    speech = make_dataset(DataSpec("digits-speech", {"train": 50, "val": 10, "test": 20}))
    image = make_dataset(DataSpec("digits-image", {"train": 50, "val": 10, "test": 20}))
    s, i = speech.split("test"), image.split("test")
    assert s.pair_ids == i.pair_ids
    assert np.array_equal(s.labels, i.labels)
    assert not np.array_equal(speech.split("train").labels, image.split("train").labels)  # unpaired training scenes
    _, voices, _, _ = speech.utterances("test")
    assert all(any(v.endswith(t) for t in TEST_VARIANTS) for v in voices)
    _, train_voices, _, _ = speech.utterances("train")
    assert not any(any(v.endswith(t) for t in TEST_VARIANTS) for v in train_voices)
    samples, rate = s.inputs[0]
    assert rate == 22050
    assert samples.size > 5000


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_adding_speech_trains_only_its_adapter_and_changes_no_earlier_file(reference_copy):
    before = _hashes(reference_copy)
    record = json.loads((reference_copy / "space.json").read_text())
    ok("modality", "add", "speech", "--reference", reference_copy)
    after = _hashes(reference_copy)
    del before["space.json"]  # the record of the space's files names the new adapter too
    assert {k: after[k] for k in before} == before
    now = json.loads((reference_copy / "space.json").read_text())
    assert now["reference_digest"] == record["reference_digest"]
    assert now["digest"] != record["digest"]
    assert {k for k in after if k not in before} >= {
        "adapters/speech/adapter.safetensors",
        "adapters/speech/adapter.json",
    }
    report = json.loads(ok("eval", reference_copy, "--json", "--seeds", "1").out)
    assert report["modalities"]["speech"]["classification"]["auroc"] > 0.7
    rows = {(x["query"], x["gallery"], x["method"]): x for x in report["retrieval"]}
    for gallery in ("image", "text"):
        alice, blind = rows[("speech", gallery, "ALICE (0 pairs)")], rows[("speech", gallery, "no training")]
        assert alice["label_exact"] > 2 * blind["label_exact"] + 0.02, (
            gallery,
            alice["label_exact"],
            blind["label_exact"],
        )
    assert ("image", "speech", "ALICE (0 pairs)") in rows
    assert {("speech", "text"), ("image", "speech")} <= {(x["query"], x["gallery"]) for x in report["counterfactual"]}
    # an audio file as a search query: found as the speech adapter's by its suffix
    import soundfile

    from alice.artifacts.format.manifests import read_adapter_manifest
    from alice.data.loading import make_dataset

    speech = make_dataset(read_adapter_manifest(reference_copy / "adapters" / "speech").modality_spec().data)
    samples, rate = speech.split("test").inputs[0]
    soundfile.write(str(reference_copy.parent / "clip.wav"), samples, rate)
    ok("index", "build", reference_copy, "--modality", "text")
    found = json.loads(ok("search", reference_copy, reference_copy.parent / "clip.wav", "--in", "text", "--json").out)
    assert found["from"] == "speech"
    assert len(found["results"]) == 10
    scores = [x["score"] for x in found["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(x["text"] for x in found["results"])
    # (how well speech finds text is Table 2's business, asserted above; one clip is too few to judge)


def test_bad_audio_folder_is_one_line_error_from_the_cli(reference_copy, tmp_path):
    (tmp_path / "labels.csv").write_text("path,labels\nghost.wav,three\n")
    recipe = tmp_path / "my-audio.toml"
    recipe.write_text(
        'stage = "modality"\nfamily = "tiny"\nmodality = "audio"\n\n[data]\ndataset = "audio-folder"\nroot = '
        f'"{tmp_path}"\n\n'
        '[backbone]\nname = "logmel"\n'
    )
    before = _hashes(reference_copy)
    refused("ghost.wav does not exist", "modality", "add", "audio", "--reference", reference_copy, "--recipe", recipe)
    assert _hashes(reference_copy) == before
