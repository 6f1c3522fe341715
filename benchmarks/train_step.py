"""The ALICE training step against the authors' structure, with FLOPs, share of peak and memory.

    python benchmarks/train_step.py --quick              # paper sizes, every design, ~2 minutes on 2 CPU cores
    python benchmarks/train_step.py                      # more steps; cpu, and cuda when present
    python benchmarks/train_step.py --sizes digits paper --designs nonlinear --steps 20 --device cuda --compile
    python benchmarks/train_step.py --logging-cost 7 --sizes digits --designs global --steps 500
    python benchmarks/train_step.py --point-cost 300    # what one history point costs each tracker

Rows, per device, size and intervention design, each measured in its own
child process (so each row's peak memory is its own):

- ``baseline``: plain PyTorch, structured as the authors' code: nn.Sequential
  MLPs, two Adam(amsgrad) optimizers, batch indices and interventions drawn
  with numpy on the host and the batch copied to the device every step, the
  latent recomputed between the two updates, and the semantic update by
  ``loss.backward()`` (which also computes gradients for E, D, C that nobody
  uses);
- ``alice``: :class:`alice.train.stages.ReferenceTrainer`'s step with the recipe
  defaults (what ``alice reference build`` runs): batches drawn on the device,
  M's gradient alone through ``torch.autograd.grad``;
- ``alice-fast``: the same step with ``training.optimizer = "fused"`` (and,
  by default on CUDA, bf16 autocast; with ``--compile``, torch.compile:
  ``reduce-overhead`` = CUDA graphs on CUDA, ``default`` on CPU);
- ``alice-stage2`` (non-linear only): ``alice modality add``'s step.

FLOPs are counted analytically: 2*in*out per sample for every Linear in a
forward pass; backward counts the weight gradient (2*in*out) where that pass
trains the layer and the input gradient (2*in*out) where something upstream
needs it; elementwise work, losses and Adam are not counted. Every row is
credited with the FLOPs the method needs (the ``alice`` count), so GFLOP/s of
the baseline is its useful throughput. The peak is a square matmul
(2048 on CPU, 8192 on CUDA) timed in every child before its row, best of
several repetitions; the share of peak divides by the highest peak measured
in the run, so contention during one peak measurement cannot flatter a row.
``ms/step`` and ``% peak`` use the median timed step; ``best`` is the share
of the fastest timed step. ``beside`` (fp32 rows) times one more square matmul
right before and one right after every timed step and gives the median over
steps of the step's GFLOP/s divided by the rate of those two matmuls: the
share of the peak measured around the step, which a machine whose speed
drifts within a run cannot distort as much.

``--logging-cost ROUNDS`` measures instead what recording a run costs: whole training runs
(:class:`ReferenceTrainer`'s loop, progress bar included) of ``--steps`` steps, in turn with
logging on (the default spacing, about 250 points a run, each sent to a TensorBoard tracker
writing event files) and off (one point, at the last step; no tracker), the order alternating
each round; it reports the median steps/s of each and their ratio.

Then, per design, the **interleaved** measurement: every variant in one child
process, one step of each in turn per round (the order rotating), each step
between two square matmuls. What the machine does during a round it does to
every variant alike, so its ``vs base`` (the median over rounds of the
baseline's step time over the variant's, in the same round) and ``beside``
are the figures to compare variants by; the rows' own ``ms/step``, measured
minutes apart, move with the machine (this one's square matmul ranges
87-158 GFLOP/s within a minute).

On a shared machine other processes distort CPU timings badly (two OpenMP
threads wait on each other when a core is taken away), so before each CPU row
the benchmark waits for the cores to be free (``--wait-quiet``), and every row
reports ``other``: the cores other processes used while it was timed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIZES = {
    # the built-in digits recipe: 400 pixels, 10 classes, latent 64
    "digits": dict(
        feature_dim=400,
        classes=10,
        latent=64,
        hidden=[512, 512],
        c_hidden=[512, 512],
        m_hidden=256,
        batch=256,
        prompt_dim=384,
        n=20_000,
    ),
    # the paper: 768-d ViT features, 80 COCO classes, latent 512, MLPs [1024, 1024], M hidden 1024
    "paper": dict(
        feature_dim=768,
        classes=80,
        latent=512,
        hidden=[1024, 1024],
        c_hidden=[1024, 1024],
        m_hidden=1024,
        batch=1024,
        prompt_dim=768,
        n=20_000,
    ),
}
DESIGNS = ("global", "affine", "nonlinear")
TEMPLATES = 4


# ---------------------------------------------------------------- FLOPs


def _layers(sizes: list[int]) -> list[tuple[int, int]]:
    return list(zip(sizes[:-1], sizes[1:]))


def _pass(layers, batch: int, *, forward=True, wgrad=False, dgrad=False, first_dgrad=True) -> float:
    """FLOPs of one pass through ``layers``; ``first_dgrad``: whether the first layer's input needs a gradient."""
    total = 0.0
    for i, (a, b) in enumerate(layers):
        mm = 2.0 * batch * a * b
        total += mm * (forward + wgrad + (dgrad and (i > 0 or first_dgrad)))
    return total


def step_flops(s: dict, design: str, stage: int = 1) -> float:
    """Matmul FLOPs of one ALICE step (the work the method needs) at sizes ``s``."""
    B, F_, L, K = s["batch"], s["feature_dim"], s["latent"], s["classes"]
    E = _layers([F_, *s["hidden"], L])
    D = _layers([L, *reversed(s["hidden"]), F_])
    C = _layers([L, *s["c_hidden"], K])
    if design == "nonlinear":
        Mf = _layers([L + s["prompt_dim"], s["m_hidden"], L])
        m_fwd = _pass(Mf, B)
        m_train = _pass(Mf, B, forward=False, wgrad=True, dgrad=True, first_dgrad=False)
    elif design == "affine":
        m_fwd = 2 * 2.0 * B * L * L  # (A_j - A_i) z as two per-class products
        m_train = 2 * 2.0 * B * L * L  # their weight gradients (z is detached)
    else:
        m_fwd = m_train = 0.0
    if stage == 1:
        main = (
            _pass(E, B, wgrad=True, dgrad=True, first_dgrad=False)
            + _pass(D, B, wgrad=True, dgrad=True)
            + _pass(C, B, wgrad=True, dgrad=True)
        )
        recompute = _pass(E, B)
        # M forward, then D, E, C forward and backward to M's output (input gradients only), then M's weight gradients
        sem = m_fwd + _pass(D, B, dgrad=True) + _pass(E, B, dgrad=True) + _pass(C, B, dgrad=True) + m_train
        return main + recompute + sem
    # stage 2: E_m, D_m trained; C_ref and M_ref frozen
    main = (
        _pass(E, B, wgrad=True, dgrad=True, first_dgrad=False)
        + _pass(D, B, wgrad=True, dgrad=True)
        + _pass(C, B, dgrad=True)
    )
    sem = m_fwd + _pass(D, B) + _pass(E, B, wgrad=True, dgrad=True, first_dgrad=False) + _pass(C, B, dgrad=True)
    return main + sem


# ---------------------------------------------------------------- measurements


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, reps: int) -> float:
    """GFLOP/s of the best of ``reps`` n x n x n matmuls."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=g).to(dtype)
    b = torch.randn(n, n, device=device, generator=g).to(dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best / 1e9


def _cpu_busy_s() -> float:
    """Seconds of CPU time the whole machine has spent busy (all processes), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait`` s) until other processes use less than ``threshold`` cores; returns their last load."""
    deadline = time.perf_counter() + max_wait
    while True:
        b0, t0 = _cpu_busy_s(), time.perf_counter()
        time.sleep(1.0)
        load = (_cpu_busy_s() - b0) / (time.perf_counter() - t0)
        if load < threshold or time.perf_counter() > deadline:
            return load
        time.sleep(2.0)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _synthetic(s: dict, device: torch.device):
    from alice.data.labels import LabelMapping
    from alice.data.loading import ModalityData

    class _Fake:
        def __init__(self, dim):
            self.feature_dim = dim

    g = torch.Generator().manual_seed(0)
    vocab = [f"c{i}" for i in range(s["classes"])]
    data = ModalityData("bench", None, _Fake(s["feature_dim"]), LabelMapping({c: c for c in vocab}, vocab))
    for split, n in (("train", s["n"]), ("val", 1024)):
        data.features[split] = torch.randn(n, s["feature_dim"], generator=g)
        data.labels[split] = (torch.rand(n, s["classes"], generator=g) < 0.05).float()
    return data


def _intervention(design: str, s: dict):
    from alice.core.interventions import AffineIntervention, GlobalIntervention, NonLinearIntervention

    if design == "global":
        return GlobalIntervention(s["classes"], s["latent"])
    if design == "affine":
        return AffineIntervention(s["classes"], s["latent"])
    m = NonLinearIntervention(
        s["classes"], s["latent"], hidden=s["m_hidden"], prompt_dim=s["prompt_dim"], num_templates=TEMPLATES
    )
    m.set_prompt_embeddings(
        torch.randn(s["classes"], s["classes"], TEMPLATES, s["prompt_dim"], generator=torch.Generator().manual_seed(1))
    )
    return m


class AuthorsStep:
    """The baseline: plain PyTorch in the structure of the authors' training loop."""

    def __init__(self, s: dict, design: str, device: torch.device) -> None:
        from alice.core.interventions import InterventionBatch

        self.InterventionBatch, self.device, self.s = InterventionBatch, device, s
        torch.manual_seed(0)

        def mlp(sizes, dropout=0.0):
            layers = []
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(nn.Linear(a, b))
                if i < len(sizes) - 2:
                    layers += [nn.ELU()] + ([nn.Dropout(dropout)] if dropout else [])
            return nn.Sequential(*layers).to(device)

        self.E = mlp([s["feature_dim"], *s["hidden"], s["latent"]])
        self.D = mlp([s["latent"], *reversed(s["hidden"]), s["feature_dim"]])
        self.C = mlp([s["latent"], *s["c_hidden"], s["classes"]], 0.1)
        self.M = _intervention(design, s).to(device)
        self.opt = torch.optim.Adam(
            [*self.E.parameters(), *self.D.parameters(), *self.C.parameters()], lr=1e-3, amsgrad=True
        )
        self.opt_m = torch.optim.Adam(self.M.parameters(), lr=1e-3, amsgrad=True)
        data = _synthetic(s, torch.device("cpu"))
        self.X = data.features["train"].numpy()  # on the host, as numpy arrays
        self.Y = data.labels["train"].numpy()
        self.rng = np.random.default_rng(0)

    def encode(self, x):
        return F.normalize(self.E(x), dim=-1)

    def step(self) -> dict[str, torch.Tensor]:
        B, dev = self.s["batch"], self.device
        idx = self.rng.choice(self.X.shape[0], B, replace=False)  # batch gathered on the host
        xb, yb = self.X[idx], self.Y[idx]
        noise = self.rng.random(yb.shape)  # interventions drawn on the host too
        remove = np.where(yb > 0.5, noise, -1).argmax(1)
        add = np.where(yb <= 0.5, noise, -1).argmax(1)
        valid = (yb > 0.5).any(1) & (yb <= 0.5).any(1)
        target = yb.copy()
        target[np.arange(B)[valid], remove[valid]] = 0.0
        target[np.arange(B)[valid], add[valid]] = 1.0
        x, y = torch.from_numpy(xb).to(dev), torch.from_numpy(yb).to(dev)  # copied to the device every step
        k = self.InterventionBatch(
            torch.from_numpy(remove).to(dev),
            torch.from_numpy(add).to(dev),
            torch.from_numpy(valid).to(dev),
            torch.from_numpy(self.rng.integers(TEMPLATES, size=B)).to(dev),
        )
        target_t, mask = torch.from_numpy(target).to(dev), torch.from_numpy(valid).to(dev)
        # update 1: E, D, C on 100 * rec + cls
        self.C.train()
        z = self.encode(x)
        rec = F.mse_loss(self.D(z), x)
        cls = F.binary_cross_entropy_with_logits(self.C(z), y)
        self.opt.zero_grad()
        (100.0 * rec + cls).backward()
        self.opt.step()
        # update 2: M on the semantic loss, the latent recomputed after update 1
        self.C.eval()
        z = self.encode(x).detach()
        logits = self.C(self.encode(self.D(self.M(z, k))))
        per = F.binary_cross_entropy_with_logits(logits, target_t, reduction="none")
        sem = (per * mask[:, None]).sum() / (mask.sum() * per.shape[1]).clamp_min(1)
        self.opt_m.zero_grad()
        sem.backward()  # also fills E, D, C's .grad (zeroed by update 1 next step)
        self.opt_m.step()
        return {"rec": rec, "cls": cls, "sem": sem}


def _alice_step(s: dict, design: str, device: torch.device, fast: dict, stage: int):
    from alice.config.training import ModelSpec, TrainingSpec
    from alice.train.stages import AdapterTrainer, ReferenceTrainer

    data = _synthetic(s, device)
    for split in data.features:
        data.features[split], data.labels[split] = data.features[split].to(device), data.labels[split].to(device)
    t = TrainingSpec(steps=10**9, batch_size=s["batch"], eval_every=0, **fast)
    torch.manual_seed(0)
    M = _intervention(design, s)
    model = ModelSpec(
        latent_dim=s["latent"], encoder_hidden=s["hidden"], classifier_hidden=s["c_hidden"], classifier_dropout=0.1
    )
    ref = ReferenceTrainer(data, M, model, t, device)
    if stage == 1:
        return ref.step
    return AdapterTrainer(data, ref.classifier, ref.intervention, model, t, device).step


def logging_cost(s: dict, design: str, steps: int, rounds: int) -> dict:
    """Median steps/s of whole runs with logging on and off, interleaved (see the module's docstring)."""
    import tempfile
    from pathlib import Path

    from alice.config.training import ModelSpec, TrainingSpec
    from alice.plugin.tracker import Run
    from alice.train.history import Trackers
    from alice.train.stages import ReferenceTrainer

    device = torch.device("cpu")
    data = _synthetic(s, device)
    model = ModelSpec(
        latent_dim=s["latent"], encoder_hidden=s["hidden"], classifier_hidden=s["c_hidden"], classifier_dropout=0.1
    )
    rates: dict[str, list[float]] = {"on": [], "off": []}
    points: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as logs:
        for r in range(rounds):
            for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                t = TrainingSpec(
                    steps=steps, batch_size=s["batch"], eval_every=0, log_every=0 if mode == "on" else steps
                )
                torch.manual_seed(0)
                trainer = ReferenceTrainer(data, _intervention(design, s), model, t, device)
                trackers = Trackers(["tensorboard"] if mode == "on" else [], Path(logs))
                trackers.start(Run("reference build", "bench", {}, {}, steps, label=f"bench/{mode}-{r}"))
                history = trainer.run(f"logging {mode}", None, trackers)
                trackers.end({"status": "finished"})
                rates[mode].append(steps / history.seconds)
                points[mode] = len(history.records)
                print(json.dumps({"round": r, "mode": mode, "steps_per_second": rates[mode][-1]}), file=sys.stderr)
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    return {
        "steps": steps,
        "rounds": rounds,
        "points": points,
        "on": on,
        "off": off,
        "on_vs_off": on / off,
        "runs": rates,
    }


def point_cost(points: int) -> dict:
    """Milliseconds one point costs each built-in tracker (``Trackers.log``), median and mean over ``points``."""
    import tempfile
    from pathlib import Path

    from alice.plugin.tracker import Run
    from alice.train.history import Trackers

    values = {"rec": 0.5, "cls": 0.4, "sem": 0.3, "lr": 1e-3, "steps_per_second": 40.0}
    out = {}
    with tempfile.TemporaryDirectory() as logs:
        for name in ("tensorboard", "mlflow"):
            trackers = Trackers([name], Path(logs))
            trackers.start(Run("reference build", "bench", {}, {}, points, label=f"bench/{name}"))
            times = []
            for step in range(1, points + 1):
                start = time.perf_counter()
                trackers.log(step, {"step": step, **values})
                times.append((time.perf_counter() - start) * 1000)
            trackers.end({"status": "finished"})
            out[name] = {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times)}
    return out


def _stage(variant: str) -> int:
    return 2 if variant == "alice-stage2" else 1


def _peak_size(device: torch.device) -> int:
    """The side of the square matmul that stands for the device's peak."""
    return 8192 if device.type == "cuda" else 2048


def _fast_settings(variant: str, compile_step: bool, device: torch.device) -> dict:
    """The ``[training]`` settings of a variant's step."""
    if variant != "alice-fast":
        return {}
    fast = {"optimizer": "fused"}
    if compile_step:
        fast["compile"] = "reduce-overhead" if device.type == "cuda" else "default"
    return fast


def _make_step(variant: str, s: dict, design: str, device: torch.device, compile_step: bool):
    """(the variant's step function, whether it runs under bf16 autocast)."""
    from alice.config.training import TrainingSpec
    from alice.train.stages import FastPath

    if variant == "baseline":
        return AuthorsStep(s, design, device).step, False
    fast = _fast_settings(variant, compile_step, device)
    step = _alice_step(s, design, device, fast, _stage(variant))
    return step, FastPath.resolve(TrainingSpec(**fast), device).autocast is not None


class PeakBeside:
    """One square matmul timed right before and one right after a step.

    This machine's own matmul speed drifts within seconds (its 2048-square
    fp32 matmul ranges 87-158 GFLOP/s within one minute of an otherwise idle
    run), so a step is compared with the peak measured around it: the mean
    of the two matmul times is the peak of that moment.
    """

    def __init__(self, device: torch.device, n: int) -> None:
        g = torch.Generator(device=device).manual_seed(1)
        self.a, self.b = (torch.randn(n, n, device=device, generator=g) for _ in range(2))
        self.device, self.flop = device, 2.0 * n**3

    def _matmul_s(self) -> float:
        t0 = time.perf_counter()
        self.a @ self.b
        _sync(self.device)
        return time.perf_counter() - t0

    def time_step(self, step) -> tuple[float, float, dict]:
        """(seconds of the step, GFLOP/s of the peak around it, the step's losses)."""
        before = self._matmul_s()
        t0 = time.perf_counter()
        out = step()
        _sync(self.device)
        seconds = time.perf_counter() - t0
        after = self._matmul_s()
        return seconds, self.flop / ((before + after) / 2) / 1e9, {k: float(v) for k, v in out.items()}


def measure(cfg: dict) -> dict:
    """One row, in this process: peak, warm-up, timed steps, peak memory, last losses."""
    device = torch.device(cfg["device"])
    s = SIZES[cfg["size"]]
    cuda = device.type == "cuda"
    n_peak, reps = _peak_size(device), (10 if cuda else cfg["peak_reps"])
    row = {k: cfg[k] for k in ("device", "size", "design", "variant")}
    row["threads"] = torch.get_num_threads()
    row["peak_fp32_gflops"] = matmul_peak(device, torch.float32, n_peak, reps)
    if cuda:
        row["peak_bf16_gflops"] = matmul_peak(device, torch.bfloat16, n_peak, reps)
        torch.cuda.reset_peak_memory_stats(device)
        base_mem = torch.cuda.memory_allocated(device) / 2**20
    else:
        base_mem = _rss_mb()
    variant = cfg["variant"]
    step, row["bf16"] = _make_step(variant, s, cfg["design"], device, cfg.get("compile", False))
    for _ in range(cfg["warmup"]):
        step()
    _sync(device)
    beside = PeakBeside(device, n_peak)
    busy0, own0, wall0 = _cpu_busy_s(), _own_cpu_s(), time.perf_counter()
    times, peaks = [], []
    for _ in range(cfg["steps"]):
        seconds, peak, losses = beside.time_step(step)
        times.append(seconds)
        peaks.append(peak)
    del beside
    if cuda:  # and a stretch of steps without a sync between them, as training runs (on CPU the same thing)
        t0 = time.perf_counter()
        for _ in range(cfg["steps"]):
            step()
        _sync(device)
        row["ms_per_step_unsynced"] = 1000 * (time.perf_counter() - t0) / cfg["steps"]
    # cores that other processes kept busy while this row was timed (0 on a quiet machine)
    row["other_load"] = max(0.0, ((_cpu_busy_s() - busy0) - (_own_cpu_s() - own0)) / (time.perf_counter() - wall0))
    row["ms_per_step"] = 1000 * statistics.median(times)
    row["ms_per_step_min"] = 1000 * min(times)
    row["gflop"] = step_flops(s, cfg["design"], _stage(variant)) / 1e9
    # share of the fp32 matmul rate measured around each step, median over steps
    row["share_of_beside_peak"] = statistics.median(row["gflop"] / t / p for t, p in zip(times, peaks))
    if cuda:
        row["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["mem_over_idle_mb"] = row["peak_mem_mb"] - base_mem
    else:
        row["peak_mem_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        row["mem_over_idle_mb"] = row["peak_mem_mb"] - base_mem
    row["last_losses"] = losses
    row["aten_ops"] = count_ops(step)
    return row


def measure_interleaved(cfg: dict) -> list[dict]:
    """Every variant of one design in this process, their steps taken in turn.

    Round r times one step of each variant (the order rotating by one each
    round), each between two square matmuls. Whatever the machine does during
    a round, it does to every variant alike: the speed-up over the baseline is
    the median over rounds of the two steps' time ratio, and the share of peak
    the median of each step against the peak measured around it.
    """
    device = torch.device(cfg["device"])
    s = SIZES[cfg["size"]]
    variants = cfg["variants"]
    steps, bf16 = {}, {}
    for v in variants:
        steps[v], bf16[v] = _make_step(v, s, cfg["design"], device, cfg.get("compile", False))
        for _ in range(cfg["warmup"]):
            steps[v]()
    _sync(device)
    beside = PeakBeside(device, _peak_size(device))
    gflop = {v: step_flops(s, cfg["design"], _stage(v)) / 1e9 for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    shares: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(cfg["rounds"]):
        for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
            seconds, peak, _ = beside.time_step(steps[v])
            times[v].append(seconds)
            shares[v].append(gflop[v] / seconds / peak)
    rows = []
    for v in variants:
        row = {k: cfg[k] for k in ("device", "size", "design")}
        row.update(
            variant=v,
            bf16=bf16[v],
            rounds=cfg["rounds"],
            ms_per_step=1000 * statistics.median(times[v]),
            share_of_beside_peak=statistics.median(shares[v]),
            share_quartiles=statistics.quantiles(shares[v], n=4),
        )
        if "baseline" in times and v not in ("baseline", "alice-stage2"):
            ratios = [b / t for b, t in zip(times["baseline"], times[v])]
            row.update(speedup_paired=statistics.median(ratios), speedup_paired_min=min(ratios))
        rows.append(row)
    return rows


def count_ops(step) -> int:
    """Leaf ATen operators one step dispatches (views included): on a GPU, roughly its kernel launches."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children)


def _own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(cfg: dict, flag: str = "--child"):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, __file__, flag, json.dumps(cfg)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"row {cfg} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["paper"], choices=list(SIZES))
    p.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    p.add_argument("--device", nargs="+", default=None, help="default: cpu, and cuda when present")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row (default 20; --quick 5)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; --quick 2)")
    p.add_argument(
        "--quick", action="store_true", help="few steps per row: about 2 minutes at paper sizes on 2 CPU cores"
    )
    p.add_argument(
        "--compile", action="store_true", help="alice-fast also uses torch.compile (reduce-overhead on CUDA)"
    )
    p.add_argument("--no-stage2", action="store_true", help="leave out the stage-2 row")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=120,
        metavar="S",
        help="before each CPU row, wait up to S seconds for other processes to leave the cores (0: don't)",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="measure each row this many times (fresh processes) and keep the fastest"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of the interleaved measurement (every variant's steps in turn, one process; default: --steps)",
    )
    p.add_argument("--no-interleave", action="store_true", help="leave out the interleaved measurement")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument(
        "--logging-cost", type=int, default=0, metavar="ROUNDS", help="measure logging on against off instead"
    )
    p.add_argument("--point-cost", type=int, default=0, metavar="POINTS", help="measure one point's cost per tracker")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-interleaved", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))), flush=True)
        return
    if args.child_interleaved:
        print(json.dumps(measure_interleaved(json.loads(args.child_interleaved))), flush=True)
        return
    steps = args.steps or (5 if args.quick else 20)
    if args.point_cost:
        for name, r in point_cost(args.point_cost).items():
            print(f"{name}: {r['median_ms']:.3f} ms per point (median), {r['mean_ms']:.3f} ms (mean)")
        return
    if args.logging_cost:
        r = logging_cost(SIZES[args.sizes[0]], args.designs[0], steps, args.logging_cost)
        print(
            f"logging on: {r['on']:.1f} steps/s ({r['points']['on']} points a run), off: {r['off']:.1f} steps/s "
            f"({r['points']['off']} point); on/off {r['on_vs_off']:.3f}, medians of {r['rounds']} runs each, "
            f"{r['steps']} steps a run"
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(r, f, indent=1)
        return
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    rows, interleaved = [], []
    start = time.perf_counter()
    for dev in devices:
        for size in args.sizes:
            for design in args.designs:
                variants = ["baseline", "alice", "alice-fast"] + (
                    ["alice-stage2"] if design == "nonlinear" and not args.no_stage2 else []
                )
                for variant in variants:
                    cfg = dict(
                        device=dev,
                        size=size,
                        design=design,
                        variant=variant,
                        steps=steps,
                        warmup=warmup,
                        compile=args.compile,
                        peak_reps=5 if args.quick else 10,
                    )
                    tries = []
                    for _ in range(args.repeat):
                        if dev == "cpu" and args.wait_quiet:
                            wait_quiet(args.wait_quiet)
                        tries.append(_child(cfg))
                    r = min(tries, key=lambda t: t["ms_per_step"])  # best of --repeat
                    r["repeats"] = len(tries)
                    rows.append(r)
                    print(json.dumps(r), file=sys.stderr, flush=True)
                if not args.no_interleave:
                    cfg = dict(
                        device=dev,
                        size=size,
                        design=design,
                        variants=variants,
                        rounds=args.rounds or steps,
                        warmup=warmup,
                        compile=args.compile,
                    )
                    if dev == "cpu" and args.wait_quiet:
                        wait_quiet(args.wait_quiet)
                    together = _child(cfg, "--child-interleaved")
                    interleaved.extend(together)
                    print(json.dumps(together), file=sys.stderr, flush=True)
    _report(rows)
    if interleaved:
        _report_interleaved(interleaved)
    print(
        f"\n{len(rows)} rows in {time.perf_counter() - start:.0f} s; torch {torch.__version__}, {os.cpu_count()} CPUs"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "interleaved": interleaved}, f, indent=1)


def _beside(r: dict) -> str:
    share = r.get("share_of_beside_peak")
    return "-" if share is None or r.get("bf16") else f"{100 * share:.1f}%"


def _report(rows: list[dict]) -> None:
    for dev in dict.fromkeys(r["device"] for r in rows):
        mine = [r for r in rows if r["device"] == dev]
        peak32 = max(r["peak_fp32_gflops"] for r in mine)
        peak16 = max((r.get("peak_bf16_gflops", 0) for r in mine), default=0)
        print(
            f"\n{dev}: matmul peak fp32 {peak32:.0f} GFLOP/s"
            + (f", bf16 {peak16:.0f} GFLOP/s" if peak16 else "")
            + f" (best of every row's measurement; per row {min(r['peak_fp32_gflops'] for r in mine):.0f}-{peak32:.0f})"
        )
        print(
            f"{'size':7} {'design':10} {'variant':13} {'ms/step':>8} {'steps/s':>8} {'GFLOP':>6} {'GFLOP/s':>8} "
            f"{'% peak':>7} {'best':>6} {'beside':>7} {'peak MB':>8} {'+MB':>7} {'other':>5} {'ops':>5}"
            "  losses (last step)"
        )
        for size in dict.fromkeys(r["size"] for r in mine):
            for design in dict.fromkeys(r["design"] for r in mine if r["size"] == size):
                group = [r for r in mine if r["size"] == size and r["design"] == design]
                for r in group:
                    ms = r["ms_per_step"]
                    rate = r["gflop"] / (ms / 1000)
                    peak = peak16 if r.get("bf16") and peak16 else peak32
                    losses = " ".join(f"{k} {v:.4f}" for k, v in r["last_losses"].items())
                    best = r["gflop"] / (r["ms_per_step_min"] / 1000)
                    print(
                        f"{size:7} {design:10} {r['variant']:13} {ms:8.1f} {1000 / ms:8.2f} {r['gflop']:6.1f} "
                        f"{rate:8.1f} {100 * rate / peak:6.1f}% {100 * best / peak:5.1f}% {_beside(r):>7} "
                        f"{r['peak_mem_mb']:8.0f} {r['mem_over_idle_mb']:7.0f} {r['other_load']:5.2f} "
                        f"{r.get('aten_ops', 0):5}  {losses}"
                    )


def _report_interleaved(rows: list[dict]) -> None:
    print(
        "\ninterleaved: every variant of a design in one process, one step each in turn per round, "
        "each step between two square matmuls (medians over rounds)"
    )
    print(
        f"{'device':6} {'size':7} {'design':10} {'variant':13} {'rounds':>6} {'ms/step':>8} {'beside':>7} "
        f"{'(quartiles)':>15} {'vs base':>8} {'(worst)':>8}"
    )
    for r in rows:
        q1, _, q3 = r["share_quartiles"]
        share = "-" if r.get("bf16") else f"{100 * r['share_of_beside_peak']:.1f}%"
        quart = "" if r.get("bf16") else f"{100 * q1:.1f}-{100 * q3:.1f}%"
        paired = f"{r['speedup_paired']:7.2f}x" if "speedup_paired" in r else "       -"
        worst = f"{r['speedup_paired_min']:7.2f}x" if "speedup_paired_min" in r else "       -"
        print(
            f"{r['device']:6} {r['size']:7} {r['design']:10} {r['variant']:13} {r['rounds']:6} "
            f"{r['ms_per_step']:8.1f} {share:>7} {quart:>15} {paired} {worst}"
        )


if __name__ == "__main__":
    main()
