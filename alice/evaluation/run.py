"""``alice eval``: Table 1 (per modality) and Table 2 (between modalities) of the paper.

Each adapter's own data set is loaded from its manifest (features from the
cache), its val split calibrates per-class thresholds (Youden's J) and its
test split is scored. Retrieval pairs two modalities through the pair ids of
their test splits, which training never sees; two adapters reading the same
data set (the same inputs, the same test split) are no cross-modal pair and
are left out of Tables 2 and 3 (``within_data_set`` says which). The
no-training baseline encodes with freshly initialised encoders of the same
architecture, seeded by the pair of modalities and ``EvalSpec.seed`` alone.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice.artifacts.layout import EVAL_FILE
from alice.artifacts.modelcard import reference_card_files
from alice.artifacts.store import Adapter, ReferenceSpace, update_space
from alice.core.interventions import sample_interventions
from alice.core.metrics import (
    classification_metrics,
    counterfactual_retrieval,
    intervention_scores,
    label_retrieval,
    modality_gap,
    recall_at_k,
    recall_at_k_blocks,
    youden_thresholds,
)
from alice.data.loading import ModalityData
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.evaluation.paired import fine_tune, fresh_encoder, load_for_pairing
from alice.evaluation.specs import EvalSpec, PairedSpec
from alice.evaluation.tables import evaluation_tables

NO_TRAINING, ALICE = "no training", "ALICE (0 pairs)"


@dataclass
class Encoded:
    adapter: Adapter
    data: ModalityData
    z: dict[str, torch.Tensor]  # ALICE -> test latents as search compares them
    annotated: np.ndarray
    latent: torch.Tensor  # ALICE's test latents E(x) as C_ref reads them (before any search transform)


@torch.no_grad()
def _classification_and_interventions(
    reference: ReferenceSpace, adapter: Adapter, data: ModalityData, seeds: int
) -> dict[str, Any]:
    C, M = reference.classifier, reference.intervention
    annotated = data.mapping.annotated
    E, D = adapter.encode, adapter.decoder
    z_val, z_test = E(data.features["val"]), E(data.features["test"])
    y_val, y_test = data.labels["val"], data.labels["test"]
    probs_val = torch.sigmoid(C(z_val)).cpu().numpy()
    thresholds = youden_thresholds(probs_val, y_val.cpu().numpy(), annotated)
    probs = torch.sigmoid(C(z_test)).cpu().numpy()
    labels = y_test.cpu().numpy()
    result: dict[str, Any] = {
        "samples": int(z_test.shape[0]),
        "classes": _classes(reference.vocabulary, annotated),
        "classification": classification_metrics(probs, labels, thresholds, annotated),
    }
    pred_before = probs >= thresholds
    ann = torch.as_tensor(annotated, device=z_test.device)
    per_seed: dict[str, list[dict[str, float]]] = {"cycle": [], "direct": []}
    for seed in range(seeds):
        g = torch.Generator(device=z_test.device)
        g.manual_seed(10_000 + seed)
        k = sample_interventions(y_test, ann, getattr(M, "num_templates", 1), g)
        z_edit = M(z_test, k)
        edited = k.apply_to_labels(y_test).cpu().numpy()
        rows = np.arange(len(labels))
        changed = np.zeros_like(labels, dtype=bool)
        changed[rows, k.remove.cpu().numpy()] = True
        changed[rows, k.add.cpu().numpy()] = True
        scored = annotated[None, :] & k.valid.cpu().numpy()[:, None]
        # "cycle": through this modality's decoder and encoder, as L_sem trains M;
        # "direct": the classifier reads the edited latent itself
        for kind, logits in (("cycle", C(E(D(z_edit)))), ("direct", C(z_edit))):
            after = torch.sigmoid(logits).cpu().numpy() >= thresholds
            per_seed[kind].append(intervention_scores(pred_before, after, labels > 0.5, edited > 0.5, changed, scored))
    for kind, runs in per_seed.items():
        result[f"interventions_{kind}"] = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]} | {
            "changed_std": float(np.std([r["changed"] for r in runs])),
            "unchanged_std": float(np.std([r["unchanged"] for r in runs])),
            "seeds": seeds,
        }
    return result


def _classes(vocabulary: list[str], annotated: np.ndarray) -> dict[str, Any]:
    """How many classes a modality's scores cover, and the ones its data set does not annotate (never scored)."""
    return {
        "annotated": int(annotated.sum()),
        "of": len(vocabulary),
        "not_annotated": [c for c, a in zip(vocabulary, annotated) if not a],
    }


def _method(a: Adapter, b: Adapter) -> tuple[str, int]:
    """How two adapters were trained: ALICE alone, or fine-tuned together on pairs (`alice align`)."""
    x, y = a.manifest.alignment, b.manifest.alignment
    if x and y and x.get("partner") == b.name and y.get("partner") == a.name:
        names = {
            "clip": "CLIP",
            "cyclip": "CyCLIP",
            "alice+clip": "ALICE then CLIP",
            "alice+cyclip": "ALICE then CyCLIP",
        }
        return names.get(x["method"], x["method"]), int(x["pairs"])
    return ALICE, 0


def _retrieval_row(
    qa: str, ga: str, method: str, pairs: int, zq, zg, q: ModalityData, g: ModalityData, both, block_scenes: int
) -> dict[str, Any]:
    pq, pg = q.pair_ids["test"], g.pair_ids["test"]
    yq, yg = q.labels["test"].cpu().numpy(), g.labels["test"].cpu().numpy()
    row = {"query": qa, "gallery": ga, "method": method, "pairs": pairs, "gallery_size": int(zg.shape[0])}
    row["classes"] = {"both_annotate": int(both.sum()), "of": int(len(both))}
    row.update(label_retrieval(zq, yq, zg, yg, both))
    row.update(recall_at_k(zq, pq, zg, pg))
    row["blocks"] = {"scenes_per_block": block_scenes, **recall_at_k_blocks(zq, pq, zg, pg, block_scenes)}
    return row


@torch.no_grad()
def _counterfactual_row(
    reference: ReferenceSpace, qa: str, ga: str, q: Encoded, g: Encoded, seeds: int
) -> dict[str, Any]:
    """Counterfactual search: edit each query with M_ref (through its decoder and encoder), retrieve top-1 in ``ga``.

    One random "replace i with j" per query among the classes both modalities annotate, the
    same draws as Table 1's interventions; scored against the edited label set Delta_k(y), and
    compared with the plain search of the unedited query scored against the same target.
    """
    both = q.annotated & g.annotated
    M, E, D = reference.intervention, q.adapter.encode, q.adapter.decoder
    zq, zg = q.latent, g.z[ALICE]  # M_ref edits latents as C_ref reads them; search compares search latents
    yq, yg = q.data.labels["test"], g.data.labels["test"].cpu().numpy()
    ann = torch.as_tensor(both, device=zq.device)
    runs = []
    for seed in range(seeds):
        gen = torch.Generator(device=zq.device)
        gen.manual_seed(10_000 + seed)
        k = sample_interventions(yq, ann, getattr(M, "num_templates", 1), gen)
        valid = k.valid
        edited = q.adapter.search_latents(E(D(M(zq, k))))[valid]
        target = k.apply_to_labels(yq)[valid].cpu().numpy()
        plain = q.z[ALICE][valid]
        removed, added = k.remove[valid].cpu().numpy(), k.add[valid].cpu().numpy()
        runs.append(counterfactual_retrieval(edited, plain, target, zg, yg, both, removed, added))
    row: dict[str, Any] = {
        "query": qa,
        "gallery": ga,
        "gallery_size": int(zg.shape[0]),
        "queries": int(runs[0]["queries"]),
        "seeds": seeds,
        "classes": {"both_annotate": int(both.sum()), "of": int(len(both))},
    }
    for key in runs[0]:
        if key != "queries":
            row[key] = float(np.mean([r[key] for r in runs]))
    plain = row["plain_exact"]
    row["ratio"] = row["counterfactual_exact"] / plain if plain > 0 else None
    return row


def baseline_seed(a: str, b: str, seed: int) -> int:
    """The seed of the no-training baseline's random encoders for modalities ``a`` and ``b`` (in either order).

    From the two names and the evaluation seed only: the baseline rows of a pair stay the same when
    an adapter is added to or removed from the space.
    """
    first, second = sorted((a, b))
    digest = hashlib.sha256(f"no-training:{seed}:{first}:{second}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: any torch generator takes it


@torch.no_grad()
def _untrained_latents(encoded: dict[str, Encoded], a: str, b: str, seed: int) -> dict[str, torch.Tensor]:
    """Test latents of ``a`` and ``b`` under freshly initialised encoders, one per modality, seeded by the pair."""
    torch.manual_seed(baseline_seed(a, b, seed))
    out = {}
    for name in sorted((a, b)):  # drawn in one order whichever is the query
        e = encoded[name]
        out[name] = fresh_encoder(e.adapter).eval()(e.data.features["test"])
    return out


def same_data(a: ModalityData, b: ModalityData) -> bool:
    """Whether two adapters read the same data set, with the same options: the same inputs, the same test split."""
    return a.dataset.name == b.dataset.name and a.dataset.identity() == b.dataset.identity()


def _gap_rows(encoded: dict[str, Encoded]) -> list[dict[str, Any]]:
    """Table 4: the modality gap of every two modalities' test latents, as search compares them.

    Where an adapter transforms its search latents, the latents as C_ref reads them get a row too.
    """
    rows = []
    for a, b in itertools.combinations(encoded, 2):
        spaces = [("search", encoded[a].z[ALICE], encoded[b].z[ALICE])]
        if any(encoded[n].adapter.transforms_search for n in (a, b)):
            spaces.append(("latent", encoded[a].latent, encoded[b].latent))
        for space, za, zb in spaces:
            rows.append({"a": a, "b": b, "space": space, **modality_gap(za, zb)})
    return rows


#: `alice eval --pairs N` trains these on N pairs and adds their rows to Table 2
PAIRED_METHODS = {"clip": "CLIP", "cyclip": "CyCLIP", "alice+clip": "ALICE then CLIP"}


def _paired_rows(
    reference: ReferenceSpace,
    names: tuple[str, str],
    n_pairs: int,
    spec: PairedSpec,
    device: torch.device,
    block_scenes: int,
) -> list[dict[str, Any]]:
    """Fine-tune CLIP, CyCLIP (from scratch) and ALICE then CLIP on ``n_pairs`` pairs; rows both ways."""
    a, b = load_for_pairing(reference, names[0], device), load_for_pairing(reference, names[1], device)
    both = a.data.mapping.annotated & b.data.mapping.annotated
    rows = []
    for method, label in PAIRED_METHODS.items():
        try:
            ea, eb, _ = fine_tune(method, a, b, n_pairs, spec)
        except ValueError as exc:
            raise AliceError(f"--pairs {n_pairs}: {exc}") from None
        with torch.no_grad():
            za, zb = ea.eval()(a.data.features["test"]), eb.eval()(b.data.features["test"])
        rows.append(_retrieval_row(names[0], names[1], label, n_pairs, za, zb, a.data, b.data, both, block_scenes))
        rows.append(_retrieval_row(names[1], names[0], label, n_pairs, zb, za, b.data, a.data, both, block_scenes))
    return rows


def evaluate(reference: ReferenceSpace, spec: EvalSpec | None = None) -> dict[str, Any]:
    """Tables 1 to 3 as a JSON-able report.

    With ``spec.pairs``, Table 2 also holds CLIP, CyCLIP and ALICE then CLIP trained on that many pairs.
    """
    spec = spec or EvalSpec()
    if spec.data and spec.pairs:
        raise AliceError("--pairs trains on the paired split of the data the space was trained on; drop --set data.*")
    device = pick_device(spec.device)
    reference.classifier.to(device)
    reference.intervention.to(device)
    names = reference.adapter_names()
    encoded: dict[str, Encoded] = {}
    report: dict[str, Any] = {
        "reference": {"path": str(reference.path), "name": reference.manifest.name, "sha256": reference.sha256},
        "modalities": {},
        "retrieval": [],
    }
    if spec.data:
        report["data_options"] = dict(spec.data)
    for name in names:
        adapter = reference.load_adapter(name).to(device)
        data = adapter.load_data(("val", "test"), device, spec.data)
        report["modalities"][name] = _classification_and_interventions(reference, adapter, data, spec.seeds)
        with torch.no_grad():
            latent = adapter.encode(data.features["test"])
        encoded[name] = Encoded(adapter, data, {ALICE: adapter.search_latents(latent)}, data.mapping.annotated, latent)
    # two adapters of one data set (two backbones of the same captions, say) are not two modalities: each query's
    # own input is in the gallery, so retrieval would score how alike two encoders read it, not a cross-modal search
    within = [(a, b) for a, b in itertools.combinations(names, 2) if same_data(encoded[a].data, encoded[b].data)]
    if within:
        report["within_data_set"] = [
            {"a": a, "b": b, "dataset": encoded[a].data.dataset.name, "left_out": "Tables 2 and 3"} for a, b in within
        ]
    left_out = {frozenset(p) for p in within}
    cross = [(a, b) for a, b in itertools.permutations(names, 2) if frozenset((a, b)) not in left_out]
    untrained: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for qa, ga in cross:
        q, g = encoded[qa], encoded[ga]
        pq, pg = q.data.pair_ids["test"], g.data.pair_ids["test"]
        if not pq or not pg or not set(pq) & set(pg):
            continue
        both = q.annotated & g.annotated
        method_name, n_aligned = _method(q.adapter, g.adapter)
        pair = tuple(sorted((qa, ga)))
        if pair not in untrained:
            untrained[pair] = _untrained_latents(encoded, qa, ga, spec.seed)
        z = {NO_TRAINING: untrained[pair], ALICE: {qa: q.z[ALICE], ga: g.z[ALICE]}}  # method -> modality -> latents
        for method in (NO_TRAINING, ALICE):
            label, n = (method, 0) if method == NO_TRAINING else (method_name, n_aligned)
            zq, zg = z[method][qa], z[method][ga]
            report["retrieval"].append(
                _retrieval_row(qa, ga, label, n, zq, zg, q.data, g.data, both, spec.block_scenes)
            )
    report["gap"] = _gap_rows(encoded)
    report["counterfactual"] = [
        _counterfactual_row(reference, qa, ga, encoded[qa], encoded[ga], spec.seeds)
        for qa, ga in cross
        if (encoded[qa].annotated & encoded[ga].annotated).sum() >= 2
    ]
    if spec.pairs:
        paired = spec.paired or PairedSpec()
        report["paired_settings"] = {**asdict(paired), "pairs": spec.pairs}
        for qa, ga in itertools.combinations(names, 2):
            if frozenset((qa, ga)) not in left_out and set(encoded[qa].data.pair_ids["test"]) & set(
                encoded[ga].data.pair_ids["test"]
            ):
                report["retrieval"].extend(
                    _paired_rows(reference, (qa, ga), spec.pairs, paired, device, spec.block_scenes)
                )
        order: dict[tuple[str, str], int] = {}
        for i, r in enumerate(report["retrieval"]):
            order.setdefault((r["query"], r["gallery"]), i)
        report["retrieval"].sort(key=lambda r: order[(r["query"], r["gallery"])])
    return report


def save_evaluation(reference: ReferenceSpace, report: dict[str, Any]) -> Path:
    """Write ``eval.json`` and the reference's model card with its tables, in one step; returns the JSON file.

    Both are documentation: the space's digest does not change (``space.json`` records their new hashes).
    """
    cards = reference_card_files(
        reference.path, evaluation_tables(report), report["reference"]["sha256"], reference.intervention.description
    )
    update_space(reference.path, {EVAL_FILE: report, **cards})
    return reference.path / EVAL_FILE
