"""Training checkpoints: everything a run needs to go on exactly where it stopped.

A checkpoint folder holds ``checkpoint.safetensors`` (module weights, optimizer
moments, random-generator states, the batch sampler's permutation, running
loss sums) and ``checkpoint.json`` (step, optimizer scalars, sampler position,
loss history, and a fingerprint of the run's settings). No pickle: optimizer
state dicts are flattened into named tensors and JSON scalars.

The folder is replaced atomically (written beside, then renamed), so a run
killed at any moment leaves either the previous checkpoint or the new one
(:func:`alice.files.recover`, run before a run starts, puts back a previous
one that a kill left moved aside); it is removed the same way, so it is never
half there. Checkpoints live beside the space, never inside it: a build's in
``.<out>.checkpoint``, an added adapter's in ``.<space>.adapter-<name>.checkpoint``.
Resuming on CPU gives weights bit-identical to a run that was never stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from alice.errors import AliceError
from alice.files import FILE_MODE, hidden_sibling, publish_folder, read_json, remove_folder, staging_folder

WEIGHTS, MANIFEST = "checkpoint.safetensors", "checkpoint.json"


def fingerprint(settings: Any) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_folder(output: Path) -> Path:
    """Where checkpoints of a run that writes ``output`` live: a hidden folder beside it."""
    return hidden_sibling(Path(output).resolve(), ".checkpoint")


def adapter_checkpoint_folder(space: Path, name: str) -> Path:
    """Where checkpoints of ``alice modality add`` live: beside the space (nothing hidden goes inside one)."""
    return hidden_sibling(Path(space).resolve(), f".adapter-{name}.checkpoint")


def saved_step(folder: Path) -> int | None:
    """The step of the checkpoint in ``folder``, or None when there is none (or it cannot be read)."""
    try:
        return int(read_json(Path(folder) / MANIFEST)["step"])
    except (AliceError, ValueError, KeyError, TypeError):
        return None


@dataclass
class RunState:
    """The pieces of a training run that a checkpoint captures."""

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generators: dict[str, torch.Generator]
    sampler: Any  # alice.training.BatchSampler


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    sd = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    meta["optimizers"][name] = {
        "param_groups": sd["param_groups"],
        "scalars": scalars,
        "indices": [str(i) for i in sd["state"]],
    }


def _unflatten_optimizer(name: str, tensors: dict, meta: dict) -> dict:
    m = meta["optimizers"][name]
    state: dict[int, dict[str, Any]] = {int(i): dict(m["scalars"].get(i, {})) for i in m["indices"]}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix) :].split(".", 1)
            state[int(idx)][field] = value
    return {"state": state, "param_groups": m["param_groups"]}


def save(
    folder: Path,
    run: RunState,
    step: int,
    sums: dict[str, torch.Tensor],
    count: int,
    history: dict,
    settings_fingerprint: str,
) -> None:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {
        "step": step,
        "fingerprint": settings_fingerprint,
        "optimizers": {},
        "count": count,
        "history": history,
    }
    for name, module in run.modules.items():
        for k, v in module.state_dict().items():
            tensors[f"module.{name}.{k}"] = v.detach().cpu().contiguous()
    for name, opt in run.optimizers.items():
        _flatten_optimizer(name, opt, tensors, meta)
    for name, gen in run.generators.items():
        tensors[f"rng.{name}"] = gen.get_state()
    tensors["rng.torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.torch_cuda"] = torch.cuda.get_rng_state()
    tensors["sampler.perm"] = run.sampler._perm.detach().cpu().contiguous()
    meta["sampler_pos"] = run.sampler._pos
    meta["sums"] = list(sums)  # their order: safetensors keeps names sorted, the loss history keeps this order
    for k, v in sums.items():
        tensors[f"sums.{k}"] = torch.as_tensor(v).detach().cpu().reshape(())
    with staging_folder(Path(folder)) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        os.chmod(tmp / WEIGHTS, FILE_MODE)  # safetensors makes it private; the umask decides, as for any file
        (tmp / MANIFEST).write_text(json.dumps(meta))
        publish_folder(tmp, Path(folder), "checkpoint")


def load(
    folder: Path, run: RunState, settings_fingerprint: str, device: torch.device
) -> tuple[int, dict[str, torch.Tensor], int, dict] | None:
    """Restore ``run`` in place; returns (step, sums, count, history) or None when there is no checkpoint."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return None
    try:
        meta = read_json(folder / MANIFEST)
        tensors = load_file(str(folder / WEIGHTS))
    except Exception as exc:
        raise AliceError(f"checkpoint {folder} is damaged ({type(exc).__name__}); delete it to start over") from None
    if meta.get("fingerprint") != settings_fingerprint:
        raise AliceError(
            f"checkpoint {folder} belongs to a run with other settings; delete it, or resume with the same recipe"
        )
    for name, module in run.modules.items():
        prefix = f"module.{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in run.optimizers.items():
        opt.load_state_dict(_unflatten_optimizer(name, tensors, meta))
    for name, gen in run.generators.items():
        gen.set_state(tensors[f"rng.{name}"])
    torch.set_rng_state(tensors["rng.torch_cpu"])
    if "rng.torch_cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.torch_cuda"])
    run.sampler._perm = tensors["sampler.perm"].to(device)
    run.sampler._pos = int(meta["sampler_pos"])
    saved = {k[len("sums.") :]: v.to(device) for k, v in tensors.items() if k.startswith("sums.")}
    order = [k for k in meta.get("sums", []) if k in saved] + sorted(set(saved) - set(meta.get("sums", [])))
    sums = {k: saved[k] for k in order}
    return int(meta["step"]), sums, int(meta["count"]), meta["history"]


def remove(folder: Path) -> None:
    """Remove a finished run's checkpoint: gone at once (renamed away first), never half there."""
    remove_folder(Path(folder), "checkpoint")
