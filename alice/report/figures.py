"""The report's figures: the shared latent space projected to 2-D, by label and modality, and one panel per class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice.errors import AliceError

MARKERS = ["o", "^", "s", "D", "P", "X", "v", "*"]
PROJECTIONS = ("tsne", "pca")


@dataclass
class Items:
    """A sample of one modality's test split: latents, labels and the raw inputs to show."""

    name: str
    z: torch.Tensor  # [n, latent], as C_ref reads them (what M_ref edits)
    labels: np.ndarray  # [n, classes] bool, reference vocabulary
    inputs: list[Any]
    annotated: np.ndarray
    search: torch.Tensor  # [n, latent], as search compares them (Adapter.search_latents): what the maps show


def _colours(k: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def projection_figures(items: list[Items], vocab: list[str], folder: Path, method: str, seed: int) -> dict[str, Any]:
    """latent-map.png (colour: first label, marker: modality) and latent-by-class.png (one panel per class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = torch.cat([it.search for it in items]).numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        xy = TSNE(
            n_components=2, init="pca", random_state=seed, perplexity=min(30.0, max(5.0, (len(z) - 1) / 4))
        ).fit_transform(z)
    elif method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(z)
    else:
        raise AliceError(f"unknown projection {method!r} (tsne or pca)")
    labels = np.concatenate([it.labels for it in items])
    which = np.concatenate([np.full(len(it.z), i) for i, it in enumerate(items)])
    colours = _colours(len(vocab))
    first = np.where(labels.any(1), labels.argmax(1), -1)

    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    for m, it in enumerate(items):
        sel = which == m
        c = [colours[f] if f >= 0 else (0.6, 0.6, 0.6, 1) for f in first[sel]]
        ax.scatter(
            xy[sel, 0], xy[sel, 1], c=c, marker=MARKERS[m % len(MARKERS)], s=14, alpha=0.75, linewidths=0, label=it.name
        )
    legend = ax.legend(title="modality", loc="upper right", fontsize=8)
    for h in legend.legend_handles:
        h.set_color("black")
    ax.add_artist(legend)
    shown = [c for c in range(len(vocab)) if (first == c).any()][:20]
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[c], label=vocab[c]) for c in shown]
    ax.legend(handles=handles, title="first label", loc="lower right", fontsize=7, ncol=2)
    ax.set_title(f"shared latent space ({method.upper() if method == 'pca' else 't-SNE'}), test items")
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(folder / "latent-map.png")
    plt.close(fig)

    counts = labels.sum(0)
    classes = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0][:12]
    cols = 4
    rows = max(1, -(-len(classes) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.8 * rows), dpi=90, squeeze=False)
    for ax, c in zip(axes.flat, classes):
        ax.scatter(xy[:, 0], xy[:, 1], c="#ddd", s=4, linewidths=0)
        for m in range(len(items)):
            sel = (which == m) & labels[:, c]
            ax.scatter(xy[sel, 0], xy[sel, 1], color=colours[c], marker=MARKERS[m % len(MARKERS)], s=8, linewidths=0)
        ax.set_title(vocab[c], fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[len(classes) :]:
        ax.set_axis_off()
    fig.suptitle("items holding each class (markers: modalities as above)", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "latent-by-class.png")
    plt.close(fig)
    return {"method": method, "points": int(len(z)), "classes_in_panels": [vocab[c] for c in classes]}
