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
    """Features ``[len(inputs), backbone.feature_dim]`` (float32, CPU), from the cache when present.

    Rows a probe of this split already extracted (:func:`extract_sample`) are taken from its sample file, not
    extracted again.
    """
    n = len(inputs)
    ident = backbone.identity()
    folder = cache_folder(backbone, dataset_identity, split, n)
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
            known = read_sample(folder, backbone.feature_dim) if mine else {}
            _extract_missing_shards(
                backbone,
                inputs,
                shards,
                shard_size,
                device,
                batch_size or backbone.batch_size,
                plugin,
                split,
                mine,
                known,
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


def cache_folder(backbone: Backbone, dataset_identity: dict[str, Any], split: str, n: int) -> Path:
    """Where the features of a split of ``n`` items through ``backbone`` are cached."""
    key = cache_key(dataset_identity, split, backbone.identity(), n)
    name = _safe(dataset_identity.get("name", "data"))
    return cache_root() / "features" / name / split / f"{_safe(backbone.name)}-{key}"


SAMPLE_FILE = "sample.safetensors"


def read_sample(folder: Path, dim: int) -> dict[int, torch.Tensor]:
    """The rows of a split a probe extracted (``sample.safetensors`` in its cache folder): row index -> features.

    A sample file that cannot be read, or holds rows of another width, is as good as none: the rows are extracted
    again (it only ever saves work).
    """
    path = folder / SAMPLE_FILE
    if not path.is_file():
        return {}
    try:
        with safe_open(str(path), framework="pt") as f:
            index, feats = f.get_tensor("index"), f.get_tensor("features")
        if index.ndim != 1 or feats.shape != (len(index), dim):
            return {}
    except Exception:  # damaged: extract again
        return {}
    return {int(i): row for i, row in zip(index.tolist(), feats)}


def extract_sample(
    backbone: Backbone,
    inputs: Sequence[Any],
    rows: Sequence[int],
    *,
    dataset_identity: dict[str, Any],
    split: str,
    device: torch.device,
    plugin: str = "?",
) -> tuple[torch.Tensor, bool]:
    """Features of ``inputs[i]`` for each ``i`` in ``rows`` (a probe's sample of a split), and whether the cache
    held them all.

    They are kept in the split's cache folder (``sample.safetensors``, written atomically): a second probe reads
    them, and a later extraction of the whole split (:func:`extract_features`) takes these rows from there. The
    cache treats features as independent of how items are batched (``extract_batch_size`` is not in its key), so
    rows extracted in the probe's batches serve the split as well.
    """
    n, dim = len(inputs), backbone.feature_dim
    folder = cache_folder(backbone, dataset_identity, split, n)
    done = folder / "complete.json"
    if done.is_file():  # the whole split is there
        try:
            count = int(json.loads(done.read_text(encoding="utf-8"))["shards"])
        except (OSError, ValueError, KeyError, TypeError):
            raise AliceError(f"feature cache {folder} is damaged; delete that folder to extract again") from None
        shards = [folder / f"shard-{i:05d}.safetensors" for i in range(count)]
        return read_shards(shards, n, dim, folder)[list(rows)], True
    known = read_sample(folder, dim)
    missing = sorted({int(i) for i in rows} - known.keys())
    if missing:
        step = backbone.batch_size
        with console.progress(f"extracting a sample of {split} features ({backbone.name})", len(missing)) as bar:
            for b in range(0, len(missing), step):
                part = missing[b : b + step]
                feats = check_features(backbone.extract([inputs[i] for i in part], device), backbone, len(part), plugin)
                known.update(zip(part, feats))
                bar.advance(len(part))
        index = sorted(known)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(folder / SAMPLE_FILE) as tmp:
            save_file(
                {"index": torch.tensor(index, dtype=torch.int64), "features": torch.stack([known[i] for i in index])},
                str(tmp),
            )
    return torch.stack([known[int(i)] for i in rows]), not missing


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
    backbone,
    inputs,
    shards,
    shard_size,
    device,
    batch_size,
    plugin,
    split,
    todo: list[int] | None = None,
    known: dict[int, torch.Tensor] | None = None,
) -> None:
    """Extract and write the shards ``todo`` (default: every missing one); rows in ``known`` are not extracted."""
    n = len(inputs)
    known = known or {}
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
                rows = range(b, min(hi, b + batch_size))
                fresh = [r for r in rows if r not in known]
                if len(fresh) == len(rows):
                    batch = inputs[b : min(hi, b + batch_size)]
                    chunks.append(check_features(backbone.extract(batch, device), backbone, len(batch), plugin))
                else:
                    extracted = iter(
                        check_features(
                            backbone.extract([inputs[r] for r in fresh], device), backbone, len(fresh), plugin
                        )
                        if fresh
                        else ()
                    )
                    chunks.append(torch.stack([known[r] if r in known else next(extracted) for r in rows]))
                bar.advance(len(rows))
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
