"""torch.distributed glue for `torchrun`: who am I, shard the work, gather results on rank 0.

No home-made scheduler: `torchrun --nproc_per_node=K inpaintbench run ...` sets the usual
environment variables, we initialise the default process group from them (gloo on CPU, nccl on
GPU) and every rank takes every K-th batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


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


def init_from_env(device: str) -> DistContext:
    """Initialise the process group if launched by torchrun; a 1-process context otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 1, 0)
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
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
