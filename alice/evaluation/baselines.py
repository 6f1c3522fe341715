"""The post-training baseline: concept algebra on a plain supervised encoder (Wang et al. 2024).

A plain encoder and classifier (the reference's architecture) are trained with
the classification loss alone. Per class c, a concept direction u_c is
estimated on the validation split (the normalised difference of the mean
latents with and without c), with the mean projections a_c^1 (present) and
a_c^0 (absent). "Replace i with j" then sets the latent's component along u_i
to a_i^0 and along u_j to a_j^1, an affine edit estimated after training,
with no intervention module. It is scored with the same Table 1 metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from alice import console
from alice.artifacts.loaded import ReferenceSpace
from alice.core.interventions import sample_interventions
from alice.core.losses import masked_bce
from alice.core.metrics import classification_metrics, intervention_scores, youden_thresholds
from alice.core.modules import Classifier, Encoder
from alice.train.loop import BatchSampler


class ConceptAlgebra:
    """Per-class projections: u [C, d], a1 [C], a0 [C]."""

    def __init__(self, z: torch.Tensor, y: torch.Tensor) -> None:
        pos, neg = y > 0.5, y <= 0.5
        mean = lambda m: (m.T.float() @ z) / m.sum(0).clamp_min(1).unsqueeze(1)  # noqa: E731
        self.u = F.normalize(mean(pos) - mean(neg), dim=-1)
        proj = z @ self.u.T  # [n, C]
        self.a1 = (proj * pos).sum(0) / pos.sum(0).clamp_min(1)
        self.a0 = (proj * neg).sum(0) / neg.sum(0).clamp_min(1)

    def __call__(self, z: torch.Tensor, remove: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
        ui, uj = self.u[remove], self.u[add]
        z = z + (self.a0[remove] - (z * ui).sum(-1, keepdim=True).squeeze(-1)).unsqueeze(-1) * ui
        z = z + (self.a1[add] - (z * uj).sum(-1, keepdim=True).squeeze(-1)).unsqueeze(-1) * uj
        return F.normalize(z, dim=-1)


def post_training_baseline(
    reference: ReferenceSpace, device: torch.device, seeds: int = 5, data_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train the plain supervised encoder on the reference modality and score concept algebra edits.

    ``data_options`` replace the data set's options for the val and test splits (a shifted test
    distribution, as ``alice eval --set data.KEY=VALUE``); training keeps the reference's own.
    """
    name = reference.manifest.reference_modality
    adapter = reference.load_adapter(name)
    recipe = reference.manifest.recipe
    if data_options:
        train = adapter.load_data(("train",), device)
        data = adapter.load_data(("val", "test"), device, data_options)
        data.features["train"], data.labels["train"] = train.features["train"], train.labels["train"]
    else:
        data = adapter.load_data(("train", "val", "test"), device)
    t = recipe["training"]
    torch.manual_seed(t["seed"])
    encoder = Encoder(data.feature_dim, reference.latent_dim, adapter.manifest.encoder_hidden).to(device)
    classifier = Classifier(
        len(reference.vocabulary),
        reference.latent_dim,
        recipe["model"]["classifier_hidden"],
        recipe["model"]["classifier_dropout"],
    ).to(device)
    opt = torch.optim.Adam([*encoder.parameters(), *classifier.parameters()], lr=t["lr"], amsgrad=t["amsgrad"])
    gen = torch.Generator(device=device)
    gen.manual_seed(t["seed"])
    sampler = BatchSampler(data.features["train"].shape[0], t["batch_size"], gen, device)
    annotated = data.annotated
    with console.progress("post-training baseline: plain supervised encoder", t["steps"]) as bar:
        for _ in range(t["steps"]):
            idx = sampler.next()
            loss = masked_bce(classifier(encoder(data.features["train"][idx])), data.labels["train"][idx], annotated)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.advance()
    encoder.eval()
    classifier.eval()
    ann = data.mapping.annotated
    with torch.no_grad():
        z_val, z_test = encoder(data.features["val"]), encoder(data.features["test"])
        y_val, y_test = data.labels["val"], data.labels["test"]
        thresholds = youden_thresholds(torch.sigmoid(classifier(z_val)).cpu().numpy(), y_val.cpu().numpy(), ann)
        probs = torch.sigmoid(classifier(z_test)).cpu().numpy()
        labels = y_test.cpu().numpy()
        algebra = ConceptAlgebra(z_val, y_val)
        runs = []
        for seed in range(seeds):
            g = torch.Generator(device=device)
            g.manual_seed(10_000 + seed)
            k = sample_interventions(y_test, annotated, 1, g)
            after = torch.sigmoid(classifier(algebra(z_test, k.remove, k.add))).cpu().numpy() >= thresholds
            rows = np.arange(len(labels))
            changed = np.zeros_like(labels, dtype=bool)
            changed[rows, k.remove.cpu().numpy()] = True
            changed[rows, k.add.cpu().numpy()] = True
            scored = ann[None, :] & k.valid.cpu().numpy()[:, None]
            edited = k.apply_to_labels(y_test).cpu().numpy()
            runs.append(intervention_scores(probs >= thresholds, after, labels > 0.5, edited > 0.5, changed, scored))
    return {
        "modality": name,
        "samples": int(z_test.shape[0]),
        "classification": classification_metrics(probs, labels, thresholds, ann),
        "interventions": {key: float(np.mean([r[key] for r in runs])) for key in runs[0]} | {"seeds": seeds},
        "steps": t["steps"],
    }
