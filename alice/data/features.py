"""Feature extraction, done once per (data set, split, backbone) and cached.

Cache layout (``ALICE_CACHE_DIR``, default ``~/.cache/alice``)::

    features/<dataset>/<split>/<backbone>-<key>/
        shard-00000.safetensors   # {"features": [<=shard_size, dim] float32}
        ...
        complete.json             # written last: n, dim, shards, identity

``key`` hashes the data set's and backbone's identities, so any option that
changes the features gives a new folder. Each shard is written to a temporary
name and renamed, so an interrupted extraction resumes at the first missing
shard and never reads a half-written one.

Under torchrun (:mod:`alice.distributed`) the processes extract disjoint sets of
missing shards into the same folder, wait for one another, and rank 0 writes
``complete.json``; every process then reads the finished cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from alice import console, distributed
from alice.errors import AliceError
from alice.files import atomic_file, cache_root, write_json
from alice.plugin.backbone import Backbone

SHARD_SIZE = 4096


def cache_key(dataset_identity: dict[str, Any], split: str, backbone_identity: dict[str, Any], n: int) -> str:
    blob = json.dumps(
        {"dataset": dataset_identity, "split": split, "backbone": backbone_identity, "n": n}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def extract_features(
    backbone: Backbone,
    inputs: Sequence[Any],
    *,
    dataset_identity: dict[str, Any],
    split: str,
    device: torch.device,
    batch_size: int = 0,
    shard_size: int = SHARD_SIZE,
    plugin: str = "?",
) -> torch.Tensor:
    """Features ``[len(inputs), backbone.feature_dim]`` (float32, CPU), from the cache when present."""
    n = len(inputs)
    ident = backbone.identity()
    key = cache_key(dataset_identity, split, ident, n)
    folder = (
        cache_root()
        / "features"
        / _safe(dataset_identity.get("name", "data"))
        / split
        / f"{_safe(backbone.name)}-{key}"
    )
    done = folder / "complete.json"
    shards = [folder / f"shard-{i:05d}.safetensors" for i in range((n + shard_size - 1) // shard_size)]
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # under torchrun the missing shards are dealt out over the processes, which all
        # write into this folder (shared on several nodes); rank 0 marks it complete
        missing = [i for i, s in enumerate(shards) if not s.is_file()]
        distributed.barrier()  # every process has listed the missing shards before any is written
        ok = False
        try:
            mine = missing[distributed.rank() :: distributed.world_size()]
            _extract_missing_shards(
                backbone, inputs, shards, shard_size, device, batch_size or backbone.batch_size, plugin, split, mine
            )
            ok = True
        finally:
            distributed.check_all(
                ok, f"another process failed while extracting {split} features ({backbone.name}); see its error"
            )
        if distributed.is_main():
            record = {
                "n": n,
                "dim": backbone.feature_dim,
                "shards": len(shards),
                "backbone": ident,
                "dataset": dataset_identity,
                "split": split,
            }
            write_json(done, record)
        distributed.barrier()
    return read_shards(shards, n, backbone.feature_dim, folder)


def read_shards(shards: list[Path], n: int, dim: int, folder: Path) -> torch.Tensor:
    """Copy memory-mapped shards one by one into one preallocated tensor.

    safetensors maps each file rather than reading it, so the features sit in
    RAM once (plus the page cache), never twice as with load-then-concatenate.
    """
    out = torch.empty(n, dim)
    row = 0
    try:
        for shard in shards:
            with safe_open(str(shard), framework="pt") as f:
                part = f.get_tensor("features")
            if part.ndim != 2 or part.shape[1] != dim or row + part.shape[0] > n:
                raise ValueError("shape")
            out[row : row + part.shape[0]] = part
            row += part.shape[0]
            del part
    except Exception as exc:
        raise AliceError(
            f"feature cache {folder} is damaged ({type(exc).__name__}); delete that folder to extract again"
        ) from None
    if row != n:
        raise AliceError(f"feature cache {folder} holds {row} rows, expected {n}; delete that folder to extract again")
    return out


def _extract_missing_shards(
    backbone, inputs, shards, shard_size, device, batch_size, plugin, split, todo: list[int] | None = None
) -> None:
    n = len(inputs)
    if todo is None:
        todo = [i for i, s in enumerate(shards) if not s.is_file()]
    if not todo:
        return
    total = sum(min(shard_size, n - i * shard_size) for i in todo)
    with console.progress(f"extracting {split} features ({backbone.name})", total) as bar:
        for i in todo:
            lo, hi = i * shard_size, min(n, (i + 1) * shard_size)
            chunks = []
            for b in range(lo, hi, batch_size):
                batch = inputs[b : min(hi, b + batch_size)]
                chunks.append(check_features(backbone.extract(batch, device), backbone, len(batch), plugin))
                bar.advance(len(batch))
            with atomic_file(shards[i]) as tmp:
                save_file({"features": torch.cat(chunks).contiguous()}, str(tmp))


def check_features(feats: Any, backbone: Backbone, n: int, plugin: str) -> torch.Tensor:
    """Refuse a batch of the wrong shape or with NaN/inf, naming the backbone and its plugin."""
    who = f"backbone {backbone.name!r} (plugin {plugin!r})"
    if not isinstance(feats, torch.Tensor):
        raise AliceError(f"{who} returned {type(feats).__name__}, expected a torch.Tensor")
    if tuple(feats.shape) != (n, backbone.feature_dim):
        raise AliceError(
            f"{who} returned features of shape {tuple(feats.shape)}, expected ({n}, {backbone.feature_dim})"
        )
    feats = feats.detach().to("cpu", torch.float32)
    if not torch.isfinite(feats).all():
        raise AliceError(f"{who} returned NaN or infinite features")
    return feats
