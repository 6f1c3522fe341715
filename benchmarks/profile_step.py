"""Where the time of one paper-size ALICE step goes, and what each Adam kernel costs.

    python benchmarks/profile_step.py                      # non-linear design, fused Adam, eager, cpu
    python benchmarks/profile_step.py --design affine --optimizer auto

Prints the torch profiler's table (operators by self time, two steps) and the
time of one ``Adam(amsgrad).step`` over 8 x 1M parameters with each kernel.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--design", default="nonlinear", choices=DESIGNS)
    p.add_argument("--optimizer", default="fused")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(args.device)
    step = _alice_step(SIZES["paper"], args.design, device, {"optimizer": args.optimizer}, 1)
    for _ in range(3):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(2):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    print("Adam(amsgrad).step over 8 x 1M parameters, ms (best of 6):",
          {k: round(v, 1) for k, v in adam_timings(device).items()})


if __name__ == "__main__":
    main()
