"""Which device a command runs on, and multi-process training and feature extraction under ``torchrun``.

``torchrun --nproc_per_node N -m alice reference build ...`` (or ``modality
add``) starts N copies of the command; each finds ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` in its environment. :func:`session` then joins the process
group (NCCL on CUDA, gloo on CPU) and leaves it at the end. With one process
(no torchrun, or ``--nproc_per_node 1``) every function here is a no-op, and
training takes exactly the single-process code path.

The scheme, data parallel on one global batch:
- every rank holds the whole feature tensor on its device (features are small:
  COCO train at 768-d is 0.36 GB), draws the same global batch indices and the
  same intervention samples from the same seeded generator, and takes its own
  contiguous slice of the batch;
- each rank's losses are scaled so that the mean of the ranks' gradients is the
  gradient of the global batch's loss; gradients are averaged with one
  bucketed ``all_reduce`` per optimizer step (see :func:`average_gradients`);
- only rank 0 writes artifacts, checkpoints and progress output;
- feature extraction splits the missing cache shards across ranks, which all
  write into the same cache folder (a shared file system on several nodes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta

import torch

from alice.errors import AliceError
from alice.files import memory_bytes, size_text


def pick_device(name: str = "auto") -> torch.device:
    """The device a command runs on: "auto" (CUDA when present, else the CPU), "cpu", "cuda", "cuda:N"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AliceError(f"unknown device {name!r} (try cpu, cuda, cuda:1, auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AliceError(f"device {name!r} asked for, but no CUDA device is available")
    return device


def memory_for(device: torch.device) -> tuple[int, str]:
    """``(bytes free for new tensors on device, those words)``: a GPU's free memory, else the machine's available."""
    if device.type == "cuda":
        free = int(torch.cuda.mem_get_info(device)[0])
        return free, f"{device} has {size_text(free)} free"
    available = memory_bytes()
    return available, f"this machine has {size_text(available)} of memory available"


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise AliceError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} is not a number") from None


def _dist():
    import torch.distributed as dist

    return dist


def active() -> bool:
    """True inside a process group of more than one process."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return _dist().get_world_size() if active() else 1


def rank() -> int:
    if active():
        return _dist().get_rank()
    return int(os.environ.get("RANK", "0") or 0)  # before the group exists: torchrun's word


def is_main() -> bool:
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """On CUDA under torchrun, each process takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and env_world_size() > 1 and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


@contextmanager
def session(device: torch.device) -> Iterator[torch.device]:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1; yield this rank's device."""
    n = env_world_size()
    dist = _dist()
    if n <= 1 or (dist.is_available() and dist.is_initialized()):
        yield local_device(device) if n > 1 else device
        return
    if not dist.is_available():
        raise AliceError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    for var in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise AliceError(
                f"WORLD_SIZE={n} but {var} is not set; launch with torchrun --nproc_per_node N -m alice ..."
            )
    device = local_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
    except Exception as exc:  # a rendezvous that fails is the user's setup, not a bug
        raise AliceError(
            f"could not join the {backend} process group of {n} processes: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    try:
        yield device
    finally:
        try:
            dist.destroy_process_group()
        except Exception:
            pass


def barrier() -> None:
    if active():
        _dist().barrier()


def check_all(ok: bool, message: str = "") -> None:
    """A barrier that fails on every rank when any rank failed, so none waits for a dead peer.

    The failing rank raises its own error after this; the others raise a one-line AliceError.
    """
    if not active():
        return
    flag = torch.tensor([0.0 if ok else 1.0], device=_flag_device())
    _dist().all_reduce(flag)
    if flag.item() and ok:
        raise AliceError(message or "another training process failed; see its error above")


def _flag_device() -> torch.device:
    """NCCL reduces CUDA tensors only; gloo takes CPU ones."""
    if _dist().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Average ``p.grad`` over ranks: one flat all_reduce per call (what DDP does, bucketed once).

    Why not DistributedDataParallel: DDP's reducer fires on gradients that
    ``.backward()`` accumulates, once per forward of the wrapped module. ALICE's
    step runs E (and D, C) twice per step, and computes M's gradient (stage 1)
    and the semantic part of E_m's (stage 2) with ``torch.autograd.grad``, which
    DDP never sees; it would hang waiting for those buckets or reduce the wrong
    ones. Averaging explicitly, after both gradient pieces are in place and right
    before each optimizer step, is the same arithmetic as DDP with one bucket.
    """
    if not active():
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    _dist().all_reduce(flat)
    flat /= world_size()
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p)
        offset += n


def broadcast_parameters(modules: Sequence[torch.nn.Module]) -> None:
    """Rank 0's initial weights everywhere (the same seed already gives the same ones; this makes it certain)."""
    if not active():
        return
    for m in modules:
        for t in (*m.parameters(), *m.buffers()):
            _dist().broadcast(t.data, src=0)


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-rank loss sums -> their mean over ranks (the global batch's loss), in one all_reduce."""
    if not active() or not values:
        return values
    keys = list(values)  # the same insertion order on every process
    flat = torch.stack([torch.as_tensor(values[k]).float().reshape(()) for k in keys])
    _dist().all_reduce(flat)
    flat /= world_size()
    return {k: flat[i] for i, k in enumerate(keys)}


def batch_slice(batch_size: int) -> slice:
    """This rank's contiguous part of a global batch; the batch must split evenly."""
    n = world_size()
    if n == 1:
        return slice(None)
    if batch_size % n:
        raise AliceError(
            f"training.batch_size {batch_size} does not split evenly over {n} processes; use a multiple of {n}"
        )
    per = batch_size // n
    r = rank()
    return slice(r * per, (r + 1) * per)
