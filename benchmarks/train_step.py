"""Steps per second and peak memory of the full ALICE training step.

    python benchmarks/train_step.py                 # paper and digits sizes, cpu (and cuda when present)
    python benchmarks/train_step.py --sizes paper --steps 20 --device cpu

The step timed is exactly the one ``alice reference build`` runs
(:func:`alice.training.train_reference`'s inner step: rec + cls update of
E, D, C, then the semantic update of M with the latent recomputed), on random
features and labels already on the device. Stage 2's step is timed too.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from alice.data import ModalityData
from alice.interventions import NonLinearIntervention
from alice.labels import LabelMapping
from alice.recipes import TrainingSpec
from alice.training import train_adapter, train_reference

SIZES = {  # smallest first: on CPU the peak memory reported is the process peak so far
    # the built-in digits recipe: 400 pixels, 10 classes, latent 64
    "digits": dict(feature_dim=400, classes=10, latent=64, hidden=[512, 512], m_hidden=256, batch=256, prompt_dim=384, n=20_000),
    # the paper: 768-d ViT features, 80 COCO classes, latent 512, MLPs [1024, 1024], non-linear M (hidden 1024)
    "paper": dict(feature_dim=768, classes=80, latent=512, hidden=[1024, 1024], m_hidden=1024, batch=1024, prompt_dim=768, n=20_000),
}


class _Fake:
    def __init__(self, dim):
        self.feature_dim = dim


def synthetic(size: dict, device: torch.device) -> ModalityData:
    g = torch.Generator().manual_seed(0)
    vocab = [f"c{i}" for i in range(size["classes"])]
    data = ModalityData("bench", None, _Fake(size["feature_dim"]), LabelMapping({c: c for c in vocab}, vocab))
    for split, n in (("train", size["n"]), ("val", 1024)):
        data.features[split] = torch.randn(n, size["feature_dim"], generator=g).to(device)
        data.labels[split] = (torch.rand(n, size["classes"], generator=g) < 0.05).float().to(device)
    return data


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def bench(name: str, device: torch.device, steps: int) -> dict:
    s = SIZES[name]
    data = synthetic(s, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    results = {"sizes": name, "device": str(device), "threads": torch.get_num_threads(), "batch": s["batch"]}
    t = TrainingSpec(steps=steps, batch_size=s["batch"], eval_every=0)
    M = NonLinearIntervention(s["classes"], s["latent"], hidden=s["m_hidden"], prompt_dim=s["prompt_dim"], num_templates=4)
    warm = TrainingSpec(steps=3, batch_size=s["batch"], eval_every=0)
    train_reference(data, M, warm, s["latent"], s["hidden"], s["hidden"], 0.1, device)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    _, _, C, M, h = train_reference(data, M, t, s["latent"], s["hidden"], s["hidden"], 0.1, device)
    results["stage1_steps_per_s"] = round(steps / h.seconds, 2)
    results["stage1_ms_per_step"] = round(1000 * h.seconds / steps, 1)
    _, _, h2 = train_adapter(data, C, M, t, s["latent"], s["hidden"], device)
    results["stage2_steps_per_s"] = round(steps / h2.seconds, 2)
    results["stage2_ms_per_step"] = round(1000 * h2.seconds / steps, 1)
    results["peak_memory_mb"] = round(peak_memory_mb(device), 1)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--device", nargs="+", default=None, help="default: cpu, and cuda when present")
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    rows = []
    for dev in devices:
        for name in args.sizes:
            start = time.perf_counter()
            r = bench(name, torch.device(dev), args.steps)
            r["wall_s"] = round(time.perf_counter() - start, 1)
            print(json.dumps(r), flush=True)
            rows.append(r)
    print(f"{'sizes':8} {'device':6} {'stage 1 steps/s':>16} {'ms/step':>8} {'stage 2 steps/s':>16} {'ms/step':>8} {'peak MB':>8}")
    for r in rows:
        print(f"{r['sizes']:8} {r['device']:6} {r['stage1_steps_per_s']:16} {r['stage1_ms_per_step']:8} {r['stage2_steps_per_s']:16} {r['stage2_ms_per_step']:8} {r['peak_memory_mb']:8}")


if __name__ == "__main__":
    main()
