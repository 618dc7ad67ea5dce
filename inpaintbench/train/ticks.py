"""What one tick reports (progress display, ``metrics.jsonl``) and what a training run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from inpaintbench import distributed


@dataclass
class TickInfo:
    """What the progress display and ``metrics.jsonl`` get at the end of every tick."""

    tick: int
    kimg: float
    total_kimg: float
    iteration: int
    sec_per_tick: float
    sec_per_kimg: float
    eta_s: float
    loss: dict[str, float]
    augment_p: float
    val: dict[str, Any] | None = None
    snapshot: str | None = None
    best: bool = False


@dataclass
class TrainResult:
    run_dir: Path
    kimg: float
    iterations: int
    ticks: int
    last_snapshot: Path | None
    best: dict[str, Any] | None = None
    registered: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class TickStats:
    """Sums of logged scalars over a tick (device tensors; no sync until the tick ends)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for k, v in stats.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def reduce(self, ctx: distributed.DistContext) -> dict[str, float]:
        keys = sorted(self.sums)
        if not keys:
            return {}
        vec = torch.stack([self.sums[k] for k in keys])
        if ctx.active:
            dist.all_reduce(vec)
            vec = vec / ctx.world_size
        values = vec.cpu().tolist()
        out = {k: values[i] / self.counts[k] for i, k in enumerate(keys)}
        self.sums.clear()
        self.counts.clear()
        return out
