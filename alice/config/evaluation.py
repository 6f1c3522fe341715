"""Settings of evaluation and paired fine-tuning, with their defaults written once (the CLI reads them from here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: fine-tuning from an ALICE space uses this much smaller a learning rate than training from scratch (the held-out
#: pairs' margin keeps the start where tuning does not help, so the rate can be large enough to help where it can)
ALICE_LR_DIVISOR = 10
#: paired fine-tuning methods: name -> (start from the ALICE encoders?, loss)
METHODS = {
    "clip": (False, "clip"),
    "cyclip": (False, "cyclip"),
    "alice+clip": (True, "clip"),
    "alice+cyclip": (True, "cyclip"),
}
LOSSES = ("clip", "cyclip")
#: paired training records its loss, and checks the held-out pairs, every this many steps
CHECK_EVERY = 50


@dataclass
class PairedSpec:
    """How one paired fine-tuning run trains (`alice align`, `alice sweep pairs`, `alice eval --pairs`)."""

    steps: int = 1000
    lr: float = 1e-3  # from scratch; from ALICE it is lr / ALICE_LR_DIVISOR
    batch_size: int = 256
    seed: int = 0
    # from ALICE: this share of the N pairs is held out, and the step (0, the start, included) with the lowest
    # contrastive loss on them is kept, checked every CHECK_EVERY steps; 0 trains on all N and keeps the last step
    holdout: float = 0.2
    patience: int = 250  # stop once the held-out loss has not improved for this many steps (0: run every step)
    # a step replaces the kept one only when the held-out pairs' losses fall by more than this many standard errors
    # of their mean change: a fall the held-out pairs cannot tell from noise keeps the earlier step (0: any fall)
    margin: float = 2.0

    def lr_for(self, method: str) -> float:
        from_alice, _ = METHODS[method]
        return self.lr / ALICE_LR_DIVISOR if from_alice else self.lr

    def holdout_for(self, method: str) -> float:
        """The held-out share: early stopping guards a start worth keeping, so training from scratch uses every pair."""
        from_alice, _ = METHODS[method]
        return self.holdout if from_alice else 0.0


@dataclass
class EvalSpec:
    """How `alice eval` scores a space."""

    device: str = "auto"
    seeds: int = 5  # random intervention draws to average over
    block_scenes: int = 1000  # scenes per block of the authors' 1K-block retrieval protocol
    seed: int = 0  # the no-training baseline's random encoders: each pair's seed derives from this and its two names
    pairs: int | None = None  # also train CLIP, CyCLIP and ALICE then CLIP on this many pairs (Table 2)
    paired: PairedSpec | None = None  # their settings (default: PairedSpec())
    # data set options replacing the adapters' own for the val and test splits (`--set data.KEY=VALUE`): a shifted
    # test distribution; training data (the post-training baseline's) keeps the options the space was trained on
    data: dict[str, Any] = field(default_factory=dict)


#: `alice align`: a tuned encoder's decoder is fitted again for this many steps (or the adapter's own steps if fewer)
DECODER_STEPS = 3000

PAIRED_DEFAULTS = PairedSpec()
EVAL_DEFAULTS = EvalSpec()
