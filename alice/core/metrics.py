"""Metrics, defined once (the evaluation of docs/how-it-works.md): classification, interventions, retrieval.

Training calibrates each adapter's thresholds with them; evaluation scores the test splits with them.

ROC curves and AUROC come from scikit-learn; retrieval is a matrix product
on torch tensors, in blocks, so a large gallery never needs its full
similarity matrix at once.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from alice.core.similarity import top_k


def youden_thresholds(probs: np.ndarray, labels: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """Per-class threshold maximising Youden's J = TPR - FPR (0.5 where undefined)."""
    out = np.full(probs.shape[1], 0.5, dtype=np.float64)
    for c in np.flatnonzero(annotated):
        y = labels[:, c]
        if 0 < y.sum() < len(y):
            fpr, tpr, thr = roc_curve(y, probs[:, c])
            best = int(np.argmax(tpr - fpr))
            out[c] = float(min(thr[best], 1.0))
    return out


def balanced_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """(TPR + TNR) / 2 over the given entries; a side with no entries is left out."""
    pos, neg = target > 0.5, target <= 0.5
    parts = []
    if pos.any():
        parts.append(float((pred[pos] > 0.5).mean()))
    if neg.any():
        parts.append(float((pred[neg] <= 0.5).mean()))
    return float(np.mean(parts)) if parts else float("nan")


def _scored(labels: np.ndarray, annotated: np.ndarray) -> list[int]:
    """The annotated classes with both outcomes among ``labels`` (the only ones an AUROC exists for)."""
    return [int(c) for c in np.flatnonzero(annotated) if 0 < labels[:, c].sum() < len(labels)]


def mean_auroc(probs: np.ndarray, labels: np.ndarray, annotated: np.ndarray) -> float:
    """Mean AUROC over annotated classes with both outcomes (NaN when there is none)."""
    aurocs = [roc_auc_score(labels[:, c], probs[:, c]) for c in _scored(labels, annotated)]
    return float(np.mean(aurocs)) if aurocs else float("nan")


def classification_metrics(
    probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, annotated: np.ndarray
) -> dict[str, float]:
    """Mean AUROC, mean and min balanced accuracy over annotated classes with both outcomes."""
    pred = probs >= thresholds[None, :]
    scored = _scored(labels, annotated)
    baccs = [balanced_accuracy(pred[:, c].astype(float), labels[:, c]) for c in scored]
    return {
        "auroc": mean_auroc(probs, labels, annotated),
        "balanced_accuracy": float(np.mean(baccs)) if baccs else float("nan"),
        "balanced_accuracy_min": float(np.min(baccs)) if baccs else float("nan"),
        "classes_scored": len(scored),
    }


def intervention_scores(
    pred_before: np.ndarray,
    pred_after: np.ndarray,
    labels: np.ndarray,
    edited_labels: np.ndarray,
    changed: np.ndarray,
    scored: np.ndarray,
) -> dict[str, float]:
    """Score predictions after an intervention against Delta_k(y).

    Only entries the model got right before the intervention are scored
    (``pred_before == labels``), and only where ``scored`` (annotated classes of
    samples that had an intervention). "changed": accuracy on the two classes the
    intervention changed; "unchanged": balanced accuracy on all other classes.
    """
    right_before = (pred_before == labels) & scored
    ch = right_before & changed
    un = right_before & ~changed
    return {
        "changed": float((pred_after[ch] == edited_labels[ch]).mean()) if ch.any() else float("nan"),
        "unchanged": balanced_accuracy(pred_after[un].astype(float), edited_labels[un]),
        "entries_changed": int(ch.sum()),
        "entries_unchanged": int(un.sum()),
    }


def _topk_blocks(query: torch.Tensor, gallery: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the top-k gallery items per query (cosine: inputs are on the sphere), as `alice search` finds them."""
    return top_k(query, gallery, k)[1]


def label_retrieval(
    zq: torch.Tensor, yq: np.ndarray, zg: torch.Tensor, yg: np.ndarray, annotated: np.ndarray
) -> dict[str, float]:
    """Top-1 retrieved item's label set equals (exact) or contains (superset) the query's."""
    top1 = _topk_blocks(zq, zg, 1)[:, 0].cpu().numpy()
    a = annotated.astype(bool)
    q, g = yq[:, a] > 0.5, yg[top1][:, a] > 0.5
    return {
        "label_exact": float((q == g).all(axis=1).mean()),
        "label_superset": float((~q | g).all(axis=1).mean()),
    }


def counterfactual_retrieval(
    z_edited: torch.Tensor,
    z_plain: torch.Tensor,
    target: np.ndarray,
    zg: torch.Tensor,
    yg: np.ndarray,
    annotated: np.ndarray,
    removed: np.ndarray,
    added: np.ndarray,
) -> dict[str, float]:
    """How often the top-1 item of an edited query shows the edited label set, against the unedited query.

    ``target`` is the edited label set Delta_k(y) of each query; "exact": the top-1 item's labels
    equal it (over ``annotated`` classes); "swap": the top-1 item has the added class and not the
    removed one. The ``plain_*`` entries score the search of the unedited query against the same target.
    """
    a = annotated.astype(bool)
    t = target[:, a] > 0.5
    out: dict[str, float] = {"queries": float(len(target))}
    for name, z in (("counterfactual", z_edited), ("plain", z_plain)):
        top1 = _topk_blocks(z, zg, 1)[:, 0].cpu().numpy()
        got = yg[top1] > 0.5
        rows = np.arange(len(top1))
        out[f"{name}_exact"] = float((got[:, a] == t).all(axis=1).mean())
        out[f"{name}_swap"] = float((got[rows, added] & ~got[rows, removed]).mean())
    return out


def recall_at_k(
    zq: torch.Tensor, pq: list[str], zg: torch.Tensor, pg: list[str], ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    """R@k: a hit when any of the top-k gallery items shows the query's scene (same pair id)."""
    top = _topk_blocks(zq, zg, max(ks)).cpu().numpy()
    gid = {p: i for i, p in enumerate(dict.fromkeys(pg))}
    g_codes = np.array([gid[p] for p in pg])
    q_codes = np.array([gid.get(p, -1) for p in pq])
    hits = g_codes[top] == q_codes[:, None]
    return {f"R@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}


def label_set_ceiling(
    yq: np.ndarray,
    pq: list[str],
    yg: np.ndarray,
    pg: list[str],
    annotated: np.ndarray,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, float]:
    """The best R@k any search that sees only label sets can expect: ties broken at random.

    Such a search ranks the gallery items with exactly the query's label set (over ``annotated``
    classes) first, in random order. A query with ``G`` of them, ``c`` of which show its scene
    (same pair id, so any caption of an image counts, as in :func:`recall_at_k`), finds one in
    its top k with probability ``1 - C(G - c, k) / C(G, k)`` (1 once k >= G - c + 1); the mean
    over queries. Label exact retrieval is 1 for it by construction.
    """
    a = annotated.astype(bool)
    keys_g = [row.tobytes() for row in (yg[:, a] > 0.5)]
    groups: dict[bytes, list[str]] = {}
    for key, p in zip(keys_g, pg):
        groups.setdefault(key, []).append(p)
    hits = {k: [] for k in ks}
    for row, p in zip(yq[:, a] > 0.5, pq):
        same = groups.get(row.tobytes(), [])
        G, c = len(same), sum(1 for x in same if x == p)
        for k in ks:
            if c == 0:
                hits[k].append(0.0)
                continue
            miss = 1.0  # probability that the first k of G shuffled items hold none of the c hits
            for i in range(min(k, G)):
                miss *= max(G - c - i, 0) / (G - i)
            hits[k].append(1.0 - miss)
    return {f"R@{k}": float(np.mean(v)) if v else float("nan") for k, v in hits.items()}


def recall_at_k_blocks(
    zq: torch.Tensor,
    pq: list[str],
    zg: torch.Tensor,
    pg: list[str],
    block_scenes: int = 1000,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, float]:
    """The authors' protocol: R@k within blocks of ``block_scenes`` scenes, averaged over blocks."""
    scenes = list(dict.fromkeys(pg))
    results = []
    for lo in range(0, len(scenes), block_scenes):
        keep = set(scenes[lo : lo + block_scenes])
        qi = [i for i, p in enumerate(pq) if p in keep]
        gi = [i for i, p in enumerate(pg) if p in keep]
        if qi and gi:
            r = recall_at_k(zq[qi], [pq[i] for i in qi], zg[gi], [pg[i] for i in gi], ks)
            results.append((len(qi), r))
    n = sum(w for w, _ in results)
    return {k: sum(w * r[k] for w, r in results) / n for k in results[0][1]} if results else {}


def modality_gap(za: torch.Tensor, zb: torch.Tensor, k: int = 10) -> dict[str, float]:
    """How far apart two modalities' latents sit (Liang et al. 2022's modality gap), two ways.

    ``mean_distance``: the distance between the two mean latents (``mean_cosine``: the cosine
    between them); ``own_neighbours_a``: over the items of ``za``, the share of their ``k`` nearest
    neighbours (cosine, the item itself left out) in the mixed gallery ``za + zb`` that are of
    their own modality, ``chance_a`` what that share is when the modalities are mixed through and
    through ((n_a - 1) / (n_a + n_b - 1)); the same for ``zb``. One cloud per modality gives a
    share near 1, one shared cloud a share near chance.
    """
    za, zb = za.float(), zb.float()
    ma, mb = za.mean(0), zb.mean(0)
    na, nb = za.shape[0], zb.shape[0]
    mixed = torch.cat([za, zb])
    rows = _topk_blocks(mixed, mixed, k + 1)
    is_self = rows == torch.arange(na + nb)[:, None]  # the item itself, wherever ties put it, is left out
    neighbours = rows.gather(1, torch.argsort(is_self.int(), dim=1, stable=True)[:, :k])
    of_a = neighbours < na
    return {
        "mean_distance": float((ma - mb).norm()),
        "mean_cosine": float(torch.nn.functional.cosine_similarity(ma, mb, dim=0)),
        "mean_norm_a": float(ma.norm()),
        "mean_norm_b": float(mb.norm()),
        "own_neighbours_a": float(of_a[:na].float().mean()),
        "own_neighbours_b": float((~of_a[na:]).float().mean()),
        "chance_a": (na - 1) / (na + nb - 1),
        "chance_b": (nb - 1) / (na + nb - 1),
        "k": k,
    }
