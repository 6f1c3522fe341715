"""Where the time of one paper-size ALICE step goes, and what each Adam kernel costs.

    python benchmarks/profile_step.py                      # non-linear design, fused Adam, eager, cpu
    python benchmarks/profile_step.py --compile            # the same step under torch.compile (inductor)
    python benchmarks/profile_step.py --design affine --optimizer auto

Prints the torch profiler's table (operators by self time, two steps; with
``--compile`` inductor's generated kernels are named in it), the time per
step of each kind of work (matrix products, dropout masks, fused elementwise
kernels, Adam, copies, the rest) and the time of one ``Adam(amsgrad).step``
over 8 x 1M parameters with each kernel.
"""

from __future__ import annotations

import argparse
import collections
import time

import torch
from train_step import DESIGNS, SIZES, _alice_step


def adam_timings(device: torch.device) -> dict[str, float]:
    params = [torch.randn(1024, 1024, device=device) for _ in range(8)]
    out = {}
    for name, kw in (("loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        qs = [p.clone().requires_grad_() for p in params]
        opt = torch.optim.Adam(qs, lr=1e-3, amsgrad=True, **kw)
        best = float("inf")
        for _ in range(6):
            for q in qs:
                q.grad = torch.randn_like(q)
            t = time.perf_counter()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        out[name] = 1000 * best
    return out


def kind_of_work(name: str) -> str:
    """The kind of work a profiler event does, by its name."""
    if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"):
        return "matrix products"
    if any(k in name for k in ("dropout", "bernoulli", "random_", "uniform_")):
        return "dropout masks"
    if name.startswith("graph_"):  # inductor's generated kernels (cpp.enable_kernel_profile)
        return "fused kernels"
    if name.startswith(("aten::_fused_adam", "aten::_foreach")):  # --optimizer loop: its ops are "everything else"
        return "Adam"
    if name == "aten::copy_":
        return "copies"
    return "everything else"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--design", default="nonlinear", choices=DESIGNS)
    p.add_argument("--optimizer", default="fused")
    p.add_argument("--compile", action="store_true", help="training.compile = default (inductor)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(args.device)
    fast = {"optimizer": args.optimizer}
    if args.compile:
        from torch._inductor import config as inductor_config

        inductor_config.cpp.enable_kernel_profile = True  # name the generated kernels in the profile
        fast["compile"] = "default"
    step = _alice_step(SIZES["paper"], args.design, device, fast, 1)
    for _ in range(3):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    n = 2
    with profile(activities=activities) as prof:
        for _ in range(n):
            step()
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=15))
    kinds: collections.Counter[str] = collections.Counter()
    for e in averages:
        kinds[kind_of_work(e.key)] += e.self_cpu_time_total / 1000 / n
    total = sum(kinds.values())
    print(f"per step, by kind of work (self CPU time, {total:.1f} ms in all):")
    for kind, ms in kinds.most_common():
        print(f"  {kind:16} {ms:7.1f} ms  {100 * ms / total:5.1f}%")
    print(
        "Adam(amsgrad).step over 8 x 1M parameters, ms (best of 6):",
        {k: round(v, 1) for k, v in adam_timings(device).items()},
    )


if __name__ == "__main__":
    main()
