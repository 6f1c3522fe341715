"""``alice eval``: Table 1 (per modality) and Table 2 (between modalities) of the paper.

Each adapter's own data set is loaded from its manifest (features from the
cache), its val split calibrates per-class thresholds (Youden's J) and its
test split is scored. Retrieval pairs two modalities through the pair ids of
their test splits, which training never sees. The no-training baseline
encodes with freshly initialised encoders of the same architecture.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alice.artifacts import Adapter, ReferenceSpace
from alice.data import ModalityData, load_modality, pick_device
from alice.evaluation.metrics import (
    classification_metrics,
    intervention_scores,
    label_retrieval,
    recall_at_k,
    recall_at_k_blocks,
    youden_thresholds,
)
from alice.interventions import sample_interventions
from alice.modules import Encoder
from alice.recipes import BackboneSpec, DataSpec, LabelSpec

NO_TRAINING, ALICE = "no training", "ALICE (0 pairs)"


@dataclass
class Encoded:
    adapter: Adapter
    data: ModalityData
    z: dict[str, torch.Tensor]  # method -> test latents
    annotated: np.ndarray


def _load(reference: ReferenceSpace, name: str, device: torch.device) -> tuple[Adapter, ModalityData]:
    adapter = reference.load_adapter(name).to(device)
    m = adapter.manifest
    data = load_modality(
        DataSpec(m["data"]["dataset"], dict(m["data"].get("options", {}))),
        BackboneSpec(m["backbone"]["name"], dict(m["backbone"].get("options", {}))),
        reference.vocabulary,
        device,
        splits=("val", "test"),
        labels=LabelSpec(m["labels"].get("mapper", "by-name"), dict(m["labels"].get("aliases", {}))),
        normalisation=(adapter.feature_mean, adapter.feature_std),
    )
    return adapter, data


@torch.no_grad()
def _classification_and_interventions(reference: ReferenceSpace, adapter: Adapter, data: ModalityData, seeds: int) -> dict[str, Any]:
    C, M = reference.classifier, reference.intervention
    annotated = data.mapping.annotated
    E, D = adapter.encoder, adapter.decoder
    z_val, z_test = E(data.features["val"]), E(data.features["test"])
    y_val, y_test = data.labels["val"], data.labels["test"]
    probs_val = torch.sigmoid(C(z_val)).cpu().numpy()
    thresholds = youden_thresholds(probs_val, y_val.cpu().numpy(), annotated)
    probs = torch.sigmoid(C(z_test)).cpu().numpy()
    labels = y_test.cpu().numpy()
    result: dict[str, Any] = {"samples": int(z_test.shape[0]), "classification": classification_metrics(probs, labels, thresholds, annotated)}
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
        result[f"interventions_{kind}"] = {
            key: float(np.mean([r[key] for r in runs])) for key in runs[0]
        } | {"changed_std": float(np.std([r["changed"] for r in runs])), "unchanged_std": float(np.std([r["unchanged"] for r in runs])), "seeds": seeds}
    return result


def evaluate(reference: ReferenceSpace, device_name: str = "auto", seeds: int = 5, block_scenes: int = 1000) -> dict[str, Any]:
    device = pick_device(device_name)
    reference.classifier.to(device)
    reference.intervention.to(device)
    names = reference.adapter_names()
    encoded: dict[str, Encoded] = {}
    report: dict[str, Any] = {
        "reference": {"path": str(reference.path), "name": reference.manifest.get("name"), "sha256": reference.sha256},
        "modalities": {},
        "retrieval": [],
    }
    for i, name in enumerate(names):
        adapter, data = _load(reference, name, device)
        report["modalities"][name] = _classification_and_interventions(reference, adapter, data, seeds)
        torch.manual_seed(1_000 + i)  # a different random encoder per modality
        random_encoder = Encoder(data.feature_dim, reference.latent_dim, adapter.manifest["encoder_hidden"]).to(device).eval()
        with torch.no_grad():
            z = {ALICE: adapter.encoder(data.features["test"]), NO_TRAINING: random_encoder(data.features["test"])}
        encoded[name] = Encoded(adapter, data, z, data.mapping.annotated)
    for qa, ga in itertools.permutations(names, 2):
        q, g = encoded[qa], encoded[ga]
        pq, pg = q.data.pair_ids["test"], g.data.pair_ids["test"]
        if not pq or not pg or not set(pq) & set(pg):
            continue
        both = q.annotated & g.annotated
        yq, yg = q.data.labels["test"].cpu().numpy(), g.data.labels["test"].cpu().numpy()
        for method in (NO_TRAINING, ALICE):
            zq, zg = q.z[method], g.z[method]
            row = {"query": qa, "gallery": ga, "method": method, "pairs": 0, "gallery_size": int(zg.shape[0])}
            row.update(label_retrieval(zq, yq, zg, yg, both))
            row.update(recall_at_k(zq, pq, zg, pg))
            row["blocks"] = {"scenes_per_block": block_scenes, **recall_at_k_blocks(zq, pq, zg, pg, block_scenes)}
            report["retrieval"].append(row)
    return report
