"""Feature-extraction throughput of the offline backbones on the digits data.

    python benchmarks/extract.py                    # cpu (and cuda when present)
    python benchmarks/extract.py --n 512 --device cpu

Times ``backbone.extract`` in its own batch size, after one warm-up batch,
without the cache.
"""

from __future__ import annotations

import argparse
import time

import torch

from alice.plugins import get_registry

CASES = [
    ("pixels", {"size": 20}, "digits-image"),
    ("mobilenet-v2", {"size": 64}, "digits-image"),
    ("mobilenet-v2", {"size": 96}, "digits-image"),
    ("mobilenet-v2", {"size": 224}, "digits-image"),
    ("minilm", {}, "digits-text"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=512, help="inputs per backbone (a quarter of it at 224 px)")
    p.add_argument("--device", nargs="+", default=None)
    args = p.parse_args()
    reg = get_registry()
    print(f"{'backbone':14} {'options':14} {'device':6} {'items/s':>9}")
    for dev in args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])):
        device = torch.device(dev)
        for name, options, dataset in CASES:
            backbone = reg.backbone(name)(**options)
            n = args.n // 4 if options.get("size") == 224 else args.n
            inputs = reg.dataset(dataset)(train=max(n, 64)).split("train").inputs
            backbone.extract(inputs[: backbone.batch_size], device)  # warm-up, weights loaded
            start = time.perf_counter()
            for lo in range(0, n, backbone.batch_size):
                backbone.extract(inputs[lo : min(n, lo + backbone.batch_size)], device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rate = n / (time.perf_counter() - start)
            print(f"{name:14} {str(options):14} {dev:6} {rate:9.0f}", flush=True)


if __name__ == "__main__":
    main()
