"""Validation AUROC of the digits reference under recipe variations (how the defaults were chosen).

    python benchmarks/digits_settings.py "training.steps=1500,training.rec_weight=100.0" \
        "training.steps=1500,training.rec_weight=1.0"

Each argument is a comma-separated list of ``--set`` overrides of ``digits-image``;
prints val AUROC and balanced accuracy of the reference modality, the final
losses and the wall time. Uses the feature cache like the CLI.
"""

from __future__ import annotations

import sys
import time

import torch

from alice.data.recipes import load_recipe
from alice.train.jobs import _intervention_from_recipe, _thresholds_and_metrics
from alice.train.preparation import load_data
from alice.train.stages import ReferenceTrainer


def main() -> None:
    device = torch.device("cpu")
    for spec in sys.argv[1:] or ["training.steps=1500"]:
        r = load_recipe("digits-image", [s for s in spec.split(",") if s])
        data = load_data(r, None, device)
        design = _intervention_from_recipe(r, data.dataset.vocabulary, device)
        start = time.perf_counter()
        E, D, C, M, h = ReferenceTrainer(data, design, r.model, r.training, device).train()
        _, metrics = _thresholds_and_metrics(data, E, C)
        last = {k: round(v, 4) for k, v in h.last().items()}
        print(
            f"{spec}: val AUROC {metrics['auroc']:.3f}, balanced accuracy {metrics['balanced_accuracy']:.3f}, "
            f"{time.perf_counter() - start:.0f} s, final {last}",
            flush=True,
        )


if __name__ == "__main__":
    main()
