"""Model cards: a ``README.md`` in every artifact folder, written from its typed manifests.

The card is what the Hugging Face Hub reads: its YAML metadata is a
``huggingface_hub.ModelCardData`` (``library_name``, ``tags``, ``datasets``,
``metrics``, ``license`` when a manifest records one) and its Markdown comes
from the template beside this module (``modelcard.md.jinja``), rendered by
``huggingface_hub.ModelCard.from_template``: model description, label
vocabulary, data, backbones, training settings, evaluation, how to use,
intended use, limits. This module only turns the manifests into the values
the template shows; ``ModelCard.load(path).data`` reads the metadata back.

Cards are written with the artifact, inside the same staging folder before
its rename (see :func:`alice.artifacts.publish.write_space`), so a crash never
leaves a half card; ``alice eval`` rewrites the reference card with its
test-split tables, in one step with ``eval.json``. A card is documentation:
``space.json`` records its sha256 (``alice reference verify`` checks it), but
outside the space's digest, so an evaluation leaves a pinned digest valid.
Nothing here imports torch; huggingface_hub is imported when a card is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alice import console
from alice.artifacts.curves import curve_files
from alice.artifacts.format.layout import ADAPTER_MANIFEST, ADAPTERS_FOLDER, CARD, REFERENCE_MANIFEST
from alice.artifacts.format.manifests import (
    AdapterManifest,
    ReferenceManifest,
    read_adapter_manifest,
    read_reference_manifest,
)
from alice.errors import AliceError
from alice.tables import MISSING, Table, cell

T = TypeVar("T")

TEMPLATE = Path(__file__).with_name("modelcard.md.jinja")
METRICS = ["roc_auc", "balanced_accuracy"]


# --------------------------------------------------------------------------- values as the template shows them


def _cell(v: Any) -> str:
    """A value in a Markdown table cell: numbers as everywhere else, structures as JSON, ``|`` escaped."""
    text = v if isinstance(v, str) else cell(v) if isinstance(v, (int, float)) or v is None else _json(v)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list]:
    return {"columns": [_cell(c) for c in columns], "rows": [[_cell(v) for v in row] for row in rows]}


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _code(v: Any) -> str:
    text = v if isinstance(v, str) else _json(v)
    return f"`{text.replace('`', '')}`"


def _threshold(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else MISSING


def _mlp(*sizes: Any) -> str:
    return "MLP " + " → ".join(str(s) for s in sizes)


def _unique(items: Sequence[Any]) -> list[Any]:
    return [x for i, x in enumerate(items) if x and x not in items[:i]]


def _settings(settings: dict[str, Any]) -> dict[str, list] | None:
    """A settings table: numbers and true/false as JSON, lists and tables as code."""

    def value(v: Any) -> Any:
        return _code(v) if isinstance(v, (dict, list)) else _json(v) if isinstance(v, (bool, int, float)) else v

    return _table(["setting", "value"], [[k, value(v)] for k, v in settings.items()]) if settings else None


def _training(training: dict[str, Any]) -> dict[str, Any]:
    """The training section's values, from a manifest's ``training`` record."""
    facts = [f"device {_code(training['device'])}"] if training.get("device") else []
    if training.get("seconds") is not None:
        facts.append(f"{cell(training['seconds'], 0)} s of training")
    if training.get("steps_per_second") is not None:
        facts.append(f"{cell(training['steps_per_second'], 1)} steps/s")
    final = training.get("final") or {}
    history = training.get("history")
    curve = history.get("curve") if isinstance(history, dict) else None  # history.png, beside history.jsonl
    return {
        "settings": _settings(training.get("settings") or {}),
        "facts": facts,
        "final": _table(list(final), [list(final.values())]) if final else None,
        "curve": curve if isinstance(curve, str) and curve else None,
    }


def _validation(adapter: AdapterManifest) -> list[Any]:
    val = adapter.metrics.get("val") or {}
    return (
        [val.get(k) for k in ("auroc", "balanced_accuracy", "balanced_accuracy_min", "classes_scored")] if val else []
    )


def _license(*manifests: ReferenceManifest | AdapterManifest | None) -> str | None:
    for m in manifests:
        if m is None:
            continue
        recipe = m.recipe if isinstance(m.recipe, dict) else {}
        lic = m.extra.get("license") or recipe.get("license")
        if isinstance(lic, str) and lic.strip():
            return lic.strip()
    return None


def _partial(vocabulary: list[str], adapters: dict[str, AdapterManifest]) -> list[str]:
    """Adapters whose data set annotates only part of the vocabulary."""
    return [n for n, a in adapters.items() if len(a.labels.annotated or vocabulary) < len(vocabulary)]


def _render(metadata: dict[str, Any], **values: Any) -> str:
    """The card: ``metadata`` through ModelCardData, ``values`` through the template."""
    from huggingface_hub import ModelCard, ModelCardData  # its import costs most of a second: only when a card is made

    data = ModelCardData(library_name="alice", metrics=METRICS + metadata.pop("metrics", []), **metadata)
    return str(ModelCard.from_template(data, template_path=str(TEMPLATE), **values))


# --------------------------------------------------------------------------- the two cards


def reference_card(
    manifest: ReferenceManifest,
    adapters: dict[str, AdapterManifest],
    tables: Sequence[Table] = (),
    evaluated_sha256: str | None = None,
    design_description: str = "",
) -> str:
    """The reference folder's README.md: the reference space and the adapters it holds.

    ``tables`` are the evaluation's (:func:`alice.evaluation.tables.evaluation_tables`) for the
    reference whose weights have sha256 ``evaluated_sha256``; ``design_description`` says what
    M_ref's design is (the registered intervention class's ``description``).
    """
    m, recipe = manifest, manifest.recipe
    name = m.name or "reference"
    sha = m.weights.sha256 if m.weights else "?"
    stale = evaluated_sha256 not in (None, sha)
    tables = () if stale else tables
    modality = m.reference_modality
    ref_adapter = adapters.get(modality) if modality else None
    thresholds = ref_adapter.thresholds if ref_adapter else []
    if len(thresholds) != len(m.vocabulary):
        thresholds = []
    recipe_data = recipe.get("data") or {}
    prompt = (recipe.get("intervention") or {}).get("prompt_backbone")
    modalities = _unique([modality, *(a.modality for a in adapters.values())])
    metadata = {
        "license": _license(m),
        "tags": ["alice", "multimodal", "multi-label-classification", "interventions", "reference-space", *modalities],
        "datasets": _unique([recipe_data.get("dataset"), *(a.data.dataset for a in adapters.values())]) or None,
        "metrics": ["recall"] if any("R@1" in t.columns for t in tables) else [],
    }
    parts = [
        ["latent", f"{m.latent_dim}-d, unit sphere"],
        [
            "C_ref",
            f"{_mlp(m.latent_dim, *m.classifier_hidden, len(m.vocabulary))}, ELU, dropout {m.classifier_dropout}",
        ],
        [
            "M_ref",
            f"design {_code(m.design)}: {design_description or 'registered by a plugin'}; "
            f"settings {_code(m.design_settings)}",
        ],
        [
            "reference modality",
            f"{modality} (adapter `adapters/{modality}`), trained with C_ref and M_ref in stage 1" if modality else "–",
        ],
        ["adapters", ", ".join(f"`{n}` ({a.modality})" for n, a in adapters.items()) or "–"],
        ["weights", f"`reference.safetensors`, sha256 `{sha}`"],
        ["built", f"recipe {_code(recipe.get('name', name))}, ALICE {m.alice_version or '?'}, {m.created or '?'}"],
    ]
    vocabulary = [[i, label, _threshold(t)] for i, (label, t) in enumerate(zip(m.vocabulary, thresholds))]
    validation = [[n, *_validation(a)[:3]] for n, a in adapters.items() if _validation(a)]
    labels = m.vocabulary if len(m.vocabulary) >= 2 else ["<label>", "<label>"]
    usage_modality = modality or next(iter(adapters), None) or "image"
    return _render(
        metadata,
        kind="reference",
        name=name,
        description=recipe.get("description", ""),
        parts=_table(["part", "what"], parts),
        classes=len(m.vocabulary),
        reference_modality=modality,
        thresholds=bool(thresholds),
        vocabulary=_table(["#", "label", "threshold"], vocabulary)
        if thresholds
        else _table(["#", "label"], list(enumerate(m.vocabulary))),
        stage1={"dataset": _code(recipe_data.get("dataset", "?")), "options": _code(recipe_data.get("options", {}))}
        if recipe_data
        else None,
        **_adapter_tables(adapters),
        statistics=(m.statistics or {}).get("samples", "?") if m.statistics else None,
        prompt={"name": _code(prompt.get("name", "?")), "options": _code(prompt.get("options", {}))}
        if isinstance(prompt, dict)
        else None,
        training=_training(m.training),
        model=_settings(recipe.get("model") or {}),
        stale=str(evaluated_sha256)[:12] if stale else "",
        tables=[{"title": t.title, "note": t.note, **_table(t.columns, t.rows)} for t in tables],
        validation=_table(["adapter", "AUROC", "bal. acc", "min bal. acc"], validation) if validation else None,
        usage={
            "modality": usage_modality,
            "edit": [repr(labels[0]), repr(labels[1])],
            "labels": labels[:2],
        },
        partial=_partial(m.vocabulary, adapters),
    )


def _adapter_tables(adapters: dict[str, AdapterManifest]) -> dict[str, Any]:
    """The reference card's tables of its adapters: the data each read, the backbone each reads it with."""
    if not adapters:
        return {"data": None, "backbones": None}
    data = [
        [n, a.modality, _code(a.data.dataset), _code(a.data.options), _samples(a) or "–", len(a.labels.annotated)]
        for n, a in adapters.items()
    ]
    backbones = [
        [
            n,
            a.modality,
            _code(a.backbone.name),
            _code(a.backbone.options),
            a.backbone.feature_dim,
            _code(a.backbone.identity),
        ]
        for n, a in adapters.items()
    ]
    return {
        "data": _table(["adapter", "modality", "data set", "options", "samples", "classes annotated"], data),
        "backbones": _table(["adapter", "modality", "backbone", "options", "features", "identity"], backbones),
    }


def _samples(adapter: AdapterManifest) -> str:
    return ", ".join(f"{k} {v}" for k, v in adapter.samples.items())


def adapter_card(manifest: AdapterManifest, reference: ReferenceManifest | None = None) -> str:
    """An adapter folder's README.md: one modality's encoder and decoder."""
    m, b, labels = manifest, manifest.backbone, manifest.labels
    vocabulary = list(reference.vocabulary if reference else labels.annotated)
    latent = reference.latent_dim if reference else "latent"
    sources: dict[str, list[str]] = {}
    for src, dst in labels.mapping.items():
        if dst is not None:
            sources.setdefault(dst, []).append(src)
    annotated = set(labels.annotated)
    rows = [
        [
            i,
            label,
            ", ".join(sources.get(label, [])) or "–",
            "yes" if label in annotated else "no",
            _threshold(m.thresholds[i]) if i < len(m.thresholds) else "–",
        ]
        for i, label in enumerate(vocabulary)
    ]
    parts = [
        ["E", f"{_mlp(b.feature_dim, *m.encoder_hidden, latent)}, ELU, output L2-normalised"],
        ["D", f"{_mlp(latent, *reversed(m.encoder_hidden), b.feature_dim)}, ELU"],
        ["weights", f"`adapter.safetensors`, sha256 `{m.weights.sha256 if m.weights else '?'}`"],
        ["reference", f"sha256 `{m.reference_sha256 or '?'}` (loading refuses any other)"],
        ["built", f"recipe {_code(m.recipe or '?')}, ALICE {m.alice_version or '?'}, {m.created or '?'}"],
    ]
    geometry = []
    if m.latent_alignment:
        geometry.append(
            "Stage 2 also pulled its latents toward the reference modality's latent statistics, without "
            f"pairs: {_code(m.latent_alignment)}."
        )
    if (m.search or {}).get("centre"):
        geometry.append(
            "Search compares its latents centred on this modality's own mean train latent "
            "(`search.mean` in `adapter.safetensors`) and put back on the sphere."
        )
    metadata = {
        "license": _license(m, reference),
        "tags": _unique(["alice", "multimodal", "adapter", m.modality, f"backbone-{b.name}" if b.name else None]),
        "datasets": _unique([m.data.dataset]) or None,
    }
    return _render(
        metadata,
        kind="adapter",
        name=m.name,
        modality=m.modality,
        is_reference_modality=reference is not None and reference.reference_modality == m.name,
        reference_name=_code(reference.name if reference else "the reference"),
        parts=_table(["part", "what"], parts),
        classes=len(vocabulary),
        vocabulary=_table(["#", "label", "its labels", "annotated", "threshold"], rows),
        unmapped=[s for s, d in labels.mapping.items() if d is None],
        mapper=_code(labels.mapper),
        aliases=_code(labels.aliases),
        dataset=_code(m.data.dataset),
        options=_code(m.data.options),
        samples=_samples(m),
        backbone=_table(
            ["backbone", "options", "features", "identity", "normalisation"],
            [[_code(b.name), _code(b.options), b.feature_dim, _code(b.identity), b.normalisation or "–"]],
        ),
        training=_training(m.training),
        validation=_table(["AUROC", "bal. acc", "min bal. acc", "classes scored"], [_validation(m)])
        if _validation(m)
        else None,
        backbone_name=b.name,
        feature_dim=b.feature_dim,
        alignment=_code(m.alignment) if m.alignment else "",
        geometry=geometry,
        partial=_partial(vocabulary, {m.name: m}),
    )


# --------------------------------------------------------------------------- writing


def _safely(make: Callable[[], T], what: str) -> T | None:
    """A card is documentation: a manifest it cannot describe must never stop an artifact from being written."""
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - reported, then the artifact is written without this card
        from rich.markup import escape

        console.warn(escape(f"no model card for {what}: {type(exc).__name__}: {exc}"))
        return None


def cards(
    files: dict[str, Any], reference: ReferenceManifest | None = None, design_description: str = ""
) -> dict[str, bytes]:
    """README.md files for the manifests among an artifact's ``files`` (relative path -> bytes or JSON dict), and
    the curve picture each adapter card shows (``history.png``, drawn from the ``history.jsonl`` among them).

    The jobs that build an artifact call this before handing the files to the
    store, so the cards go into the same atomic write as the weights.
    ``reference`` is the reference manifest when only an adapter folder is
    being written; ``design_description`` says what M_ref's design is.
    """
    written = files.get(REFERENCE_MANIFEST)
    if isinstance(written, dict):
        reference = _safely(lambda: ReferenceManifest.from_json(written, REFERENCE_MANIFEST), "the reference")
    adapters: dict[str, AdapterManifest] = {}
    out: dict[str, str | None] = {}
    for rel, content in files.items():
        if (rel == ADAPTER_MANIFEST or rel.endswith("/" + ADAPTER_MANIFEST)) and isinstance(content, dict):
            folder, what = rel[: -len(ADAPTER_MANIFEST)], f"adapter {rel[: -len(ADAPTER_MANIFEST)] or rel}"
            if adapter := _safely(lambda c=content, r=rel: AdapterManifest.from_json(c, r), what):
                adapters[adapter.name] = adapter
                out[folder + CARD] = _safely(lambda a=adapter: adapter_card(a, reference), what)
    if isinstance(written, dict) and reference is not None:
        ref = reference
        out[CARD] = _safely(
            lambda: reference_card(ref, adapters, design_description=design_description), "the reference"
        )
    return {**{rel: card.encode() for rel, card in out.items() if card is not None}, **curve_files(files)}


def reference_card_files(
    path: str | Path, tables: Sequence[Table] = (), evaluated_sha256: str | None = None, design_description: str = ""
) -> dict[str, bytes]:
    """``<reference>/README.md`` made anew from its manifests and the evaluation ``tables`` (relative path -> bytes).

    Adapter folders without a card (artifacts written before cards existed)
    get theirs too; an adapter card is a function of its manifest alone, so an
    existing one is left as it is. The caller writes them into the space
    (:func:`alice.artifacts.publish.update_space`), together with ``eval.json``.
    """
    path = Path(path)
    try:
        manifest = read_reference_manifest(path)
    except AliceError:
        return {}
    out: dict[str, str | None] = {}
    adapters = {}
    folder = path / ADAPTERS_FOLDER
    for sub in (
        sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else ()
    ):
        try:
            adapters[sub.name] = adapter = read_adapter_manifest(sub)
        except AliceError:
            continue
        if not (sub / CARD).exists():
            out[f"{ADAPTERS_FOLDER}/{sub.name}/{CARD}"] = _safely(lambda a=adapter: adapter_card(a, manifest), str(sub))
    out[CARD] = _safely(
        lambda: reference_card(manifest, adapters, tables, evaluated_sha256, design_description), str(path)
    )
    return {rel: card.encode() for rel, card in out.items() if card is not None}
