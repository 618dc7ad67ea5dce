"""The training loop: iterations, ticks, EMA, ADA, snapshots, validation, resume, torchrun.

One iteration (StyleGAN2-ADA / MAT order): ``Gmain`` step, (``Greg``: MAT has no G regularizer,
so nothing happens), ``Dmain`` step, ``Dreg`` step every ``d_reg_interval`` iterations, EMA update,
ADA adjustment every ``ada_interval`` iterations. A *tick* ends after ``tick_kimg`` thousand images
(the first tick, tick 0, after the very first iteration, as in the official loop); every ``snap``
ticks and at the end, the run is validated and snapshotted.

Distributed (``torchrun --nproc_per_node=K``): the global batch is split over K processes, rank
``r`` taking the rows ``r, r+K, r+2K, ...`` of each global batch. Gradients are averaged over
processes after every backward pass (one flat all-reduce per network), the ``w_avg`` update and the
ADA statistics use global means, logged losses are averaged over processes. ``G_ema``, validation and
snapshots live on rank 0. With the minibatch-std group equal to the per-process batch, K processes
compute the same thing as one process with the same global batch, up to float summation order.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from inpaintbench import distributed
from inpaintbench.env_info import device_description, package_versions, resolve_device
from inpaintbench.errors import InpaintBenchError, InputError, WeightsError
from inpaintbench.results import atomic_write_json
from inpaintbench.train import snapshot as S
from inpaintbench.train.augment import AdaptiveAugment
from inpaintbench.train.config import TrainConfig, merge_for_resume
from inpaintbench.train.data import TrainImages
from inpaintbench.train.loss import Batch, TwoStageLoss

RUN_FORMAT = "inpaintbench-train-run"


class TrainingError(InpaintBenchError):
    """Training cannot go on (non-finite loss, ...); the last good snapshot is kept."""


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


# --------------------------------------------------------------------------------------------------
# helpers


def _sync_grads(module: torch.nn.Module, ctx: distributed.DistContext) -> None:
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


def _all_finite(value: torch.Tensor, ctx: distributed.DistContext) -> bool:
    flag = torch.isfinite(value.detach()).all().to(torch.int32).reshape(1)
    if ctx.active:
        flag = flag.to(value.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def _ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)


def _nets_finite(*nets: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for net in nets for t in net.state_dict().values()
               if t.is_floating_point())


class _TickStats:
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


# --------------------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """Builds everything from a :class:`TrainConfig` and runs the loop. See :func:`train`."""

    def __init__(self, config: TrainConfig, ctx: distributed.DistContext, device: torch.device,
                 resume_from: Path | None = None, argv: list[str] | None = None):
        from inpaintbench.train.init import _from_snapshot, build_networks, load_init

        self.cfg = config
        self.ctx = ctx
        self.device = device
        self.run_dir = Path(config.out).expanduser().resolve()
        self.argv = argv
        self.local_batch = config.batch // ctx.world_size
        torch.manual_seed(config.seed)  # from-scratch init and any stray global draw

        # Data first: a bad folder should fail before any network is built.
        self.data = TrainImages(config.data, config.resolution, config.seed, xflip=config.xflip)
        self.data.check_batch(config.batch)
        from inpaintbench.masks.protocols import get_protocol

        self.mask_protocol = get_protocol(config.masks or f"mat-large-{config.resolution}")
        if self.mask_protocol.resolution != config.resolution:
            raise InputError(f"--masks {self.mask_protocol.name} makes {self.mask_protocol.resolution}px masks, "
                             f"training is at {config.resolution}", f"use mat-large-{config.resolution}")

        # Networks: from the init checkpoint (or scratch), then the resume snapshot on top.
        self.init_record: dict[str, Any] = {"spec": None}
        if resume_from is not None:
            # Everything comes from the snapshot; the original init file is not needed any more.
            init = _from_snapshot(resume_from)
            self.init_record = S.read_state(resume_from).get("init") or {"spec": config.init}
        elif config.init:
            init = load_init(config, weights_dir=config.weights_dir, offline=config.offline,
                             allow_unverified=config.allow_unverified)
            self.init_record = init.record
        else:
            init = None
        self.G, self.D, self.G_ema = build_networks(config, init)
        from inpaintbench.models.mat import set_impl

        for net in (self.G, self.D):
            # Both paths compute the same function; the fast path switches its in-place updates off
            # wherever autograd tracks a tensor, so gradients and R1's double backward go through it.
            set_impl(net, config.impl)
            net.to(device).train().requires_grad_(False)
        self.G_ema = self.G_ema.to(device).eval().requires_grad_(False) if ctx.is_main else None

        self.pcp = None
        self.pcp_record: dict[str, Any] | None = None
        if config.pcp_ratio > 0:
            from inpaintbench.train.perceptual import load_perceptual

            self.pcp, self.pcp_record = load_perceptual(config.weights_dir, config.offline, config.allow_unverified)
            self.pcp.to(device)

        self.augment = AdaptiveAugment(config.ada_target, config.ada_kimg, config.ada_interval) \
            if config.augment == "ada" else None
        self.loss = TwoStageLoss(self.G, self.D, self.pcp, config, device, ctx, self.augment)
        og, od = config.optimizer_settings("G"), config.optimizer_settings("D")
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=og["lr"], betas=og["betas"], eps=og["eps"])
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=od["lr"], betas=od["betas"], eps=od["eps"])

        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="train-data") \
            if config.workers > 0 else None
        self._next: tuple[int, Any] | None = None
        self.cur_nimg = 0
        self.iteration = 0
        self.cur_tick = 0
        self.tick_start_nimg = 0
        self.best: dict[str, Any] | None = None
        self.last_snapshot: Path | None = None
        self.elapsed_before = 0.0
        self._t_start = time.perf_counter()
        if resume_from is not None:
            self._load_resume(resume_from)

        self.validator = None
        if config.val and ctx.is_main:
            from inpaintbench.train.validate import Validator

            try:
                self.validator = Validator(config.val, config.resolution, config.val_masks or
                                           f"mat-large-{config.resolution}", tuple(config.val_metrics), device,
                                           batch=max(1, self.local_batch), limit=config.val_limit,
                                           require=(config.best_metric,), weights_dir=config.weights_dir,
                                           offline=config.offline, allow_unverified=config.allow_unverified,
                                           precision=config.precision,
                                           feature_extractor=config.val_feature_extractor)
            except WeightsError as e:
                raise WeightsError(f"--best-metric {config.best_metric} cannot be computed: {e.message}",
                                   "fetch/import the weights it needs (`inpaintbench weights list`), or pick "
                                   "another --best-metric / --val-metrics (e.g. psnr,ssim,l1)") from None

    # ------------------------------------------------------------------ resume

    def _load_resume(self, snap: Path) -> None:
        state = S.read_state(snap)
        for name, net in (("G", self.G), ("D", self.D)):
            sd, _ = S.read_network_file(snap / f"{name}.safetensors")
            net.load_state_dict(sd, strict=True)
        if self.G_ema is not None:
            sd, _ = S.read_network_file(snap / "G_ema.safetensors")
            self.G_ema.load_state_dict(sd, strict=True)
        rng = S.load_optimizers(snap / "optim.safetensors", {"G": self.opt_G, "D": self.opt_D},
                                state["optimizer_groups"])
        if "torch_cpu" in rng:
            torch.set_rng_state(rng["torch_cpu"])
        c = state["counters"]
        self.cur_nimg, self.iteration = int(c["nimg"]), int(c["iteration"])
        self.cur_tick, self.tick_start_nimg = int(c["next_tick"]), int(c["nimg"])
        self.elapsed_before = float(c.get("elapsed_s", 0.0))
        if self.augment is not None and state.get("augment"):
            self.augment.load_state_dict(state["augment"])
        self.best = state.get("best")
        self.last_snapshot = snap
        if state.get("data_digest") != self.data.digest:
            warnings.warn(f"--resume: the training images changed since {snap} was written (digest "
                          f"{str(state.get('data_digest'))[:12]} -> {self.data.digest[:12]}); the run continues "
                          "but no longer reproduces an uninterrupted one", UserWarning, stacklevel=2)

    # ------------------------------------------------------------------ batches

    def rows(self, iteration: int) -> list[int]:
        """Global sample indices of this process's rows (interleaved split of the global batch)."""
        base = iteration * self.cfg.batch
        return [base + j for j in range(self.ctx.rank, self.cfg.batch, self.ctx.world_size)]

    def _arrays(self, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images and bool holes of this process's rows (pure function of the iteration)."""
        ks = self.rows(iteration)
        if self._pool is not None:
            imgs = list(self._pool.map(self.data.sample, ks))
            holes = list(self._pool.map(lambda k: self.mask_protocol.generate(k, self.cfg.seed), ks))
        else:
            imgs = [self.data.sample(k) for k in ks]
            holes = [self.mask_protocol.generate(k, self.cfg.seed) for k in ks]
        return np.stack(imgs), np.stack(holes)

    def make_batch(self, iteration: int) -> Batch:
        """The batch of ``iteration``; the next one is prepared in the background meanwhile."""
        ks = self.rows(iteration)
        pending = self._next
        if pending is not None and pending[0] == iteration:
            imgs, holes = pending[1].result()
        else:
            imgs, holes = self._arrays(iteration)
        self._next = (iteration + 1, self._pool.submit(self._arrays, iteration + 1)) if self._pool else None
        real = torch.from_numpy(imgs).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1
        mask = torch.from_numpy(~holes).to(self.device).float()[:, None]
        return Batch(real, mask, ks, iteration)

    # ------------------------------------------------------------------ one iteration

    def _check(self, loss: torch.Tensor, phase: str) -> None:
        if not _all_finite(loss, self.ctx):
            where = f"iteration {self.iteration} (kimg {self.cur_nimg / 1000:.3f}), phase {phase}"
            keep = f"last good snapshot: {self.last_snapshot}" if self.last_snapshot else "no snapshot was written yet"
            raise TrainingError(f"non-finite {phase} loss ({float(loss.detach()):g}) at {where}; stopped; {keep}",
                                "lower --lr, use --precision fp32, check the data; then --resume the run "
                                "from the last snapshot")

    def step(self, stats: _TickStats) -> None:
        cfg = self.cfg
        batch = self.make_batch(self.iteration)
        # Gmain
        self.G.requires_grad_(True)
        loss, st = self.loss.g_main(batch)
        self._check(loss, "G")
        self.opt_G.zero_grad(set_to_none=True)
        loss.backward()
        _sync_grads(self.G, self.ctx)
        self.opt_G.step()
        self.G.requires_grad_(False)
        stats.add(st)
        # Dmain
        self.D.requires_grad_(True)
        loss, st, signs = self.loss.d_main(batch)
        self._check(loss, "D")
        self.opt_D.zero_grad(set_to_none=True)
        loss.backward()
        _sync_grads(self.D, self.ctx)
        self.opt_D.step()
        stats.add(st)
        # Dreg (lazy R1)
        if cfg.r1_gamma > 0 and self.iteration % cfg.d_reg_interval == 0:
            loss, st = self.loss.d_reg(batch)
            self._check(loss, "D-R1")
            self.opt_D.zero_grad(set_to_none=True)
            loss.backward()
            _sync_grads(self.D, self.ctx)
            self.opt_D.step()
            stats.add(st)
        self.D.requires_grad_(False)
        # EMA (rank 0 holds G_ema)
        if self.G_ema is not None:
            _ema_update(self.G_ema, self.G, cfg.ema_beta(self.cur_nimg))
        # ADA
        if self.augment is not None:
            self.augment.accumulate(float(signs), len(batch.ks))
            if self.iteration % cfg.ada_interval == 0:
                pair = torch.tensor([self.augment.sign_sum, float(self.augment.count)], dtype=torch.float64,
                                    device=self.device)
                if self.ctx.active:
                    dist.all_reduce(pair)
                self.augment.sign_sum, self.augment.count = float(pair[0]), int(pair[1])
                self.augment.update(cfg.batch)
        self.cur_nimg += cfg.batch
        self.iteration += 1

    # ------------------------------------------------------------------ ticks

    def run(self, on_tick: Callable[[TickInfo], None] | None = None) -> TrainResult:
        cfg = self.cfg
        total_nimg = int(round(cfg.kimg * 1000))
        if self.ctx.is_main:
            self._write_run_json(total_nimg)
        stats = _TickStats()
        t_start = self._t_start = time.perf_counter()
        tick_start_time = t_start
        history: list[dict[str, Any]] = []
        done = self.cur_nimg >= total_nimg
        while not done:
            self.step(stats)
            done = self.cur_nimg >= total_nimg
            if not done and self.cur_tick != 0 and self.cur_nimg < self.tick_start_nimg + cfg.tick_kimg * 1000:
                continue
            # ---- end of tick
            now = time.perf_counter()
            tick_time = now - tick_start_time
            tick_kimg = (self.cur_nimg - self.tick_start_nimg) / 1000
            losses = stats.reduce(self.ctx)
            sec_per_kimg = tick_time / max(tick_kimg, 1e-9)
            info = TickInfo(self.cur_tick, self.cur_nimg / 1000, cfg.kimg, self.iteration, tick_time, sec_per_kimg,
                            max(0.0, (total_nimg - self.cur_nimg) / 1000 * sec_per_kimg), losses,
                            self.augment.p if self.augment else 0.0)
            if done or self.cur_tick % cfg.snap == 0:
                self._maintenance(info)
            record = {"kimg": info.kimg, "tick": info.tick, "iteration": info.iteration, "nimg": self.cur_nimg,
                      "time_s": round(self.elapsed_before + now - t_start, 3), "sec_per_tick": round(tick_time, 4),
                      "sec_per_kimg": round(sec_per_kimg, 4), "loss": losses, "augment_p": info.augment_p,
                      "world_size": self.ctx.world_size}
            if info.val is not None:
                record["val"] = info.val
            if info.snapshot:
                record["snapshot"] = info.snapshot
                record["best"] = info.best
            if self.ctx.is_main:
                S.append_metrics(self.run_dir, record)
                if on_tick is not None:
                    on_tick(info)
            history.append(record)
            self.cur_tick += 1
            self.tick_start_nimg = self.cur_nimg
            tick_start_time = time.perf_counter()
        self.close()
        return TrainResult(self.run_dir, self.cur_nimg / 1000, self.iteration, self.cur_tick, self.last_snapshot,
                           self.best, history=history)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._next = None

    def _maintenance(self, info: TickInfo) -> None:
        """Validate and snapshot on rank 0; every rank learns whether it worked."""
        if self.augment is not None and self.ctx.active:
            # ADA statistics gathered since the last adjustment live on every rank; move their sum to
            # rank 0 (whose state is saved) so that a resumed run adjusts p from the same numbers.
            pair = torch.tensor([self.augment.sign_sum, float(self.augment.count)], dtype=torch.float64,
                                device=self.device)
            dist.all_reduce(pair)
            total = (float(pair[0]), int(pair[1])) if self.ctx.is_main else (0.0, 0)
            self.augment.sign_sum, self.augment.count = total
        error: str | None = None
        if self.ctx.is_main:
            try:
                self._validate_and_snapshot(info)
            except InpaintBenchError as e:
                error = e.message + (f" (fix: {e.fix})" if e.fix else "")
                if not self.ctx.active:
                    raise
        if self.ctx.active:
            error = distributed.broadcast_from_main(error, self.ctx)
            if error is not None:
                raise TrainingError(f"rank 0 failed while writing a snapshot: {error}")

    def _validate_and_snapshot(self, info: TickInfo) -> None:
        assert self.G_ema is not None
        if not _nets_finite(self.G, self.D, self.G_ema):
            keep = self.last_snapshot or "none"
            raise TrainingError(f"non-finite weights at iteration {self.iteration} (kimg {info.kimg:.3f}); "
                                f"snapshot not written; last good snapshot: {keep}",
                                "lower --lr or use --precision fp32, then --resume from the last snapshot")
        if self.validator is not None and self.cfg.val_every_snap:
            info.val = self.validator.run(self.G_ema)
        name = S.snapshot_name(info.tick)
        is_best = False
        if info.val is not None:
            from inpaintbench.metrics.info import is_higher_better

            metric = self.cfg.best_metric
            value = info.val.get(metric)
            if value is not None and math.isfinite(value):
                higher = is_higher_better(metric)
                old = self.best["value"] if self.best else None
                if old is None or (value > old if higher else value < old):
                    is_best = True
                    self.best = {"metric": metric, "value": value, "higher_is_better": higher,
                                 "snapshot": f"{S.SNAPSHOTS}/{name}", "tick": info.tick, "kimg": info.kimg}
        state = self._state(info)
        rng = {"torch_cpu": torch.get_rng_state()}
        optim, groups = S.optimizer_bytes({"G": self.opt_G, "D": self.opt_D}, rng)
        state["optimizer_groups"] = groups
        meta = {"kimg": info.kimg, "tick": info.tick, "init": self.init_record, "data_digest": self.data.digest,
                "train_data": str(self.data.root), "run_dir": str(self.run_dir)}
        networks = {"G": self.G, "G_ema": self.G_ema, "D": self.D}
        self.last_snapshot = S.write_snapshot(self.run_dir, name, networks, optim, state, meta)
        info.snapshot = f"{S.SNAPSHOTS}/{name}"
        if is_best:
            atomic_write_json(self.run_dir / S.BEST, self.best)
        info.best = is_best
        S.prune_snapshots(self.run_dir, self.cfg.keep_snapshots)

    def _state(self, info: TickInfo) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "kimg": info.kimg, "tick": info.tick, "nimg": self.cur_nimg,
            "counters": {"nimg": self.cur_nimg, "iteration": self.iteration, "tick": info.tick,
                         "next_tick": info.tick + 1,
                         "elapsed_s": self.elapsed_before + time.perf_counter() - self._t_start},
            "init": self.init_record,
            "data": {"root": str(self.data.root), "digest": self.data.digest, "n": len(self.data)},
            "data_digest": self.data.digest,
            "augment": self.augment.state_dict() if self.augment else None,
            "val": info.val,
            "best": self.best,
            "loss": info.loss,
            "rng": {"scheme": "stateless: every draw is seeded from (seed, global sample index, phase) or "
                              "(seed, iteration, phase); nothing to restore except the torch CPU state "
                              "saved in optim.safetensors (rng/torch_cpu) for stray global draws",
                    "seed": self.cfg.seed},
            "world_size": self.ctx.world_size,
            "versions": package_versions(),
        }

    def _write_run_json(self, total_nimg: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "format": RUN_FORMAT, "version": 1,
            "command": self.argv, "config": self.cfg.to_dict(),
            "recipe": _recipe_notes(self.cfg),
            "optimizers": {"G": self.cfg.optimizer_settings("G"), "D": self.cfg.optimizer_settings("D")},
            "init": self.init_record, "data": self.data.describe(),
            "masks": self.mask_protocol.describe(), "perceptual_weights": self.pcp_record,
            "validation": self.validator.describe() if self.validator else None,
            "networks": {"G": self.G.init_kwargs(), "D": self.D.init_kwargs(),
                         "G_params": sum(p.numel() for p in self.G.parameters()),
                         "D_params": sum(p.numel() for p in self.D.parameters())},
            "device": device_description(str(self.device)), "world_size": self.ctx.world_size,
            "versions": package_versions(), "total_nimg": total_nimg,
            "resumed_from": str(self.last_snapshot) if self.last_snapshot else None,
        }
        atomic_write_json(self.run_dir / S.RUN, record)


def _recipe_notes(cfg: TrainConfig) -> list[str]:
    notes = []
    if cfg.recipe == "mat-official":
        notes.append("G Adam lr x0.8 and beta2**0.8: lazy-regularization bookkeeping applied to G although MAT "
                     "has no G regularizer (official train.py behaviour, reproduced)")
    else:
        notes.append("corrected: G uses the nominal lr and betas")
    notes.append(f"D Adam lr x{cfg.d_reg_interval}/{cfg.d_reg_interval + 1}, R1 every {cfg.d_reg_interval} "
                 "iterations on both D branches, loss x interval")
    if cfg.augment == "ada":
        notes.append("ADA applied to reals and fakes before D (the official code builds but never applies it): "
                     "not a faithful reproduction of the official recipe")
    notes.append("style-mixing cut-off drawn once per global batch; z, noise and MAT's feature-mixing maps per "
                 "sample from seeded streams")
    return notes


# --------------------------------------------------------------------------------------------------
# entry point


def train(config: TrainConfig, resume: str | Path | None = None, given: dict[str, Any] | None = None,
          on_tick: Callable[[TickInfo], None] | None = None, on_ready: Callable[[Trainer], None] | None = None,
          argv: list[str] | None = None) -> TrainResult | None:
    """Fine-tune (or train) MAT as ``config`` says; returns the result on rank 0 (None elsewhere).

    ``resume``: a run directory (its latest snapshot) or a snapshot folder; the stored config is
    used, with only the options in ``given`` that do not change the trajectory (see
    :func:`inpaintbench.train.config.merge_for_resume`). Without ``resume``, ``config.out`` must
    not already hold a run.
    """
    snap: Path | None = None
    if resume is not None:
        snap = S.resolve_snapshot(resume, "latest")
        stored = TrainConfig.from_dict(S.read_state(snap)["config"])
        overrides = dict(given or {})
        if not overrides.get("out"):
            overrides["out"] = str(snap.parent.parent)
        config = merge_for_resume(stored, overrides)
    device_name = resolve_device(config.device)
    ctx = distributed.init_from_env(device_name)
    try:
        if ctx.active and device_name.startswith("cuda"):
            device_name = f"cuda:{ctx.local_rank}"
            torch.cuda.set_device(device_name)
        if config.precision == "bf16" and not device_name.startswith("cuda"):
            warnings.warn("--precision bf16 on CPU: autocast works but is usually slower than fp32",
                          UserWarning, stacklevel=2)
        config.validate(ctx.world_size)
        run_dir = Path(config.out).expanduser().resolve()
        if snap is None and (run_dir / S.LATEST).exists():
            raise InputError(f"--out {run_dir} already holds a training run",
                             f"continue it with --resume {run_dir}, or choose another --out")
        trainer = Trainer(config, ctx, torch.device(device_name), resume_from=snap, argv=argv)
        if snap is not None and ctx.is_main:
            source = snap.parent.parent
            S.truncate_metrics(run_dir, trainer.cur_nimg, source=source)
        if on_ready is not None and ctx.is_main:
            on_ready(trainer)
        if ctx.is_main and config.name:
            from inpaintbench.train.registry import check_can_register

            check_can_register(config.name, run_dir)
        try:
            result = trainer.run(on_tick=on_tick)
        finally:
            trainer.close()
        if ctx.is_main and config.name:
            from inpaintbench.train.registry import register_run

            register_run(config.name, result.run_dir, snapshot="best")
            result.registered = config.name
        return result if ctx.is_main else None
    finally:
        distributed.shutdown(ctx)


__all__ = ["TickInfo", "TrainResult", "Trainer", "TrainingError", "train"]
