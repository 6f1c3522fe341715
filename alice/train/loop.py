"""The loop both training stages run: batches drawn on the device, losses recorded, an estimate of a long run,
checkpoints saved and resumed (:mod:`alice.train.checkpoints`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alice import console, distributed
from alice.config.training import TrainingSpec
from alice.errors import AliceError
from alice.train import checkpoints
from alice.train.checkpoints import RunState
from alice.train.history import Trackers, history_record


class BatchSampler:
    """Shuffled passes over ``n`` items, batch by batch, generated on ``device``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.batch_size, self.gen, self.device = n, batch_size, generator, device
        self._perm = torch.empty(0, dtype=torch.long, device=device)
        self._pos = 0

    def next(self) -> torch.Tensor:
        if self.n < self.batch_size:  # tiny data: draw with replacement
            return torch.randint(self.n, (self.batch_size,), generator=self.gen, device=self.device)
        if self._pos + self.batch_size > self._perm.numel():
            self._perm = torch.randperm(self.n, generator=self.gen, device=self.device)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


@dataclass
class History:
    """What a run recorded: its points (train losses: running means since the previous point) and its timing."""

    records: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    log_every: int = 0
    timing: list[list[float]] = field(default_factory=list)  # [step, steps/s since the previous point]

    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}


@dataclass
class Checkpointing:
    """Where and how often a run saves checkpoints, and whether it resumes from one."""

    folder: Path
    every: int = 0  # steps between checkpoints; 0: none
    resume: bool = False
    fingerprint: str = ""  # of the run's settings; a checkpoint of other settings is refused


#: the first steps are timed for an estimate of the whole run: this many, or this many seconds, whichever first
ESTIMATE_STEPS, ESTIMATE_SECONDS = 20, 5.0
#: a run estimated to take longer than this says so before it goes on (a status line; the bar shows it too)
LONG_RUN_SECONDS = 120.0


def estimate_line(description: str, timed_steps: int, seconds: float, left: int) -> str | None:
    """What a long run says once its first steps are timed (None: a short run, said nothing of)."""
    per_step = seconds / max(1, timed_steps)
    if per_step * left < LONG_RUN_SECONDS:
        return None
    return (
        f"{description}: about {console.duration_text(per_step * left)} for the {left:,} steps left "
        f"({per_step * 1000:.1f} ms per step over the first {timed_steps}); Ctrl-C stops it"
    )


def run_steps(
    steps: int,
    description: str,
    step_fn,
    validate,
    eval_every: int,
    run: RunState,
    checkpointing: Checkpointing | None = None,
    log_every: int = 50,
    trackers: Trackers | None = None,
) -> History:
    """Run ``step_fn(step) -> dict of loss tensors`` with progress, recording losses and checkpoints.

    Every ``log_every`` steps (and at the last) a point: the mean of each loss since the previous point,
    the learning rate, and at each ``eval_every`` the validation figures; ``trackers`` receive each point
    with its steps/s.
    """
    history = History(log_every=log_every)
    sums: dict[str, torch.Tensor] = {}
    count, first = 0, 1
    if checkpointing is not None and checkpointing.resume:
        restored = checkpoints.load(checkpointing.folder, run, checkpointing.fingerprint, run.sampler.device)
        if restored is None:
            console.info(f"no checkpoint at {checkpointing.folder}; starting at step 0")
        else:
            done, sums, count, saved = restored
            history.records, history.seconds = saved["records"], saved["seconds"]
            history.timing = saved.get("timing", [])
            first = done + 1
            console.info(f"resuming from the checkpoint at step {done}")
    seconds_before = history.seconds
    start = time.perf_counter()
    estimated = False
    optimizer = next(iter(run.optimizers.values()), None) if run is not None else None  # its rate goes in each point
    window = (first - 1, start)  # the step and time of the previous point: steps/s between points
    with console.progress(description, steps) as bar:
        bar.advance(first - 1)
        for step in range(first, steps + 1):
            losses = step_fn(step)
            if not estimated and (
                step - first + 1 >= ESTIMATE_STEPS or time.perf_counter() - start >= ESTIMATE_SECONDS or step == steps
            ):
                estimated = True
                if torch.cuda.is_available():
                    torch.cuda.synchronize()  # queued GPU work is timed too
                line = estimate_line(description, step - first + 1, time.perf_counter() - start, steps - step)
                if line:
                    console.info(line)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.detach()
            count += 1
            if step % log_every == 0 or step == steps:
                # under torchrun: the mean over processes of their slices' losses = the global batch's
                means = {k: float(v) / count for k, v in distributed.mean_over_ranks(sums).items()}
                if not all(map(_finite, means.values())):
                    raise AliceError(f"training diverged at step {step} (losses {means}); try a lower training.lr")
                now = time.perf_counter()
                rate = (step - window[0]) / max(now - window[1], 1e-9)
                window = (step, now)
                record: dict[str, float] = {"step": step, **means}
                if optimizer is not None:
                    record["lr"] = float(optimizer.param_groups[0]["lr"])
                if (step == steps or (eval_every and step % eval_every == 0)) and distributed.is_main():
                    record.update(validate())  # the weights are the same on every process: rank 0 reports
                history.records.append(record)
                history.timing.append([step, round(rate, 2)])
                if trackers is not None:
                    trackers.log(step, {**record, "steps_per_second": rate})
                bar.note(" ".join(f"{k} {v:.4f}" for k, v in means.items()))
                sums, count = {}, 0
            if (
                checkpointing is not None
                and checkpointing.every
                and step % checkpointing.every == 0
                and step < steps
                and distributed.is_main()
            ):
                seconds = seconds_before + time.perf_counter() - start
                checkpoints.save(
                    checkpointing.folder,
                    run,
                    step,
                    sums,
                    count,
                    {"records": history.records, "seconds": seconds, "timing": history.timing},
                    checkpointing.fingerprint,
                )
            bar.advance()
    history.seconds = seconds_before + time.perf_counter() - start
    return history


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


def training_summary(t: TrainingSpec, history: History, device: torch.device) -> dict[str, Any]:
    return {
        "settings": vars(t).copy(),
        "device": str(device),
        "seconds": round(history.seconds, 2),
        "steps_per_second": round(t.steps / history.seconds, 2) if history.seconds else None,
        "final": history.last(),
        # the curves themselves are in the adapter's history.jsonl; the steps/s between its points are here
        "history": history_record(len(history.records), history.log_every),
        "timing": {
            "at_step": [int(s) for s, _ in history.timing],
            "steps_per_second": [r for _, r in history.timing],
        },
    }
