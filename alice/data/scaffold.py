"""``alice recipe init``: a commented recipe, written from what a folder or file of labelled data holds.

Every registered data set is asked how it would read the path (:meth:`DataSet.inspect`); the first
that answers is built with those options (so bad input is refused here, with its one-line error),
and its vocabulary, split sizes and a sample go into the recipe's comments. The recipe builds as
written: it is parsed as a recipe, its backbone is built and asked whether it reads the data set's
modality, and, for a modality recipe, labels the reference lacks get an alias ``""`` (dropped),
each named in a comment.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alice import console
from alice.data.labels import CASE_RULE, uncovered_labels
from alice.data.loading import make_backbone, make_dataset
from alice.data.probe import Probe, find_candidates, run_probe
from alice.data.recipes import DataSpec, ProbeSpec, TrainingSpec, _apply_override, parse_recipe
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.plugin import SPLITS, Found
from alice.plugin.manager import get_registry

#: the model and training settings a written recipe starts from (the built-in digits recipes')
LATENT_DIM, ENCODER, CLASSIFIER, INTERVENTION_HIDDEN = 64, [512, 512], [256, 256], 256


@dataclass
class Scaffold:
    """A written recipe: its TOML text, the raw table it parses to, and what was found."""

    text: str
    raw: dict[str, Any]
    dataset: str
    modality: str
    vocabulary: list[str]
    counts: dict[str, int]
    dropped: list[str]
    adapter: str = ""  # a modality recipe's adapter name: its modality, or a free one when the space has that
    probe: Probe | None = None  # the backbones measured, when several read the data and none was forced


def recipe_name(path: Path) -> str:
    """A recipe name from a file or folder name: letters, digits, '-' and '_'."""
    stem = path.stem if path.is_file() else path.resolve().name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-").lower() or "data"


def toml_value(value: Any) -> str:
    """A Python value as TOML (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def find_dataset(path: Path, modality: str | None, dataset: str | None) -> tuple[str, Found]:
    """The data set that reads ``path`` (``dataset`` forces one), for ``modality`` when given."""
    reg = get_registry()
    names = [dataset] if dataset else reg.names("dataset")
    tried, failures = [], []
    for name in names:
        try:
            cls = reg.dataset(name)  # a broken plugin's data set is one failure, not the end of the search
            found = cls.inspect(path)
        except AliceError as exc:
            failures.append(str(exc))
            continue
        if found is None:
            continue
        tried.append(name)
        if modality is not None and found.modality != modality:
            if "modality" not in inspect.signature(cls.__init__).parameters:
                continue
            found.options["modality"], found.modality = modality, modality
        return name, found
    if failures:
        raise AliceError(failures[0])
    what = f" as {modality}" if modality else ""
    if dataset:
        raise AliceError(f"data set {dataset!r} does not read {path}{what}")
    hint = f" (read as {', '.join(tried)} for another modality)" if tried else ""
    raise AliceError(
        f"no installed data set reads {path}{what}{hint}: give a folder of images with labels.csv or one subfolder "
        "per class, a CSV or JSON-lines file with text and labels columns, sound files with labels.csv, vectors "
        "(.npy, .safetensors, .parquet) with labels, or a datasets folder"
    )


def _sizes(n_train: int) -> tuple[int, int]:
    """Batch size and steps for ``n_train`` training items: about 20 passes, 300 to 3,000 steps."""
    batch = 8
    while batch * 2 <= min(256, n_train):
        batch *= 2
    return batch, max(300, min(3000, round(20 * n_train / batch / 100) * 100))


def _first_inputs(dataset: Any, n: int = 4) -> list[Any]:
    """A few training inputs: what the backbones are shown to say whether they read them."""
    try:
        inputs = dataset.split("train").inputs
    except AliceError:
        return []
    return [inputs[i] for i in range(min(n, len(inputs)))]


def _sample(inputs: list[Any]) -> str:
    if not inputs:
        return ""
    item = inputs[0]
    text = str(item) if isinstance(item, (str, Path)) else type(item).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def choose_backbone(
    data: Any,
    found: Found,
    inputs: list[Any],
    backbone: str | None,
    models: list[str] | None,
    only: list[str] | None,
    spec: ProbeSpec | None,
) -> tuple[str, dict[str, Any], Probe | None, str]:
    """The backbone of the recipe, its options, the probe that chose it (if one ran) and a comment saying how.

    ``backbone`` forces one (no probe; its options are what it offers for these inputs, e.g. ``pixels``' size).
    Otherwise every installed backbone that reads the inputs is a candidate (``only`` narrows them); two or more
    are measured by :func:`run_probe`. With none, the data set's own suggestion is taken.
    """
    if backbone:
        offered = find_candidates(data.modality, inputs, models, only=[backbone])
        return backbone, dict(offered[0].spec.options) if offered else {}, None, "given with --backbone"
    offered = find_candidates(data.modality, inputs, models, only)
    if only and not offered:
        raise AliceError(
            f"none of {', '.join(only)} reads these {data.modality} inputs here; name others with --candidates, or "
            "give one with --backbone"
        )
    if len(offered) == 1:
        c = offered[0]
        return c.spec.name, dict(c.spec.options), None, "the only installed backbone that reads these inputs"
    if not offered:
        return found.backbone, dict(found.backbone_options), None, f"the data set's suggestion ({found.backbone})"
    probe = run_probe(data, offered, spec, pick_device("auto"))
    if probe.chosen is None:
        console.warn(
            f"no backbone could be measured on this data ({'; '.join(c.label + ': ' + c.error for c in offered)}); "
            f"taking the data set's suggestion, {found.backbone}"
        )
        return found.backbone, dict(found.backbone_options), probe, f"the data set's suggestion ({found.backbone})"
    return probe.chosen.spec.name, dict(probe.chosen.spec.options), probe, ""


def scaffold(
    path: Path,
    name: str | None = None,
    modality: str | None = None,
    backbone: str | None = None,
    dataset: str | None = None,
    reference: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    models: list[str] | None = None,
    candidates: list[str] | None = None,
    probe: ProbeSpec | None = None,
) -> Scaffold:
    """A recipe for ``path`` named ``name`` (default: the file or folder's): a reference recipe, or with
    ``reference`` (``{"path", "name", "family", "vocabulary"}``, and ``"renamed"``: the adapter names the space
    has, each with the free name a new adapter of that modality takes) a modality recipe for that reference space.

    The backbone is measured (:func:`choose_backbone`): ``models`` are model folders to measure too, ``candidates``
    the backbones to compare (default: every installed one that reads the data), ``probe`` how.
    """
    if not path.exists():
        raise AliceError(f"{path} does not exist")
    title = name or recipe_name(path)
    name, found = find_dataset(path, modality, dataset)
    options = {"data": {"dataset": name, **found.options}}
    for item in overrides or []:  # --set data.KEY=VALUE: the data set is read with it, as the recipe will read it
        if item.strip().startswith("data."):
            _apply_override(options, item)
    data = make_dataset(DataSpec(name, {k: v for k, v in options["data"].items() if k != "dataset"}))
    vocab = list(data.vocabulary)
    counts = {s: len(data.split(s).inputs) for s in SPLITS}
    inputs = _first_inputs(data)
    b_name, b_options, measured, how = choose_backbone(data, found, inputs, backbone, models, candidates, probe)
    stage = "modality" if reference else "reference"
    family = reference["family"] if reference else title
    raw: dict[str, Any] = {
        "stage": stage,
        "family": family,
        "modality": data.modality,
        "description": found.note or name,
        "data": {"dataset": name, **found.options},
        "backbone": {"name": b_name, **b_options},
    }
    dropped: list[str] = []
    if reference:
        by_name = get_registry().label_mapper("by-name")
        dropped = uncovered_labels(vocab, by_name(vocab, list(reference["vocabulary"]), aliases={}), {})
        raw["labels"] = {"mapper": "by-name", "aliases": {label: "" for label in dropped}}
    batch, steps = _sizes(counts["train"])
    raw["model"] = {"encoder_hidden": ENCODER}
    if not reference:
        raw["model"] |= {"latent_dim": LATENT_DIM, "classifier_hidden": CLASSIFIER}
        raw["intervention"] = {
            "design": "nonlinear",
            "hidden": INTERVENTION_HIDDEN,
            "condition": "text",
            "num_templates": 8,
            "prompt_backbone": {"name": "minilm"},
        }
    raw["training"] = {
        "steps": steps,
        "batch_size": batch,
        "lr": TrainingSpec.lr,
        "rec_weight": 1.0,
        "seed": 0,
        "eval_every": max(100, steps // 3 // 100 * 100),
    }
    for item in overrides or []:
        _apply_override(raw, item)
    recipe = parse_recipe(raw, title, str(path))  # refuses anything a build would refuse
    built, _ = make_backbone(recipe.backbone)
    if not built.reads(data.modality):
        raise AliceError(
            f"backbone {built.name!r} reads {built.modality}, not {data.modality} (data set {name!r}); choose another "
            "with --backbone"
        )
    adapter = reference.get("renamed", {}).get(data.modality, data.modality) if reference else ""
    chosen = measured.comment() if measured is not None and measured.chosen is not None else [f"# Backbone: {how}."]
    text = _render(raw, path, title, name, data, vocab, counts, dropped, reference, _sample(inputs), adapter, chosen)
    return Scaffold(text, raw, name, data.modality, vocab, counts, dropped, adapter, measured)


def _render(
    raw: dict[str, Any],
    path: Path,
    title: str,
    name: str,
    data: Any,
    vocab: list[str],
    counts: dict[str, int],
    dropped: list[str],
    reference: dict[str, Any] | None,
    sample: str,
    adapter: str,
    chosen: list[str],
) -> str:
    """The recipe as commented TOML: what was found on top, a word on each table."""
    shown = ", ".join(vocab[:12]) + (f" and {len(vocab) - 12} more" if len(vocab) > 12 else "")
    sizes = ", ".join(f"{s} {n:,}" for s, n in counts.items())
    lines = [
        f"# {title}: a {raw['stage']} recipe written by `alice recipe init {path}`.",
        f"# Data set {name} ({raw['modality']}): {raw['description']}.",
        f"# {len(vocab)} labels ({CASE_RULE}): {shown}.",
        f"# Items: {sizes}." + (f" A sample: {sample}" if sample else ""),
    ]
    if reference:
        named = f" --name {adapter}" if adapter != raw["modality"] else ""
        lines.append(
            f"# Add it:   alice modality add {raw['modality']} --reference {reference['path']} --recipe <this file>"
            + named
        )
        if named:
            lines.append(f"# (the space already has an adapter {raw['modality']!r}; --name adds this one beside it)")
    else:
        lines.append(f"# Build it: alice reference build <this file> --out artifacts/{title}")
    lines += ["# Paths are read from the folder alice runs in.", ""]
    lines += [f"{k} = {toml_value(raw[k])}" for k in ("stage", "family", "modality", "description")]
    comments = {
        "data": "vocabulary = [...] would fix the label list; seed, val_fraction and test_fraction draw the split\n"
        "# of rows that name none",
        "backbone": "the frozen feature extractor: features are extracted once and cached",
        "labels": 'by name; [labels.aliases] maps a label to a reference label, or drops it with ""',
        "model": "the encoder (the decoder mirrors it)"
        + ("" if reference else ", the latent size, the classifier C_ref"),
        "intervention": "M_ref, conditioned on the label names (embedded once with MiniLM)",
        "training": "about 20 passes over the training items; rec_weight 1 as features are standardised",
    }
    for table in ("data", "backbone", "labels", "model", "intervention", "training"):
        if table not in raw:
            continue
        body = dict(raw[table])
        aliases = body.pop("aliases", None) if table == "labels" else None
        lines += [""] + (chosen if table == "backbone" else []) + [f"# {comments[table]}", f"[{table}]"]
        lines += [f"{toml_key(key)} = {toml_value(value)}" for key, value in body.items()]
        if table == "labels":
            matched = [c for c in vocab if c not in dropped]
            lines.append(
                f"# by name, {len(matched)} of its {len(vocab)} labels are the reference's ({reference['name']})"
            )
            lines.append("[labels.aliases]")
            for label, target in (aliases or {}).items():
                note = "  # not in the reference: dropped (or name the label it is)" if label in dropped else ""
                lines.append(f"{toml_key(label)} = {toml_value(target)}{note}")
    return "\n".join(lines) + "\n"
