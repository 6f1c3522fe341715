"""How a tuned encoder's decoder is best fitted again, measured by Table 1 (the cycle C_ref(E(D(M_ref(z))))).

    python benchmarks/decoder_fit.py TUNED_SPACE 500,3000 rec,rec+sem

``TUNED_SPACE`` is a folder ``alice align clip --decoder-steps 0`` wrote (the decoders as trained,
the encoders tuned on pairs). For each adapter, each number of steps and each variant, the decoder is fitted
again with :class:`alice.train.stages.DecoderTrainer` at the adapter's own rate, batch and loss weights:
``rec`` on reconstruction alone (the consistency loss's weight 0), ``rec+sem`` with stage 2's consistency
loss beside it (what ``alice align clip`` does). Prints, per run, Table 1 of the test split (AUROC, changed,
unchanged; 5 seeds of edits, as ``alice eval``) with the old decoder and with the fitted one, and the seconds
the fit took.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import torch

from alice.artifacts.loaded import ReferenceSpace
from alice.evaluation.paired import decoder_training
from alice.evaluation.run import _classification_and_interventions
from alice.train.stages import DecoderTrainer


def table_1(reference: ReferenceSpace, adapter, data) -> tuple[float, float, float]:
    r = _classification_and_interventions(reference, adapter, data, 5)
    cycle = r["interventions_cycle"]
    return round(r["classification"]["auroc"], 3), round(cycle["changed"], 3), round(cycle["unchanged"], 3)


def main(path: str, steps: str, variants: str) -> None:
    device = torch.device("cpu")
    reference = ReferenceSpace.load(path)
    for name in reference.adapter_names():
        adapter = reference.load_adapter(name).to(device)
        data = adapter.load_data(("train", "val", "test"), device)
        old = adapter.decoder
        print(f"{name}: old decoder {table_1(reference, adapter, data)}", flush=True)
        for n in (int(s) for s in steps.split(",")):
            for variant in variants.split(","):
                t = decoder_training(adapter, n)
                if variant == "rec":
                    t = replace(t, sem_weight=0.0)
                elif variant != "rec+sem":
                    raise SystemExit(f"unknown variant {variant!r} (rec, rec+sem)")
                start = time.perf_counter()
                trainer = DecoderTrainer(
                    data, adapter.encoder, old, reference.classifier, reference.intervention, t, device
                )
                adapter.decoder, _ = trainer.train()
                seconds = time.perf_counter() - start
                print(f"{name}: {variant}, {n} steps {table_1(reference, adapter, data)} ({seconds:.0f} s)", flush=True)
                adapter.decoder = old


if __name__ == "__main__":
    main(*sys.argv[1:4])
