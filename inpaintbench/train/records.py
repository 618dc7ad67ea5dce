"""The JSON records a training run writes: ``run.json`` (once per start) and each snapshot's state.

Kept apart from the loop so that what is recorded can be read (and extended) in one place.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from inpaintbench.env_info import device_description, package_versions
from inpaintbench.train.config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from inpaintbench.train.loop import Trainer
    from inpaintbench.train.ticks import TickInfo

RUN_FORMAT = "inpaintbench-train-run"


def recipe_notes(cfg: TrainConfig) -> list[str]:
    """Where this run's recipe stands relative to the official one (also in ``train/README.md``)."""
    notes = []
    if cfg.recipe == "mat-official":
        notes.append("G Adam lr x0.8 and beta2**0.8: lazy-regularization bookkeeping applied to G although MAT "
                     "has no G regularizer (official train.py behaviour, reproduced)")
    else:
        notes.append("corrected: G uses the nominal lr and betas")
    notes.append(f"D Adam lr x{cfg.d_reg_interval}/{cfg.d_reg_interval + 1}, R1 every {cfg.d_reg_interval} "
                 "iterations on both D branches, loss x interval")
    notes.append("gradients through nan_to_num(nan=0, +-inf=+-1e5) before every step (official); guard: "
                 f"--on-nonfinite {cfg.on_nonfinite}")
    if cfg.augment == "ada":
        notes.append(f"ADA applied to reals and fakes before D (the official code builds but never applies it), "
                     f"ada_kimg {cfg.effective_ada_kimg:g}, a subset of the bgc pipeline: not a faithful "
                     "reproduction of the official recipe")
    notes.append("style-mixing cut-off drawn once per global batch; z, noise and MAT's feature-mixing maps per "
                 "sample from seeded streams")
    return notes


def snapshot_state(trainer: Trainer, info: TickInfo) -> dict[str, Any]:
    """``state.json`` of a snapshot: counters, ADA, validation, best, and how to resume."""
    t = trainer
    return {
        "config": t.cfg.to_dict(),
        "kimg": info.kimg, "tick": info.tick, "nimg": t.cur_nimg,
        "counters": {"nimg": t.cur_nimg, "iteration": t.iteration, "tick": info.tick,
                     "next_tick": info.tick + 1,
                     "elapsed_s": t.elapsed_before + time.perf_counter() - t._t_start},
        "init": t.init_record,
        "data": {"root": str(t.data.root), "digest": t.data.digest, "n": len(t.data)},
        "data_digest": t.data.digest,
        "augment": t.augment.state_dict() if t.augment else None,
        "val": info.val,
        "best": t.best,
        "loss": info.loss,
        "rng": {"scheme": "stateless: every draw is seeded from (seed, global sample index, phase) or "
                          "(seed, iteration, phase); nothing to restore except the torch CPU state "
                          "saved in optim.safetensors (rng/torch_cpu) for stray global draws",
                "seed": t.cfg.seed},
        "world_size": t.ctx.world_size,
        "versions": package_versions(),
    }


def run_record(trainer: Trainer, total_nimg: int) -> dict[str, Any]:
    """``run.json``: command, config, recipe notes, init, data, masks, networks, device, versions."""
    t = trainer
    return {
        "format": RUN_FORMAT, "version": 1,
        "command": t.argv, "config": t.cfg.to_dict(),
        "recipe": recipe_notes(t.cfg),
        "optimizers": {"G": t.cfg.optimizer_settings("G"), "D": t.cfg.optimizer_settings("D")},
        "init": t.init_record, "data": t.data.describe(),
        "masks": t.mask_protocol.describe(), "perceptual_weights": t.pcp_record,
        "validation": t.validator.describe() if t.validator else None,
        "networks": {"G": t.G.init_kwargs(), "D": t.D.init_kwargs(),
                     "G_params": sum(p.numel() for p in t.G.parameters()),
                     "D_params": sum(p.numel() for p in t.D.parameters())},
        "device": device_description(str(t.device)), "world_size": t.ctx.world_size,
        "deterministic": t.cfg.deterministic,
        "versions": package_versions(), "total_nimg": total_nimg,
        "resumed_from": str(t.last_snapshot) if t.last_snapshot else None,
    }
