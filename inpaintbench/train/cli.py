"""CLI: ``inpaintbench train``, ``inpaintbench data split``, ``inpaintbench register-model``.

Thin: parse, call :mod:`inpaintbench.train`, print with rich. ``register(app)`` is called by the
root CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

data_app = typer.Typer(help="Prepare image folders for training (`data split`).", no_args_is_help=True)


def _fmt_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


@data_app.command("split")
def data_split(
    src: Annotated[Path, typer.Argument(help="Folder of images (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: train/, val/, test/ and splits.json.")],
    ratios: Annotated[str, typer.Option(help="train,val,test fractions summing to 1.")] = "0.85,0.10,0.05",
    seed: Annotated[int, typer.Option(help="Seed of the assignment.")] = 123,
    resolution: Annotated[int, typer.Option(help="Output size (square).")] = 256,
    resize_policy: Annotated[str, typer.Option(help="center-crop (no resampling; smaller images are skipped), "
                                                    "pad, resize or short-side.")] = "center-crop",
    alpha: Annotated[str, typer.Option(help="RGBA inputs: refuse, or composite-white.")] = "refuse",
    workers: Annotated[int, typer.Option(min=1, help="Processes for decoding/encoding.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Bring every image to RESxRES by an explicit policy and write deterministic, hashed splits.

    Assignment depends only on image contents, --seed and --ratios (duplicates stay together).
    Unreadable images are skipped with a count (listed in splits.json).
    """
    from inpaintbench.train.data import parse_ratios, split_folder

    res = split_folder(src, out, parse_ratios(ratios), seed=seed, resolution=resolution,
                       resize_policy=resize_policy, alpha=alpha, workers=workers, overwrite=overwrite)
    counts = ", ".join(f"{k} {v}" for k, v in res.counts.items())
    console.print(f"{res.out}: {counts}" + (f"; skipped {len(res.skipped)}" if res.skipped else "")
                  + (f"; {res.duplicates} duplicate(s) kept together" if res.duplicates else ""))
    for name in res.counts:
        console.print(f"  {name}: digest {res.manifest['digests'][name][:16]}…  -> folder:{res.out / name}")


def train_cmd(
    data: Annotated[Path | None, typer.Option(help="Folder of training images (e.g. SPLITS/train).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (snapshots, metrics.jsonl).")] = None,
    init: Annotated[str | None, typer.Option(help="Start from: a weight id (mat-celebahq-256), a checkpoint "
                                                     "file, a run directory or a registered fine-tune.")] = None,
    val: Annotated[Path | None, typer.Option(help="Validation folder (e.g. SPLITS/val); none = no "
                                                     "validation.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue a run exactly from its latest snapshot.")] = None,
    recipe: Annotated[str | None, typer.Option(help="mat-official (default: what the official code does, "
                                                       "quirks included) or corrected.")] = None,
    config: Annotated[str | None, typer.Option(help="Network widths: full or tiny (tests). Default: the "
                                                       "init checkpoint's, else full.")] = None,
    kimg: Annotated[float | None, typer.Option(help="Training length in thousands of images.")] = None,
    batch: Annotated[int | None, typer.Option(help="Global batch size (all processes).")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate (official fine-tune: 0.001).")] = None,
    pcp_ratio: Annotated[float | None, typer.Option(help="Perceptual loss weight (0.1).")] = None,
    truncation: Annotated[float | None, typer.Option(help="Training-time truncation psi (0.5).")] = None,
    style_mix: Annotated[float | None, typer.Option(help="Style-mixing probability (0.5).")] = None,
    r1_gamma: Annotated[float | None, typer.Option(help="R1 weight on both D branches (10).")] = None,
    d_reg_interval: Annotated[int | None, typer.Option(help="Lazy R1: every N iterations, loss x N (16).")] = None,
    ema_kimg: Annotated[float | None, typer.Option(help="EMA half-life in kimg (10).")] = None,
    augment: Annotated[str | None, typer.Option(help="none (official) or ada.")] = None,
    ada_target: Annotated[float | None, typer.Option(help="ADA target for E[sign(D(real))] (0.6).")] = None,
    ada_kimg: Annotated[float | None, typer.Option(help="ADA speed: kimg for p to go 0 -> 1 (official: 100 "
                                                               "with --init, 500 from scratch).")] = None,
    ada_interval: Annotated[int | None, typer.Option(help="ADA: adjust p every N iterations (4).")] = None,
    mbstd_group: Annotated[int | None, typer.Option(help="Minibatch-std group of D (8).")] = None,
    resolution: Annotated[int | None, typer.Option(help="Training resolution (256).")] = None,
    masks: Annotated[str | None, typer.Option(help="Training mask protocol (mat-large-RES).")] = None,
    val_masks: Annotated[str | None, typer.Option(help="Fixed validation mask set (mat-large-RES).")] = None,
    val_metrics: Annotated[str | None, typer.Option(help="Comma-separated: psnr,ssim,l1,lpips,fid.")] = None,
    val_limit: Annotated[int | None, typer.Option(help="Validate on the first N images only.")] = None,
    val_feature_extractor: Annotated[str | None, typer.Option(help="Inception for validation FID: "
                                                                      "inception-tf or inception-stylegan2.")] = None,
    best_metric: Annotated[str | None, typer.Option(help="Metric that picks the `best` snapshot (fid).")] = None,
    tick: Annotated[float | None, typer.Option(help="kimg per progress tick (4).")] = None,
    snap: Annotated[int | None, typer.Option(help="Validate + snapshot every N ticks (1).")] = None,
    keep_snapshots: Annotated[int | None, typer.Option(help="Keep the newest N snapshots (+ best) (3; a "
                                                               "full-size snapshot is ~1.4 GB); 0 = all.")] = None,
    precision: Annotated[str | None, typer.Option(help="fp32 (default) or bf16 (autocast, GPU).")] = None,
    val_precision: Annotated[str | None, typer.Option(help="Precision of validation inference (fp32, "
                                                              "as `run`'s default).")] = None,
    deterministic: Annotated[bool | None, typer.Option(
        "--deterministic/--no-deterministic",
        help="Deterministic CUDA kernels (torch.use_deterministic_algorithms, cudnn.benchmark off): resume "
             "is then bit-exact on GPU too, at a speed cost (see train/README.md). CPU is always "
             "deterministic.")] = None,
    on_nonfinite: Annotated[str | None, typer.Option(
        help="stop (default: end the run at the tick where a loss or weight became non-finite, keeping the "
             "last good snapshot) or continue (the official behaviour: gradients pass through "
             "nan_to_num and training goes on).")] = None,
    workers: Annotated[int | None, typer.Option(help="Data-loader worker processes that read, crop and mask "
                                                       "the next batches while the network trains (2; 0 = "
                                                       "inline).")] = None,
    impl: Annotated[str | None, typer.Option(help="MAT layer path: fast (default) or reference (the official "
                                                  "operation order).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every draw (0).")] = None,
    mirror: Annotated[bool | None, typer.Option("--xflip/--no-xflip", help="Random x-flips (on).")] = None,
    name: Annotated[str | None, typer.Option(help="Register the result under this model id at the "
                                                     "end.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    weights_dir: Annotated[Path | None, typer.Option(help="Where weight files live.")] = None,
    offline: Annotated[bool | None, typer.Option("--offline/--online", help="Never download.")] = None,
    allow_unverified_weights: Annotated[bool | None, typer.Option(help="Accept hash mismatches.")] = None,
) -> None:
    """Fine-tune MAT on a folder of images (MAT's TwoStageLoss; see inpaintbench/train/README.md).

    Runs distributed under `torchrun --nproc_per_node=K -m inpaintbench.cli train ...` (gloo on CPU, nccl
    on GPU). Ctrl-C keeps the last snapshot; `--resume RUN` continues exactly.
    """
    from inpaintbench.train.config import TrainConfig
    from inpaintbench.train.loop import train

    given: dict[str, Any] = {
        "data": str(data) if data else None, "out": str(out) if out else None, "init": init,
        "val": str(val) if val else None, "recipe": recipe, "config": config, "kimg": kimg, "batch": batch,
        "lr": lr, "pcp_ratio": pcp_ratio, "truncation": truncation, "style_mix": style_mix,
        "r1_gamma": r1_gamma, "d_reg_interval": d_reg_interval, "ema_kimg": ema_kimg, "augment": augment,
        "ada_target": ada_target, "ada_kimg": ada_kimg, "ada_interval": ada_interval,
        "mbstd_group": mbstd_group, "resolution": resolution, "masks": masks, "val_masks": val_masks,
        "val_metrics": tuple(m.strip() for m in val_metrics.split(",") if m.strip()) if val_metrics else None,
        "val_limit": val_limit, "val_feature_extractor": val_feature_extractor, "best_metric": best_metric,
        "tick_kimg": tick, "snap": snap, "keep_snapshots": keep_snapshots, "precision": precision, "seed": seed,
        "val_precision": val_precision, "deterministic": deterministic, "on_nonfinite": on_nonfinite,
        "workers": workers, "impl": impl, "xflip": mirror, "name": name, "device": device,
        "weights_dir": str(weights_dir) if weights_dir else None, "offline": offline,
        "allow_unverified": allow_unverified_weights,
    }
    if resume is not None:
        cfg = TrainConfig()
    else:
        cfg = TrainConfig(**{k: v for k, v in given.items() if v is not None})
        if cfg.val and "best_metric" not in {k for k, v in given.items() if v is not None} \
                and cfg.best_metric not in cfg.val_metrics:
            cfg.best_metric = cfg.val_metrics[0]
    progress = _TrainProgress()
    try:
        result = train(cfg, resume=resume, given=given if resume is not None else None, on_tick=progress.on_tick,
                       on_ready=progress.on_ready, argv=list(sys.argv))
    except KeyboardInterrupt:
        progress.stop()
        target = resume or out
        err_console.print(f"interrupted; the last complete snapshot is kept. Continue with: inpaintbench train "
                          f"--resume {target}")
        raise typer.Exit(130) from None
    finally:
        progress.stop()
    if result is None:
        return
    console.print(f"done: {result.kimg:.3f} kimg, {result.iterations} iterations; run: {result.run_dir}")
    if result.best:
        console.print(f"best: {result.best['metric']} = {result.best['value']:.4g} at {result.best['snapshot']}")
    if result.registered:
        console.print(f"registered as model {result.registered!r}: inpaintbench run --model {result.registered} ...")
    else:
        console.print(f"register it with: inpaintbench register-model NAME {result.run_dir}")


class _TrainProgress:
    """Rich progress bar over kimg plus one line per tick (losses, augment p, ETA)."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None

    def on_ready(self, trainer: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        cfg = trainer.cfg
        err_console.print(f"training {cfg.config} MAT-{cfg.resolution} on {len(trainer.data)} images "
                          f"({trainer.data.root}), {cfg.kimg:g} kimg, batch {cfg.batch} "
                          f"on {trainer.ctx.world_size} process(es), device {trainer.device}; recipe {cfg.recipe}"
                          + (f", init {cfg.init}" if cfg.init else ", from scratch"))
        self.progress = Progress(TextColumn("[bold]kimg"), BarColumn(),
                                 TextColumn("{task.completed:.3f}/{task.total:.3f}"), TimeElapsedColumn(),
                                 TextColumn("{task.fields[eta]}"), console=err_console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=cfg.kimg, completed=trainer.cur_nimg / 1000, eta="")

    def on_tick(self, info: Any) -> None:
        loss = info.loss
        parts = [f"tick {info.tick:<4d}", f"kimg {info.kimg:9.3f}", f"{info.sec_per_tick:7.1f} s/tick"]
        for key in ("G/total", "G/pcp", "D/total", "D/r1"):
            if key in loss:
                parts.append(f"{key} {loss[key]:.4g}")
        parts.append(f"aug p {info.augment_p:.3f}")
        parts.append(f"ETA {_fmt_eta(info.eta_s)}")
        if info.val:
            parts.append("val " + " ".join(f"{k} {v:.4g}" for k, v in info.val.items()
                                           if isinstance(v, float)))
        if info.snapshot:
            parts.append(f"-> {info.snapshot}{' (best)' if info.best else ''}")
        text = "  ".join(parts)
        if self.progress is not None:
            self.progress.console.print(text, highlight=False)
            self.progress.update(self.task, completed=min(info.kimg, info.total_kimg),
                                 eta=f"ETA {_fmt_eta(info.eta_s)}")
        else:
            err_console.print(text, highlight=False)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def register_model_cmd(
    name: Annotated[str, typer.Argument(help="New model id, e.g. mat-wikiart.")],
    run_dir: Annotated[Path, typer.Argument(help="Training run directory (or a snapshot folder).")],
    snapshot: Annotated[str, typer.Option(help="best (default; falls back to latest), latest, or a snapshot "
                                               "name such as tick-000008.")] = "best",
    overwrite: Annotated[bool, typer.Option(help="Replace a model already registered under NAME.")] = False,
) -> None:
    """Register a trained run's G_ema as a model id usable by `inpaintbench run --model NAME` (persists)."""
    from inpaintbench.train.registry import register_run

    entry = register_run(name, run_dir, snapshot=snapshot, overwrite=overwrite)
    console.print(f"registered {name!r}: {entry['checkpoint']} (sha256 {entry['sha256'][:12]}…, "
                  f"{entry['kimg']} kimg, snapshot {Path(entry['snapshot']).name})")


def register(app: typer.Typer) -> None:
    """Add ``train``, ``data split`` and ``register-model`` to the root CLI."""
    app.command("train")(train_cmd)
    app.add_typer(data_app, name="data")
    app.command("register-model")(register_model_cmd)
