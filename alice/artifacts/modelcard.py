"""Model cards: a ``README.md`` in every artifact folder, written from its manifests.

The layout is the one the Hugging Face Hub reads: YAML front matter
(``library_name``, ``tags``, ``datasets``, ``metrics``, ``license`` when a
manifest records one) and then Markdown sections: model description, label
vocabulary, data, backbones, training settings, evaluation, how to use,
intended use, limits.

Cards are written with the artifact, inside the same staging folder before
its rename (see :func:`alice.artifacts.store.write_space`), so a crash never
leaves a half card; ``alice eval`` rewrites the reference card with its
test-split tables, in one step with ``eval.json``. A card is documentation:
``space.json`` records its sha256 (``alice reference verify`` checks it), but
outside the space's digest, so an evaluation leaves a pinned digest valid.
Everything here is plain string formatting over JSON; nothing imports torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alice import console
from alice.artifacts.layout import ADAPTER_MANIFEST, ADAPTERS_FOLDER, CARD, REFERENCE_MANIFEST
from alice.errors import AliceError
from alice.files import read_json
from alice.tables import Table, cell

# --------------------------------------------------------------------------- small helpers


def _get(d: Any, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _threshold(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def _cell(v: Any) -> str:
    text = (
        v
        if isinstance(v, str)
        else cell(v)
        if isinstance(v, (int, float)) or v is None
        else json.dumps(v, sort_keys=True)
    )
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(t: Table) -> list[str]:
    """A table as Markdown lines: its title in bold, its note in brackets, then the table."""
    return [f"**{t.title}**" + (f" ({t.note})" if t.note else ""), "", _table(t.columns, t.rows), ""]


def _code(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return f"`{text.replace('`', '')}`"


_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+\-/]*$")


def _yaml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    text = str(v)
    # plain when unambiguous; otherwise a JSON string, which is a valid YAML double-quoted scalar
    if (
        _PLAIN.match(text)
        and text.lower() not in ("true", "false", "yes", "no", "on", "off", "null", "none")
        and not re.match(r"^[0-9.+\-]", text)
    ):
        return text
    return json.dumps(text)


def front_matter(meta: dict[str, Any]) -> str:
    """YAML front matter from a flat dict of scalars and lists of scalars (empty values left out)."""
    lines = ["---"]
    for key, value in meta.items():
        if value is None or value == [] or value == "":
            continue
        if isinstance(value, (list, tuple)):
            lines.append(f"{key}:")
            lines += [f"- {_yaml_scalar(v)}" for v in value]
        else:
            lines.append(f"{key}: {_yaml_scalar(value)}")
    lines.append("---")
    return "\n".join(lines)


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if x is not None and x != "" and x not in out:
            out.append(x)
    return out


def _mlp(sizes: list[Any]) -> str:
    return " → ".join(str(s) for s in sizes)


def _license(*manifests: dict[str, Any]) -> str | None:
    for m in manifests:
        lic = _get(m, "license") or _get(m, "recipe", "license")
        if isinstance(lic, str) and lic.strip():
            return lic.strip()
    return None


# --------------------------------------------------------------------------- sections shared by both cards


def _backbone_rows(adapters: dict[str, dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for name, a in adapters.items():
        b = _get(a, "backbone", default={}) or {}
        rows.append(
            [
                name,
                _get(a, "modality", default="?"),
                _code(b.get("name", "?")),
                _code(b.get("options", {})),
                b.get("feature_dim"),
                _code(b.get("identity", {})),
            ]
        )
    return rows


def _data_rows(adapters: dict[str, dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for name, a in adapters.items():
        samples = _get(a, "samples", default={}) or {}
        annotated = _get(a, "labels", "annotated", default=[]) or []
        rows.append(
            [
                name,
                _code(_get(a, "data", "dataset", default="?")),
                _code(_get(a, "data", "options", default={})),
                ", ".join(f"{k} {v}" for k, v in samples.items()) or "–",
                len(annotated),
            ]
        )
    return rows


def _settings_table(settings: dict[str, Any]) -> str:
    return _table(
        ["setting", "value"],
        [
            [k, _code(v) if isinstance(v, (dict, list)) else json.dumps(v) if isinstance(v, (bool, int, float)) else v]
            for k, v in settings.items()
        ],
    )


def _training_section(training: dict[str, Any], heading: str) -> list[str]:
    out = [heading, ""]
    settings = _get(training, "settings", default={}) or {}
    if settings:
        out += [_settings_table(settings), ""]
    facts = []
    if _get(training, "device"):
        facts.append(f"device {_code(training['device'])}")
    if _get(training, "seconds") is not None:
        facts.append(f"{cell(training['seconds'], 0)} s of training")
    if _get(training, "steps_per_second") is not None:
        facts.append(f"{cell(training['steps_per_second'], 1)} steps/s")
    if facts:
        out += ["Trained on " + ", ".join(facts) + ".", ""]
    final = _get(training, "final", default={}) or {}
    if final:
        out += ["Final losses (train, and val where named):", "", _table(list(final), [list(final.values())]), ""]
    out += curve_lines(training)
    if not settings and not facts and not final:
        out += ["Not recorded in the manifest.", ""]
    return out


def curve_lines(training: dict[str, Any]) -> list[str]:
    """The training curves' picture, where the manifest's ``training.history`` names one (``history.png``)."""
    curve = _get(training, "history", "curve")
    if not isinstance(curve, str) or not curve:
        return []
    return [f"![Training curves: loss terms and the validation figure against steps]({curve})", ""]


def _val_metrics(m: dict[str, Any]) -> dict[str, Any]:
    return _get(m, "metrics", "val", default={}) or {}


# --------------------------------------------------------------------------- the reference card


def _evaluation_section(
    manifest: dict[str, Any], adapters: dict[str, dict[str, Any]], tables: Sequence[Table], evaluated_sha256: str | None
) -> list[str]:
    out = ["## Evaluation", ""]
    sha = _get(manifest, "weights", "sha256")
    if evaluated_sha256 not in (None, sha):
        out += [
            f"`eval.json` was computed for another reference (sha256 {str(evaluated_sha256)[:12]}…); "
            "run `alice eval` again to report this one.",
            "",
        ]
        tables = ()
    if tables:
        out += ["Test splits, from `eval.json` (written by `alice eval`).", ""]
        for t in tables:
            out += markdown_table(t)
        return out
    rows = [
        [
            name,
            _val_metrics(a).get("auroc"),
            _val_metrics(a).get("balanced_accuracy"),
            _val_metrics(a).get("balanced_accuracy_min"),
        ]
        for name, a in adapters.items()
        if _val_metrics(a)
    ]
    if rows:
        out += [
            "Validation split, recorded at training time (classification through C_ref):",
            "",
            _table(["modality", "AUROC", "bal. acc", "min bal. acc"], rows),
            "",
        ]
    out += ["No test-split evaluation yet: `alice eval <this folder>` writes `eval.json` and adds its tables here.", ""]
    return out


def reference_card(
    manifest: dict[str, Any],
    adapters: dict[str, dict[str, Any]],
    tables: Sequence[Table] = (),
    evaluated_sha256: str | None = None,
    design_description: str = "",
) -> str:
    """The reference folder's README.md: the reference space and the adapters it holds.

    ``tables`` are the evaluation's (:func:`alice.evaluation.tables.evaluation_tables`) for the
    reference whose weights have sha256 ``evaluated_sha256``; ``design_description`` says what
    M_ref's design is (the registered intervention class's ``description``).
    """
    name = str(_get(manifest, "name", default="reference"))
    vocab = list(_get(manifest, "vocabulary", default=[]) or [])
    latent = _get(manifest, "latent_dim")
    ref_modality = _get(manifest, "reference_modality")
    design = _get(manifest, "intervention", "design", default="?")
    settings = _get(manifest, "intervention", "settings", default={}) or {}
    recipe = _get(manifest, "recipe", default={}) or {}
    sha = _get(manifest, "weights", "sha256", default="?")
    modalities = _unique([ref_modality] + [_get(a, "modality") for a in adapters.values()])
    datasets = _unique([_get(recipe, "data", "dataset")] + [_get(a, "data", "dataset") for a in adapters.values()])
    metrics = ["roc_auc", "balanced_accuracy"] + (["recall"] if any("R@1" in t.columns for t in tables) else [])
    meta = {
        "license": _license(manifest),
        "library_name": "alice",
        "tags": _unique(
            ["alice", "multimodal", "multi-label-classification", "interventions", "reference-space", *modalities]
        ),
        "datasets": datasets,
        "metrics": metrics,
    }
    ref_adapter = adapters.get(str(ref_modality)) if ref_modality else None
    out = [front_matter(meta), "", f"# {name}: an ALICE reference space", ""]
    if recipe.get("description"):
        out += [str(recipe["description"]), ""]

    out += [
        "## Model description",
        "",
        "An ALICE reference space (alignment via interventional consistency): a frozen multi-label classifier C_ref "
        "and intervention module M_ref over a shared latent space on the unit sphere, plus one adapter "
        "(encoder E, decoder D) "
        "per modality. Modalities never need paired data: each new one trains only its own E and D against the frozen "
        "C_ref and M_ref, so all of them land in the same space.",
        "",
    ]
    clf = _get(manifest, "classifier", default={}) or {}
    parts = [
        ["latent", f"{latent}-d, unit sphere" if latent is not None else "–"],
        [
            "C_ref",
            f"MLP {_mlp([latent, *(clf.get('hidden') or []), len(vocab)])}, ELU, dropout {clf.get('dropout', '–')}"
            if clf
            else "–",
        ],
        [
            "M_ref",
            f"design {_code(design)}: {design_description or 'registered by a plugin'}; settings {_code(settings)}",
        ],
        [
            "reference modality",
            f"{ref_modality} (adapter `adapters/{ref_modality}`), trained with C_ref and M_ref in stage 1"
            if ref_modality
            else "–",
        ],
        ["adapters", ", ".join(f"`{n}` ({_get(a, 'modality', default='?')})" for n, a in adapters.items()) or "–"],
        ["weights", f"`reference.safetensors`, sha256 `{sha}`"],
        [
            "built",
            f"recipe {_code(recipe.get('name', name))}, ALICE {_get(manifest, 'alice_version', default='?')}, "
            f"{_get(manifest, 'created', default='?')}",
        ],
    ]
    out += [
        _table(["part", "what"], parts),
        "",
        "Adapters added later (`alice modality add`) live in `adapters/<name>/`, each with its own card; they "
        "do not change this folder's files.",
        "",
    ]

    out += [
        "## Label vocabulary",
        "",
        f"{len(vocab)} classes, in the order of C_ref's outputs"
        + (
            f"; thresholds are the reference modality's ({ref_modality}), Youden's J on its validation split:"
            if ref_adapter
            else ":"
        ),
        "",
    ]
    thresholds = _get(ref_adapter, "thresholds", default=None) if ref_adapter else None
    if isinstance(thresholds, list) and len(thresholds) == len(vocab):
        out += [
            _table(
                ["#", "label", "threshold"],
                [[i, label, _threshold(t)] for i, (label, t) in enumerate(zip(vocab, thresholds))],
            ),
            "",
        ]
    else:
        out += [_table(["#", "label"], [[i, label] for i, label in enumerate(vocab)]), ""]

    out += ["## Data", ""]
    if recipe.get("data"):
        out += [
            f"Stage 1 trained on data set {_code(recipe['data'].get('dataset', '?'))} with options "
            f"{_code(recipe['data'].get('options', {}))}.",
            "",
        ]
    if adapters:
        out += [
            _table(
                ["adapter", "modality", "data set", "options", "samples", "classes annotated"], _data_rows(adapters)
            ),
            "",
        ]
    out += ["Test splits are never used in training; validation splits calibrate the thresholds.", ""]

    out += [
        "## Backbones",
        "",
        "Frozen feature extractors (never trained); each adapter standardises its backbone's features with the "
        "per-dimension mean and std stored in its `adapter.safetensors`.",
        "",
    ]
    if adapters:
        out += [
            _table(["adapter", "modality", "backbone", "options", "features", "identity"], _backbone_rows(adapters)),
            "",
        ]
    if statistics := _get(manifest, "statistics"):
        samples = statistics.get("samples", "?")
        out += [
            f"`reference.safetensors` also holds moments of the reference modality's {samples} train latents"
            " (means, per-class means, second moments, label co-occurrence; no latent of any sample), "
            "hashed with C_ref and M_ref: stage 2's unpaired alignment reads them.",
            "",
        ]
    prompt = _get(recipe, "intervention", "prompt_backbone")
    if prompt:
        out += [
            f"M_ref's prompt sentences were embedded once with {_code(prompt.get('name', '?'))} (options "
            f"{_code(prompt.get('options', {}))}) "
            "and stored in `reference.safetensors`; using M_ref never runs that backbone.",
            "",
        ]

    out += _training_section(_get(manifest, "training", default={}) or {}, "## Training settings")
    model = _get(recipe, "model", default={}) or {}
    if model:
        out += ["Model settings:", "", _settings_table(model), ""]

    out += _evaluation_section(manifest, adapters, tables, evaluated_sha256)
    out += _usage(name, ref_modality or (next(iter(adapters), None)), vocab)
    out += _intended_use_and_limits(vocab, adapters)
    return "\n".join(out).rstrip() + "\n"


def _usage(name: str, modality: Any, vocab: list[str]) -> list[str]:
    mod = str(modality or "image")
    a, b = (vocab + ["<label>", "<label>"])[:2] if len(vocab) >= 2 else ("<label>", "<label>")
    return [
        "## How to use",
        "",
        "```python",
        "import alice",
        "",
        f'space = alice.load("{name}")             # the folder holding this card; hashes are verified',
        f'z = space.encode_features("{mod}", features)  # or space.encode("{mod}", raw_inputs)',
        "space.labels(z)                              # predicted label names per row",
        f"z2 = space.intervene(z, replace=({a!r}, {b!r}))",
        "```",
        "",
        "From the command line: `alice reference verify <folder>`, `alice eval <folder>`, "
        f"`alice index build <folder> --modality {mod}` then `alice search <folder> <query> --in {mod} "
        f"[--replace {a}={b}]`, "
        "and `alice report <folder>`. See docs/python-api.md and docs/search.md of the ALICE project.",
        "",
    ]


def _intended_use_and_limits(vocab: list[str], adapters: dict[str, dict[str, Any]]) -> list[str]:
    partial = [n for n, a in adapters.items() if len(_get(a, "labels", "annotated", default=vocab) or []) < len(vocab)]
    out = [
        "## Intended use",
        "",
        "- Research on aligning modalities without paired data: cross-modal retrieval, label prediction and "
        'semantic edits ("replace i with j") in a shared latent space.',
        "- Adding further modalities with `alice modality add` (C_ref and M_ref stay bit-for-bit frozen).",
        "- Pretraining before contrastive fine-tuning on a few pairs (`alice align`).",
        "",
        "## Limits",
        "",
        f"- The space knows only these {len(vocab)} labels; anything else in an input is invisible to C_ref and "
        "cannot be edited.",
        "- Latents are meaningful only for features from the exact backbone and options each adapter names, "
        "standardised as stored.",
        "- Alignment comes from shared labels alone: inputs with the same labels map close together, so "
        "retrieval below "
        "the label level (which seven, which caption) is weak without paired fine-tuning.",
        "- M_ref was trained through a decoder and encoder, C(E(D(M(z)))); its edits read directly, C(M(z)), "
        "can score much "
        'lower (compare the "direct" columns after `alice eval`). '
        "`alice.Space.intervene` takes the trained path by default.",
        "- Thresholds were calibrated on each adapter's own validation split; on other data they need recalibrating.",
        "- Not evaluated for safety-critical or high-stakes decisions, or on data unlike its training data.",
    ]
    if partial:
        out.append(
            f"- Adapters {', '.join(partial)} annotate only part of the vocabulary; their other classes were "
            "masked out of training."
        )
    return out + [""]


# --------------------------------------------------------------------------- the adapter card


def adapter_card(manifest: dict[str, Any], reference: dict[str, Any] | None = None) -> str:
    """An adapter folder's README.md: one modality's encoder and decoder."""
    reference = reference or {}
    name = str(_get(manifest, "name", default="adapter"))
    modality = _get(manifest, "modality", default="?")
    vocab = list(_get(reference, "vocabulary", default=[]) or _get(manifest, "labels", "annotated", default=[]) or [])
    backbone = _get(manifest, "backbone", default={}) or {}
    data = _get(manifest, "data", default={}) or {}
    labels = _get(manifest, "labels", default={}) or {}
    ref_name = _get(reference, "name", default="the reference")
    meta = {
        "license": _license(manifest, reference),
        "library_name": "alice",
        "tags": _unique(
            [
                "alice",
                "multimodal",
                "adapter",
                str(modality),
                f"backbone-{backbone.get('name')}" if backbone.get("name") else None,
            ]
        ),
        "datasets": _unique([data.get("dataset")]),
        "metrics": ["roc_auc", "balanced_accuracy"],
    }
    out = [front_matter(meta), "", f"# {name}: an ALICE adapter for {modality}", ""]
    is_reference = _get(reference, "reference_modality") == name
    hidden = _get(manifest, "encoder_hidden", default=[]) or []
    latent = _get(reference, "latent_dim", default="latent")
    out += [
        "## Model description",
        "",
        (
            "The reference modality's own encoder E and decoder D, trained with C_ref and M_ref in stage 1 of "
            f"{_code(ref_name)}."
            if is_reference
            else f"Encoder E and decoder D for {modality}, trained against the frozen C_ref and M_ref of "
            f"{_code(ref_name)} "
            "(stage 2: only E and D learned; the reference's weights were not changed)."
        ),
        "",
        _table(
            ["part", "what"],
            [
                ["E", f"MLP {_mlp([backbone.get('feature_dim', '?'), *hidden, latent])}, ELU, output L2-normalised"],
                ["D", f"MLP {_mlp([latent, *reversed(hidden), backbone.get('feature_dim', '?')])}, ELU"],
                ["weights", f"`adapter.safetensors`, sha256 `{_get(manifest, 'weights', 'sha256', default='?')}`"],
                [
                    "reference",
                    f"sha256 `{_get(manifest, 'reference_sha256', default='?')}` (loading refuses any other)",
                ],
                [
                    "built",
                    f"recipe {_code(_get(manifest, 'recipe', default='?'))}, ALICE "
                    f"{_get(manifest, 'alice_version', default='?')}, {_get(manifest, 'created', default='?')}",
                ],
            ],
        ),
        "",
    ]

    out += [
        "## Label vocabulary",
        "",
        f"The reference vocabulary ({len(vocab)} classes); what this data set's labels map to, and the "
        "per-class threshold "
        "calibrated on its validation split (Youden's J; 0.5 for classes it does not annotate):",
        "",
    ]
    thresholds = _get(manifest, "thresholds", default=[]) or []
    annotated = set(labels.get("annotated") or [])
    sources: dict[str, list[str]] = {}
    for src, dst in (labels.get("mapping") or {}).items():
        if dst is not None:
            sources.setdefault(dst, []).append(src)
    rows = [
        [
            i,
            label,
            ", ".join(sources.get(label, [])) or "–",
            "yes" if label in annotated else "no",
            _threshold(thresholds[i]) if i < len(thresholds) else "–",
        ]
        for i, label in enumerate(vocab)
    ]
    out += [_table(["#", "label", "its labels", "annotated", "threshold"], rows), ""]
    unmapped = [s for s, d in (labels.get("mapping") or {}).items() if d is None]
    if unmapped:
        out += [f"Labels of the data set with no counterpart (ignored): {', '.join(unmapped)}.", ""]
    out += [f"Label mapper {_code(labels.get('mapper', '?'))}, aliases {_code(labels.get('aliases', {}))}.", ""]

    samples = _get(manifest, "samples", default={}) or {}
    out += [
        "## Data",
        "",
        f"Data set {_code(data.get('dataset', '?'))}, options {_code(data.get('options', {}))}; samples: "
        + (", ".join(f"{k} {v}" for k, v in samples.items()) or "not recorded")
        + ". The test split is never used in training.",
        "",
    ]
    out += [
        "## Backbone",
        "",
        _table(
            ["backbone", "options", "features", "identity", "normalisation"],
            [
                [
                    _code(backbone.get("name", "?")),
                    _code(backbone.get("options", {})),
                    backbone.get("feature_dim"),
                    _code(backbone.get("identity", {})),
                    backbone.get("normalisation", "–"),
                ]
            ],
        ),
        "",
    ]
    out += _training_section(_get(manifest, "training", default={}) or {}, "## Training settings")
    out += ["## Evaluation", ""]
    val = _val_metrics(manifest)
    if val:
        out += [
            "Validation split, through C_ref:",
            "",
            _table(
                ["AUROC", "bal. acc", "min bal. acc", "classes scored"],
                [
                    [
                        val.get("auroc"),
                        val.get("balanced_accuracy"),
                        val.get("balanced_accuracy_min"),
                        val.get("classes_scored"),
                    ]
                ],
            ),
            "",
        ]
    out += [
        "Test-split tables (classification, interventions, retrieval against the other modalities) are in the "
        "reference "
        "folder's card (`../../README.md`) once `alice eval` has run.",
        "",
    ]
    out += [
        "## How to use",
        "",
        "```python",
        "import alice",
        "",
        'space = alice.load("<reference folder>")  # this adapter is adapters/' + name,
        f'z = space.encode("{name}", inputs)  # raw inputs through {backbone.get("name", "its backbone")}, then E',
        f'x = space.decode("{name}", z)       # back to {backbone.get("feature_dim", "?")}-d backbone features',
        "```",
        "",
    ]
    out += _intended_use_and_limits(vocab, {name: manifest})
    if alignment := _get(manifest, "alignment"):
        out.insert(out.index("## Intended use"), f"Fine-tuned on pairs after ALICE: {_code(alignment)}.\n")
    geometry = []
    if latent := _get(manifest, "latent_alignment"):
        geometry.append(
            f"Stage 2 also pulled its latents toward the reference modality's latent statistics, without "
            f"pairs: {_code(latent)}."
        )
    if (_get(manifest, "search", default={}) or {}).get("centre"):
        geometry.append(
            "Search compares its latents centred on this modality's own mean train latent "
            "(`search.mean` in `adapter.safetensors`) and put back on the sphere."
        )
    if geometry:
        out.insert(out.index("## Intended use"), " ".join(geometry) + "\n")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- writing


def _safely(make: Callable[[], str], what: str) -> bytes | None:
    """A card is documentation: a manifest it cannot describe must never stop an artifact from being written."""
    try:
        return make().encode()
    except Exception as exc:  # noqa: BLE001 - reported, then the artifact is written without this card
        from rich.markup import escape

        console.warn(escape(f"no model card for {what}: {type(exc).__name__}: {exc}"))
        return None


def cards(
    files: dict[str, Any], reference: dict[str, Any] | None = None, design_description: str = ""
) -> dict[str, bytes]:
    """README.md files for the manifests among an artifact's ``files`` (relative path -> bytes or JSON dict).

    The jobs that build an artifact call this before handing the files to the
    store, so the cards go into the same atomic write as the weights.
    ``reference`` is the reference manifest when only an adapter folder is
    being written; ``design_description`` says what M_ref's design is.
    """
    ref = files.get(REFERENCE_MANIFEST) if isinstance(files.get(REFERENCE_MANIFEST), dict) else reference
    adapters: dict[str, dict[str, Any]] = {}
    out: dict[str, bytes] = {}
    for rel, content in files.items():
        if (rel == ADAPTER_MANIFEST or rel.endswith("/" + ADAPTER_MANIFEST)) and isinstance(content, dict):
            folder = rel[: -len(ADAPTER_MANIFEST)]
            adapters[str(content.get("name", folder.strip("/").split("/")[-1]))] = content
            card = _safely(lambda c=content: adapter_card(c, ref), f"adapter {folder or rel}")
            if card is not None:
                out[folder + CARD] = card
    if isinstance(files.get(REFERENCE_MANIFEST), dict):
        card = _safely(
            lambda: reference_card(files[REFERENCE_MANIFEST], adapters, design_description=design_description),
            "the reference",
        )
        if card is not None:
            out[CARD] = card
    return out


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except AliceError:
        return None


def reference_card_files(
    path: str | Path, tables: Sequence[Table] = (), evaluated_sha256: str | None = None, design_description: str = ""
) -> dict[str, bytes]:
    """``<reference>/README.md`` made anew from its manifests and the evaluation ``tables`` (relative path -> bytes).

    Adapter folders without a card (artifacts written before cards existed)
    get theirs too; an adapter card is a function of its manifest alone, so an
    existing one is left as it is. The caller writes them into the space
    (:func:`alice.artifacts.store.update_space`), together with ``eval.json``.
    """
    path = Path(path)
    manifest = _read_json(path / REFERENCE_MANIFEST)
    if not isinstance(manifest, dict):
        return {}
    out: dict[str, bytes] = {}
    adapters = {}
    folder = path / ADAPTERS_FOLDER
    if folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            m = _read_json(sub / ADAPTER_MANIFEST)
            if isinstance(m, dict):
                adapters[sub.name] = m
                if not (sub / CARD).exists():
                    card = _safely(lambda m=m: adapter_card(m, manifest), str(sub))
                    if card is not None:
                        out[f"{ADAPTERS_FOLDER}/{sub.name}/{CARD}"] = card
    card = _safely(lambda: reference_card(manifest, adapters, tables, evaluated_sha256, design_description), str(path))
    if card is not None:
        out[CARD] = card
    return out
