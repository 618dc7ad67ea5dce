"""torch.distributed glue for `torchrun`: who am I, shard the work, gather results on rank 0.

No home-made scheduler: `torchrun --nproc_per_node=K inpaintbench run ...` sets the usual
environment variables, we initialise the default process group from them (gloo on CPU, nccl on
GPU) and every rank takes every K-th batch.

On GPU every rank binds its own device (``LOCAL_RANK``) *before* the process group exists: NCCL
collectives and the object collectives (``gather_object`` pickles into a tensor on
``torch.cuda.current_device()``) otherwise all land on GPU 0, which deadlocks or oversubscribes it.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

TIMEOUT_ENV = "INPAINTBENCH_DIST_TIMEOUT_MIN"
# After the gather, rank 0 alone computes the set metrics (FID bootstrap, KID subsets, IDS's SVM over
# tens of thousands of features: tens of minutes on a CPU-bound host) while the other ranks wait in
# the final barrier. That wait is one collective, so it must outlast the whole phase; NCCL's default
# of 10 minutes aborts the job instead. A crashed rank does not need the timeout to be noticed
# (torchrun's agent tears the group down when a worker exits), so the cost of a long value is only a
# late report of a genuine live hang. 120 minutes covers the set metrics of the largest standard
# sets; set INPAINTBENCH_DIST_TIMEOUT_MIN for bigger ones.
DEFAULT_TIMEOUT_MIN = 120.0


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def timeout_from_env() -> timedelta:
    """The process-group timeout: ``INPAINTBENCH_DIST_TIMEOUT_MIN`` minutes, else the default."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return timedelta(minutes=DEFAULT_TIMEOUT_MIN)
    try:
        minutes = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a number of minutes") from None
    if not minutes > 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} must be a positive number of minutes")
    return timedelta(minutes=minutes)


def _supports_device_id() -> bool:
    """``init_process_group(device_id=...)`` exists from torch 2.3 on (it binds the NCCL communicator)."""
    try:
        return "device_id" in inspect.signature(dist.init_process_group).parameters
    except (TypeError, ValueError):  # a C-level or wrapped signature we cannot read
        return False


def init_from_env(device: str) -> DistContext:
    """Initialise the process group if launched by torchrun; a 1-process context otherwise.

    With a CUDA device, the rank's GPU (``cuda:LOCAL_RANK``) becomes the current device before the
    process group is created, so every later collective runs on it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 1, 0)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") and torch.cuda.is_available()
    if use_cuda:
        n_gpus = torch.cuda.device_count()
        if not 0 <= local_rank < n_gpus:
            raise RuntimeError(f"LOCAL_RANK={local_rank} but only {n_gpus} CUDA device(s) are visible: "
                               f"run torchrun with --nproc_per_node <= {n_gpus}")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": "nccl" if use_cuda else "gloo", "timeout": timeout_from_env()}
        if use_cuda and _supports_device_id():
            kwargs["device_id"] = torch.device("cuda", local_rank)
        dist.init_process_group(**kwargs)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def gather_to_main(obj: Any, ctx: DistContext) -> list[Any] | None:
    """Gather one picklable object per rank on rank 0 (list by rank); None on other ranks."""
    if not ctx.active:
        return [obj]
    gathered: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def broadcast_from_main(obj: Any, ctx: DistContext) -> Any:
    if not ctx.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def collective_device() -> torch.device:
    """Where tensors for the default group's collectives must live: this rank's current GPU under
    NCCL (``init_from_env`` made it ``cuda:LOCAL_RANK``), the CPU under gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_features(local: np.ndarray) -> np.ndarray:
    """Concatenate every rank's rows (rank order) when torch.distributed is initialised; identity
    otherwise. Ranks may hold different numbers of rows: they are padded for ``all_gather``."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    device = collective_device()
    # Built on the CPU, then moved: one ``.to(device)`` per tensor, and *_like copies inherit it.
    t = torch.from_numpy(np.ascontiguousarray(local)).to(device)
    n = torch.tensor([t.shape[0]], dtype=torch.int64).to(device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    padded = torch.zeros((max(counts), *t.shape[1:]), dtype=t.dtype).to(device)
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return np.concatenate([p[:c].cpu().numpy() for p, c in zip(parts, counts, strict=True)], axis=0)
