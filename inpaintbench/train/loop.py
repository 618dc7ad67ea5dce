"""The training loop: iterations, ticks, EMA, ADA, snapshots, validation, resume, torchrun.

Lines: about 470, because the Trainer's phases, ticks and maintenance read best in one place;
batches, numerics, records and tick types live in their own modules.

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
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from inpaintbench import distributed
from inpaintbench.env_info import resolve_device
from inpaintbench.errors import InpaintBenchError, InputError, WeightsError
from inpaintbench.results import atomic_write_json
from inpaintbench.train import snapshot as S
from inpaintbench.train.augment import AdaptiveAugment
from inpaintbench.train.batches import IterationBatches, iteration_loader
from inpaintbench.train.config import TrainConfig, merge_for_resume
from inpaintbench.train.data import TrainImages
from inpaintbench.train.loss import Batch, TwoStageLoss
from inpaintbench.train.numerics import (
    NonFiniteMonitor,
    configure_backends,
    ema_update,
    networks_finite,
    sanitize_gradients,
    sync_gradients,
    warn_numerics_changing_overrides,
)
from inpaintbench.train.records import RUN_FORMAT, run_record, snapshot_state  # noqa: F401
from inpaintbench.train.ticks import TickInfo, TickStats, TrainResult


class TrainingError(InpaintBenchError):
    """Training cannot go on (non-finite loss, ...); the last good snapshot is kept."""


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

        self.augment = AdaptiveAugment(config.ada_target, config.effective_ada_kimg, config.ada_interval) \
            if config.augment == "ada" else None
        self.loss = TwoStageLoss(self.G, self.D, self.pcp, config, device, ctx, self.augment)
        og, od = config.optimizer_settings("G"), config.optimizer_settings("D")
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=og["lr"], betas=og["betas"], eps=og["eps"])
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=od["lr"], betas=od["betas"], eps=od["eps"])

        self.batches = IterationBatches(self.data, self.mask_protocol, config.seed, config.batch, ctx.rank,
                                        ctx.world_size)
        self._loader: Any = None
        self.nonfinite = NonFiniteMonitor(device)
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
                                           precision=config.val_precision,
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
        return self.batches.rows(iteration)

    def _start_loader(self, total_nimg: int) -> None:
        stop = self.iteration + max(0, math.ceil((total_nimg - self.cur_nimg) / self.cfg.batch))
        self._loader = iteration_loader(self.batches, self.iteration, stop, self.cfg.workers,
                                        pin_memory=self.device.type == "cuda")

    def make_batch(self, iteration: int) -> Batch:
        """The batch of ``iteration``: from the prefetching loader when it is at that iteration."""
        item = next(self._loader, None) if self._loader is not None else None
        if item is None or int(item[0]) != iteration:
            self._loader = None  # out of step (a caller outside run()): compute it inline
            item = self.batches[iteration]
        _, imgs, holes = item
        imgs, holes = torch.as_tensor(imgs), torch.as_tensor(holes)
        real = imgs.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float() / 127.5 - 1
        mask = (~holes).to(self.device, non_blocking=True).float()[:, None]
        return Batch(real, mask, self.rows(iteration), iteration)

    # ------------------------------------------------------------------ one iteration

    def _optimize(self, phase: str, loss: torch.Tensor, module: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        """backward, all-reduce, the official ``nan_to_num`` of every gradient, step; non-finite values
        are counted on the device for the tick's guard (no host sync here)."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(module, self.ctx)
        bad = sanitize_gradients(module)
        self.nonfinite.observe(phase, self.iteration, loss, bad)
        opt.step()

    def step(self, stats: TickStats) -> None:
        cfg = self.cfg
        batch = self.make_batch(self.iteration)
        # Gmain
        self.G.requires_grad_(True)
        loss, st = self.loss.g_main(batch)
        self._optimize("G", loss, self.G, self.opt_G)
        self.G.requires_grad_(False)
        stats.add(st)
        # Dmain
        self.D.requires_grad_(True)
        loss, st, signs = self.loss.d_main(batch)
        self._optimize("D", loss, self.D, self.opt_D)
        stats.add(st)
        n_signs = len(batch.ks)
        # Dreg (lazy R1); its real logits count in ADA's sign statistic, as in the official
        # 'Loss/signs/real' collector, which both the Dmain and the Dr1 phase report to.
        if cfg.r1_gamma > 0 and self.iteration % cfg.d_reg_interval == 0:
            loss, st, reg_signs = self.loss.d_reg(batch)
            self._optimize("D-R1", loss, self.D, self.opt_D)
            stats.add(st)
            signs = signs + reg_signs
            n_signs += len(batch.ks)
        self.D.requires_grad_(False)
        # EMA (rank 0 holds G_ema)
        if self.G_ema is not None:
            ema_update(self.G_ema, self.G, cfg.ema_beta(self.cur_nimg))
        self.cur_nimg += cfg.batch
        self.iteration += 1
        # ADA, after the counters moved as in the official loop: the first adjustment follows
        # iteration ada_interval - 1 (batch_idx % ada_interval == 0 after batch_idx += 1).
        if self.augment is not None:
            self.augment.accumulate(signs.detach(), n_signs)
            if self.iteration % cfg.ada_interval == 0:
                self._adjust_augment()

    def _adjust_augment(self) -> None:
        """One host sync per ``ada_interval`` iterations: ``p`` is needed on the host to draw the
        next transforms."""
        assert self.augment is not None
        pair = torch.stack([torch.as_tensor(self.augment.sign_sum, dtype=torch.float64, device=self.device),
                            torch.tensor(float(self.augment.count), dtype=torch.float64, device=self.device)])
        if self.ctx.active:
            dist.all_reduce(pair)
        values = pair.cpu().tolist()
        self.augment.sign_sum, self.augment.count = values[0], int(values[1])
        self.augment.update(self.cfg.batch)

    # ------------------------------------------------------------------ ticks

    def run(self, on_tick: Callable[[TickInfo], None] | None = None) -> TrainResult:
        cfg = self.cfg
        total_nimg = int(round(cfg.kimg * 1000))
        if self.ctx.is_main:
            self._write_run_json(total_nimg)
        stats = TickStats()
        self._start_loader(total_nimg)
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
            nonfinite = self._guard()
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
            if nonfinite:
                record["nonfinite"] = nonfinite
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
        self._loader = None  # ends the loader's worker processes

    def _guard(self) -> dict[str, Any] | None:
        """The tick's non-finite check (one host sync): see :mod:`inpaintbench.train.numerics`."""
        report = self.nonfinite.read(self.ctx)
        keep = f"last good snapshot: {self.last_snapshot}" if self.last_snapshot else "no snapshot was written yet"
        where = f"(tick {self.cur_tick}, kimg {self.cur_nimg / 1000:.3f})"
        if report.any and self.cfg.on_nonfinite == "stop":
            raise TrainingError(f"{report.describe()} {where}; stopped (--on-nonfinite stop); {keep}",
                                "lower --lr, use --precision fp32, check the data; then --resume the run from the "
                                "last snapshot, or pass --on-nonfinite continue for the official behaviour "
                                "(gradients through nan_to_num)")
        nets = [n for n in (self.G, self.D, self.G_ema) if n is not None]
        if not networks_finite(*nets):
            raise TrainingError(f"non-finite weights at iteration {self.iteration} {where}; snapshot not written; "
                                f"{keep}", "lower --lr or use --precision fp32, then --resume from the last snapshot")
        return report.as_record() if report.any else None

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
        per_image = None
        if self.validator is not None and self.cfg.val_every_snap:
            info.val = self.validator.run(self.G_ema)
            per_image = info.val.pop("per_image")
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
        if per_image is not None:
            # per sample id, equal to per_image.parquet of `equivalent_run` on this snapshot
            state["val_per_image"] = per_image
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
        return snapshot_state(self, info)

    def _write_run_json(self, total_nimg: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.run_dir / S.RUN, run_record(self, total_nimg))


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
        warn_numerics_changing_overrides(stored, config)
    if config.deterministic:
        # cuBLAS needs this before the first CUDA call to be deterministic (PyTorch reproducibility notes).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
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
        configure_backends(config, device_name)
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
