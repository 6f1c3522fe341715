"""Your own files against the built-in path: the digits scenes written to disk and read back through the file data sets.

    python benchmarks/parity.py --work /tmp/parity            # the demo's sizes (tens of minutes on 2 cores)
    python benchmarks/parity.py --work /tmp/parity --small    # a few thousand scenes, a few hundred steps
    python benchmarks/parity.py --work my-data --write-only   # only the files (docs/your-data.md starts here)

Writes the built-in ``digits`` scenes as a user would have them: the images as PNG files with a
``labels.csv``, the captions as JSON lines, the speech as WAV files with a ``labels.csv``, and the
captions' MiniLM vectors as a Parquet file. Then builds two spaces with the recipes of
``make demo`` (``registry/digits-image.toml``, ``digits-text.toml``, ``digits-speech.toml``, same
sizes, same seed): one from the built-in data sets, one from ``image-folder``, ``text-file``,
``audio-folder`` and ``embeddings`` (the vectors added as a fourth adapter, ``text-vectors``).
Prints Table 1 (AUROC) and Table 2 (label exact) of both side by side, with the differences, and
writes ``parity.json``. The target: within 0.01 AUROC and 0.03 label exact.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

#: the demo's sizes and the small run's; the small run also trains the tiny test recipes' shorter schedule
FULL = {"image": (50000, 1000, 1000), "text": (8000, 1000, 1000), "speech": (8000, 1000, 1000), "overrides": []}
SMALL = {
    "image": (3000, 300, 300),
    "text": (1500, 300, 300),
    "speech": (1000, 200, 200),
    "overrides": ["training.steps=400", "training.batch_size=128", "training.eval_every=0"],
}
AUROC_TOLERANCE, EXACT_TOLERANCE = 0.01, 0.03
VOCABULARY = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _labels(row: np.ndarray, vocabulary: list[str]) -> str:
    return ";".join(vocabulary[i] for i in np.flatnonzero(row))


def write_images(dataset: Any, folder: Path, splits: bool = True) -> Path:
    """A data set's images under ``folder`` and a ``labels.csv`` (path, labels, split, pair_id): arrays (the scenes)
    as 8-bit grey PNG files, image files (the COCO sample's photos) copied as they are. ``splits=False`` leaves the
    split column empty, so that the image-folder draws its own."""
    import shutil

    from PIL import Image

    lines = ["path,labels,split,pair_id"]
    for split in ("train", "val", "test"):
        s = dataset.split(split)
        for i, (image, y) in enumerate(zip(s.inputs, s.labels)):
            if not y.any():  # a photo showing none of the classes: a labels file lists only labelled items
                continue
            suffix = Path(image).suffix.lower() if isinstance(image, (str, Path)) else ".png"
            name = f"{split}/{i:05d}{suffix}" if splits else f"{split}-{i:05d}{suffix}"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(image, (str, Path)):
                shutil.copyfile(image, folder / name)
            else:
                Image.fromarray(np.round(np.asarray(image) * 255).astype(np.uint8), mode="L").save(folder / name)
            pair = s.pair_ids[i] if s.pair_ids and splits else ""
            lines.append(f"{name},{_labels(y, dataset.vocabulary)},{split if splits else ''},{pair}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def caption_records(dataset: Any) -> list[dict[str, Any]]:
    out = []
    for split in ("train", "val", "test"):
        s = dataset.split(split)
        for i, (text, y) in enumerate(zip(s.inputs, s.labels)):
            record = {"text": text, "labels": _labels(y, dataset.vocabulary).split(";"), "split": split}
            if s.pair_ids:
                record["pair_id"] = s.pair_ids[i]
            out.append(record)
    return out


def write_captions(records: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_vectors(records: list[dict[str, Any]], path: Path) -> Path:
    """The captions' MiniLM features (the ``minilm`` backbone's own, float32) in a Parquet file, with their labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from alice.data.loading import make_backbone
    from alice.data.recipes import BackboneSpec

    backbone, _ = make_backbone(BackboneSpec("minilm"))
    texts = [r["text"] for r in records]
    step = backbone.batch_size
    vectors = torch.cat(
        [backbone.extract(texts[i : i + step], torch.device("cpu")) for i in range(0, len(texts), step)]
    )
    table = pa.table(
        {
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.numpy().reshape(-1)), vectors.shape[1]),
            "labels": [r["labels"] for r in records],
            "split": [r["split"] for r in records],
            "pair_id": [r.get("pair_id") for r in records],
        }
    )
    pq.write_table(table, path)
    return path


def write_speech(dataset: Any, folder: Path) -> Path:
    """The spoken scenes as 16-bit WAV files and a ``labels.csv``."""
    import soundfile

    lines = ["path,labels,split,pair_id"]
    for split in ("train", "val", "test"):
        s = dataset.split(split)
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i, y in enumerate(s.labels):
            samples, rate = s.inputs[i]
            name = f"{split}/{i:05d}.wav"
            soundfile.write(folder / name, samples, rate, subtype="PCM_16")
            lines.append(f"{name},{_labels(y, dataset.vocabulary)},{split},{s.pair_ids[i] if s.pair_ids else ''}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def write_all(work: Path, sizes: dict[str, Any], seed: int = 0, speech: bool = True) -> dict[str, Path]:
    """Every file a user would have, from the built-in data sets at ``sizes`` (kept when written before)."""
    from alice.data.loading import make_dataset
    from alice.data.recipes import DataSpec

    done = work / "complete.json"
    stamp = {"sizes": {k: sizes[k] for k in ("image", "text", "speech")}, "seed": seed, "speech": speech}
    if done.is_file() and json.loads(done.read_text())["stamp"] == json.loads(json.dumps(stamp)):
        return {k: Path(v) for k, v in json.loads(done.read_text())["files"].items()}

    def built_in(name: str, modality: str):
        train, val, test = sizes[modality]
        return make_dataset(DataSpec(name, {"seed": seed, "train": train, "val": val, "test": test}))

    records = caption_records(built_in("digits-text", "text"))
    out = {
        "images": write_images(built_in("digits-image", "image"), work / "images"),
        "captions": write_captions(records, work / "captions.jsonl"),
        "vectors": write_vectors(records, work / "captions-minilm.parquet"),
    }
    if speech:
        out["speech"] = write_speech(built_in("digits-speech", "speech"), work / "speech")
    done.write_text(json.dumps({"stamp": stamp, "files": {k: str(v) for k, v in out.items()}}) + "\n")
    return out


def recipes(files: dict[str, Path], sizes: dict[str, Any], seed: int = 0) -> dict[str, tuple[Any, Any]]:
    """adapter -> (built-in recipe, file recipe): the demo's recipes; the file ones read ``files`` instead."""
    from alice.data.recipes import _apply_override, _read_toml, find_recipe, parse_recipe

    def raw(name: str, kind: str) -> dict[str, Any]:
        table = _read_toml(find_recipe(name))
        train, val, test = sizes[kind]
        for item in [f"data.train={train}", f"data.val={val}", f"data.test={test}", f"data.seed={seed}"]:
            _apply_override(table, item)
        for item in sizes["overrides"]:
            _apply_override(table, item)
        return table

    def pair(name: str, kind: str, data: dict[str, Any], **changes: Any) -> tuple[Any, Any]:
        built_in = raw(name, kind)
        mine = {**built_in, "data": {**data, "seed": seed}, **changes}
        return parse_recipe(built_in, name), parse_recipe(mine, f"{name}-files")

    out = {
        # the built-in class order (zero, one, ...), not the sorted labels: the same C_ref outputs in the same order
        "image": pair(
            "digits-image", "image", {"dataset": "image-folder", "root": str(files["images"]), "vocabulary": VOCABULARY}
        ),
        "text": pair("digits-text", "text", {"dataset": "text-file", "path": str(files["captions"])}),
    }
    vectors = {"dataset": "embeddings", "path": str(files["vectors"]), "modality": "text"}
    out["text-vectors"] = (None, pair("digits-text", "text", vectors, backbone={"name": "identity"})[1])
    if "speech" in files:
        speech = {"dataset": "audio-folder", "root": str(files["speech"])}
        out["speech"] = pair("digits-speech", "speech", speech, modality="audio")
    return out


def build(path: Path, pairs: dict[str, tuple[Any, Any]], which: int, seeds: int) -> dict[str, Any]:
    """One space from the built-in (0) or file (1) recipes, evaluated; returns the eval report."""
    from alice.artifacts.store import ReferenceSpace
    from alice.evaluation.run import evaluate
    from alice.evaluation.specs import EvalSpec
    from alice.train.jobs import add_modality, build_reference

    build_reference(pairs["image"][which], path, overwrite=True)
    for name, recipes_ in pairs.items():
        if name != "image" and recipes_[which] is not None:
            add_modality(path, recipes_[which], name=name, overwrite=True)
    return evaluate(ReferenceSpace.load(path), EvalSpec(seeds=seeds))


def compare(builtin: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """Table 1's AUROC and Table 2's label exact of both spaces, row by row, with the largest differences."""
    auroc = []
    for name, row in files["modalities"].items():
        twin = "text" if name == "text-vectors" else name
        a = builtin["modalities"].get(twin, {}).get("classification", {}).get("auroc")
        auroc.append((name, a, row["classification"]["auroc"]))
    index = {(r["query"], r["gallery"], r["method"]): r["label_exact"] for r in builtin["retrieval"]}
    exact = []
    for r in files["retrieval"]:
        q, g = (("text" if x == "text-vectors" else x) for x in (r["query"], r["gallery"]))
        vectors = "text-vectors" in (r["query"], r["gallery"])
        if q == g or (vectors and r["method"] != "ALICE (0 pairs)"):
            # the no-training rows use a random encoder seeded by the adapter's place in the space: text-vectors'
            # is another draw than text's, so only its ALICE rows are the text adapter's twins
            continue
        exact.append((f"{r['query']} -> {r['gallery']}", r["method"], index.get((q, g, r["method"])), r["label_exact"]))
    worst_auroc = max(abs(b - a) for _, a, b in auroc if a is not None)
    worst_exact = max(abs(b - a) for *_, a, b in exact if a is not None)
    return {
        "auroc": auroc,
        "label_exact": exact,
        "worst_auroc": worst_auroc,
        "worst_label_exact": worst_exact,
        "within_target": worst_auroc <= AUROC_TOLERANCE and worst_exact <= EXACT_TOLERANCE,
    }


def show(result: dict[str, Any]) -> None:
    print("\nTable 1: AUROC (test split)")
    print(f"{'modality':<14} {'built-in':>9} {'files':>9} {'diff':>8}")
    for name, a, b in result["auroc"]:
        print(f"{name:<14} {a:>9.3f} {b:>9.3f} {b - a:>+8.3f}")
    print("\nTable 2: label exact (test split)")
    print(f"{'query -> gallery':<30} {'method':<16} {'built-in':>9} {'files':>9} {'diff':>8}")
    for pair, method, a, b in result["label_exact"]:
        a_text, d_text = ("-", "-") if a is None else (f"{a:.3f}", f"{b - a:+.3f}")
        print(f"{pair:<30} {method:<16} {a_text:>9} {b:>9.3f} {d_text:>8}")
    print(
        f"\nlargest difference: AUROC {result['worst_auroc']:.3f} (target {AUROC_TOLERANCE}), label exact "
        f"{result['worst_label_exact']:.3f} (target {EXACT_TOLERANCE}): "
        + ("within target" if result["within_target"] else "OUTSIDE target")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the files, the cache and both spaces")
    parser.add_argument("--small", action="store_true", help="a few thousand scenes and 400 steps instead of the demo")
    parser.add_argument("--no-speech", action="store_true", help="leave speech out (espeak-ng and log-mel take long)")
    parser.add_argument("--seeds", type=int, default=5, help="intervention draws of alice eval (the demo's 5)")
    parser.add_argument("--write-only", action="store_true", help="write the files into WORK and stop")
    parser.add_argument("--fresh", action="store_true", help="build both spaces again even if an earlier run did")
    args = parser.parse_args()
    sizes = SMALL if args.small else FULL
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ALICE_CACHE_DIR", str(args.work / "cache"))
    start = time.perf_counter()
    files = write_all(args.work if args.write_only else args.work / "data", sizes, speech=not args.no_speech)
    print(
        f"files ready in {time.perf_counter() - start:.0f} s: {', '.join(str(p) for p in files.values())}", flush=True
    )
    if args.write_only:
        return
    pairs = recipes(files, sizes)
    reports = {}
    for which, label in ((0, "builtin"), (1, "files")):
        done = args.work / f"{label}.eval.json"
        if done.is_file() and not args.fresh:  # a run stopped after this half: keep it
            reports[label] = json.loads(done.read_text())
            print(f"{label}: evaluation of an earlier run read from {done}", flush=True)
            continue
        t = time.perf_counter()
        reports[label] = build(args.work / label, pairs, which, args.seeds)
        done.write_text(json.dumps(reports[label], indent=2) + "\n")
        print(f"{label}: built, added and evaluated in {time.perf_counter() - t:.0f} s", flush=True)
    result = compare(reports["builtin"], reports["files"])
    show(result)
    (args.work / "parity.json").write_text(json.dumps({"result": result, "reports": reports}, indent=2) + "\n")


if __name__ == "__main__":
    main()
