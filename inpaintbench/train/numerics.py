"""What the training loop does to gradients and weights between backward and step, and the guards.

* **Official behaviour** (fenglinglwb/MAT ``training/training_loop.py``, from StyleGAN2-ADA): before
  every optimizer step each gradient goes through ``nan_to_num(nan=0, posinf=1e5, neginf=-1e5)``,
  and training goes on. :func:`sanitize_gradients` does exactly that.
* **Our guard** (separate, and documented in ``train/README.md``): :class:`NonFiniteMonitor` counts,
  on the device, the non-finite losses and gradient entries of each phase and the first iteration
  where each happened. It is read once per tick (one host sync), so the per-iteration path never
  waits for the GPU. With ``--on-nonfinite stop`` (default) the run ends at that tick without
  writing its snapshot, naming the phase and the iteration; ``continue`` keeps the official
  behaviour. Non-finite *weights* always stop the run at the tick (a snapshot of them would be
  useless); with sanitised gradients they are not expected.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from inpaintbench import distributed
from inpaintbench.env_info import resolve_device
from inpaintbench.errors import InpaintBenchError
from inpaintbench.train.config import NUMERICS_CHANGING_OVERRIDES, TrainConfig

PHASES = ("G", "D", "D-R1")
_NEVER = 2**62  # "no bad iteration yet"; min-reduced over processes


def sync_gradients(module: torch.nn.Module, ctx: distributed.DistContext) -> None:
    """Average gradients over processes with one flat all-reduce (StyleGAN3-style, no DDP wrapper:
    the R1 double backward and the several forward passes per phase need no special handling)."""
    if not ctx.active:
        return
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def sanitize_gradients(module: torch.nn.Module) -> torch.Tensor:
    """Replace non-finite gradient entries in place as the official loop does (nan -> 0, +-inf ->
    +-1e5); returns the number of entries replaced, as a device tensor (no host sync)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), dtype=torch.int64)
    bad = torch.stack([(~torch.isfinite(g)).sum() for g in grads]).sum()
    for g in grads:
        torch.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5, out=g)
    return bad


def ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """``p_ema = p.lerp(p_ema, beta)`` for parameters, copies for buffers (the official order)."""
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)


def networks_finite(*nets: torch.nn.Module) -> bool:
    """Whether every floating-point tensor of the networks is finite (one host sync)."""
    flags = [torch.isfinite(t).all() for net in nets for t in net.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


@dataclass
class NonFiniteReport:
    """Counts since the last read, per phase; ``first`` is the first iteration with a bad loss/gradient."""

    loss: dict[str, int] = field(default_factory=dict)
    grad: dict[str, int] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return any(self.loss.values()) or any(self.grad.values())

    def as_record(self) -> dict[str, dict[str, int]]:
        return {"loss": {k: v for k, v in self.loss.items() if v}, "grad": {k: v for k, v in self.grad.items() if v},
                "first_iteration": dict(self.first)}

    def describe(self) -> str:
        """``non-finite D loss (1x) at iteration 7`` style text, first occurrence first."""
        parts = []
        for phase in sorted(self.first, key=self.first.__getitem__):
            what = []
            if self.loss.get(phase):
                what.append(f"{phase} loss ({self.loss[phase]}x)")
            if self.grad.get(phase):
                what.append(f"{phase} gradients ({self.grad[phase]} entries)")
            parts.append(f"non-finite {' and '.join(what)} at iteration {self.first[phase]}")
        return "; ".join(parts)


class NonFiniteMonitor:
    """Device-side counters of non-finite losses and gradients (see the module docstring)."""

    def __init__(self, device: torch.device):
        self.device = device
        self._reset()

    def _reset(self) -> None:
        n = len(PHASES)
        self.loss_count = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.grad_count = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.first = torch.full((n,), _NEVER, dtype=torch.int64, device=self.device)

    def observe(self, phase: str, iteration: int, loss: torch.Tensor, bad_grad_entries: torch.Tensor) -> None:
        i = PHASES.index(phase)
        bad_loss = (~torch.isfinite(loss.detach())).any().to(torch.int64)
        bad_grad = bad_grad_entries.to(self.device, torch.int64)
        self.loss_count[i] += bad_loss
        self.grad_count[i] += bad_grad
        hit = (bad_loss + bad_grad) > 0
        # clamp with a Python scalar: no host-to-device copy, so no implicit sync
        self.first[i] = torch.where(hit, self.first[i].clamp(max=int(iteration)), self.first[i])

    def read(self, ctx: distributed.DistContext) -> NonFiniteReport:
        """Counts since the last read, summed over processes; resets them (one host sync)."""
        counts = torch.stack([self.loss_count, self.grad_count])
        first = self.first.clone()
        if ctx.active:
            dist.all_reduce(counts)
            dist.all_reduce(first, op=dist.ReduceOp.MIN)
        c, f = counts.cpu().tolist(), first.cpu().tolist()
        self._reset()
        report = NonFiniteReport({p: int(c[0][i]) for i, p in enumerate(PHASES)},
                                 {p: int(c[1][i]) for i, p in enumerate(PHASES)},
                                 {p: int(f[i]) for i, p in enumerate(PHASES) if f[i] != _NEVER})
        return report


def configure_backends(config: TrainConfig, device_name: str) -> None:
    """cuDNN autotuning as the official loop (``cudnn.benchmark = True``), unless ``--deterministic``
    asks for deterministic kernels (then resume is bit-exact on CUDA as well; slower)."""
    if not device_name.startswith("cuda"):
        return
    torch.backends.cudnn.benchmark = not config.deterministic
    torch.backends.cudnn.deterministic = bool(config.deterministic)
    torch.use_deterministic_algorithms(bool(config.deterministic))


def warn_numerics_changing_overrides(stored: TrainConfig, config: TrainConfig) -> None:
    def same(key: str) -> bool:
        a, b = getattr(stored, key), getattr(config, key)
        if key == "device" and a != b:
            try:  # "auto" and "cpu" are the same device on a machine without CUDA
                return resolve_device(a) == resolve_device(b)
            except InpaintBenchError:
                return False
        return a == b

    changed = [k for k in sorted(NUMERICS_CHANGING_OVERRIDES) if not same(k)]
    for key in changed:
        warnings.warn(f"--resume with {key}={getattr(config, key)!r} (the run so far used {getattr(stored, key)!r}): "
                      "allowed, but the numbers from here on come from other kernels, so the result will not equal "
                      "an uninterrupted run (resume is bit-exact on CPU, and on CUDA only with --deterministic on "
                      "the same device)", UserWarning, stacklevel=3)


__all__ = ["NonFiniteMonitor", "NonFiniteReport", "configure_backends", "ema_update", "networks_finite",
           "sanitize_gradients", "sync_gradients", "warn_numerics_changing_overrides"]
