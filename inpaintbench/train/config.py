"""Training configuration: one dataclass holding every number that determines a training run.

The defaults are the ``mat-official`` recipe (see ``inpaintbench/train/README.md`` and MAT's
``train.py``), with the fine-tuning values of the motivating study's run
(lr 0.001, pcp 0.1, truncation 0.5, style mixing 0.5, EMA 10 kimg, batch 8).

Two recipes exist:

* ``mat-official``: what the official MAT ``train.py`` actually does. In particular the
  lazy-regularization bookkeeping of StyleGAN2-ADA is applied to **both** optimizers, although MAT
  has no generator regularizer, so G trains at ``lr * 4/5`` with ``beta2 ** (4/5)``; D uses
  ``lr * 16/17`` and ``beta2 ** (16/17)`` for its R1 every 16 iterations. The official code never
  applies ADA (the augment call is commented out), so this recipe's default is no augmentation.
* ``corrected``: the same, except that G uses the nominal ``lr`` and ``betas`` (no regularizer, so
  no lazy-regularization scaling), as the paper's text implies.

``--augment ada`` is a real, working option under either recipe (the official code would silently
ignore it); a run that uses it records ``"augment": "ada"`` and is no longer a faithful
reproduction of the official recipe.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inpaintbench.errors import InputError

RECIPES = ("mat-official", "corrected")
NETWORK_CONFIGS = ("full", "tiny")
AUGMENTS = ("none", "ada")
PRECISIONS = ("fp32", "bf16")
TRAIN_IMPLS = ("fast", "reference")
VALIDATION_METRICS = ("psnr", "ssim", "l1", "lpips", "fid")

# Fields that may differ between an interrupted run and its resumption without changing the
# training trajectory (where it runs, how long, how often it reports/validates).
RESUMABLE_OVERRIDES = frozenset({
    "kimg", "snap", "out", "device", "weights_dir", "offline", "allow_unverified", "val_every_snap",
    "keep_snapshots", "name", "workers", "val", "val_masks", "val_metrics", "val_limit", "best_metric",
    "val_feature_extractor", "val_precision", "on_nonfinite",
})

#: Overrides that are allowed on resume but change the numbers of what follows (another device has
#: other kernels and other float rounding); resuming with one is warned about.
NUMERICS_CHANGING_OVERRIDES = frozenset({"device"})
NONFINITE_POLICIES = ("stop", "continue")


@dataclass
class TrainConfig:
    """Every setting of a training run (all recorded in each snapshot's sidecar).

    Data:
        data: folder of training images (e.g. ``SPLITS/train`` written by ``inpaintbench data split``).
        val: folder of validation images, or None for no validation.
        resolution: training crop size (256 or 512; the init checkpoint must match). Other powers of
            two >= 128 work with a mask protocol of that size (tests use 128).
        xflip: random horizontal flips of training images (official ``--mirror``).
        masks: mask protocol for training holes (drawn per sample: index = global sample counter);
            default ``mat-large-<resolution>`` (MAT's training generator).
        val_masks: fixed mask set for validation (a standard name or a mask-set folder); default
            ``mat-large-<resolution>``.
        val_limit: validate on the first N validation images only (None = all).
        val_feature_extractor: Inception used for validation FID (``inception-tf``, as ``run``'s
            default, or ``inception-stylegan2``, MAT-exact).
    Networks:
        config: ``full`` (the official MAT widths) or ``tiny`` (narrow, same code paths, for tests);
            None = the init checkpoint's widths (``full`` from scratch).
        init: checkpoint to fine-tune (weights id such as ``mat-celebahq-256``, a registered local
            model, a file, or a training run directory); None trains from scratch.
        mbstd_group: minibatch-std group size of D (official named configs: 8; the effective group is
            ``min(mbstd_group, per-process batch)``).
    Optimisation (``mat-official`` defaults):
        recipe, lr, batch (global, all processes together), kimg (total length in thousands of images),
        pcp_ratio, truncation (training-time psi), style_mix (probability), r1_gamma,
        d_reg_interval, g_reg_interval (lazy-regularization bookkeeping), ema_kimg, ema_rampup,
        augment / ada_target / ada_kimg / ada_interval, precision, seed.
        impl: MAT layer path for G and D: ``fast`` (channels-last, fused resampling, SDPA attention; same
            function and gradients as ``reference`` up to float rounding, tests/test_mat_layers.py) or
            ``reference`` (the official operation order).
    Bookkeeping:
        tick_kimg (kimg per progress tick, official 4), snap (snapshot + validation every N ticks),
        best_metric, keep_snapshots (0 = keep all), name (register the result under this model id),
        workers (threads that read and crop the next batch while the current one trains; 0 = inline).
    """

    data: str = ""
    out: str = ""
    val: str | None = None
    init: str | None = None
    recipe: str = "mat-official"
    config: str | None = None
    resolution: int = 256
    kimg: float = 32.0
    batch: int = 8
    lr: float = 0.001
    pcp_ratio: float = 0.1
    truncation: float = 0.5
    style_mix: float = 0.5
    r1_gamma: float = 10.0
    d_reg_interval: int = 16
    g_reg_interval: int = 4
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    augment: str = "none"
    ada_target: float = 0.6
    #: None = the official train.py choice: 100 when fine-tuning from ``init`` (its ``--resume``), else 500
    ada_kimg: float | None = None
    ada_interval: int = 4
    mbstd_group: int = 8
    xflip: bool = True
    masks: str | None = None
    val_masks: str | None = None
    val_metrics: tuple[str, ...] = VALIDATION_METRICS
    val_limit: int | None = None
    val_feature_extractor: str = "inception-tf"
    val_every_snap: bool = True
    best_metric: str = "fid"
    tick_kimg: float = 4.0
    snap: int = 1
    keep_snapshots: int = 3
    precision: str = "fp32"
    val_precision: str = "fp32"
    deterministic: bool = False
    on_nonfinite: str = "stop"
    impl: str = "fast"
    seed: int = 0
    name: str | None = None
    device: str = "auto"
    weights_dir: str | None = None
    offline: bool | None = None
    allow_unverified: bool = False
    workers: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ checks and derived values

    def validate(self, world_size: int = 1) -> None:
        """Raise :class:`InputError` for settings that cannot work, naming the option."""
        def bad(option: str, why: str, fix: str) -> InputError:
            return InputError(f"{option}: {why}", fix)

        if not self.data:
            raise bad("--data", "no training folder given", "pass --data SPLITS/train")
        if not self.out:
            raise bad("--out", "no output directory given", "pass --out runs/NAME")
        checks = [
            ("--recipe", self.recipe, RECIPES), ("--config", self.config or "full", (*NETWORK_CONFIGS, "custom")),
            ("--augment", self.augment, AUGMENTS), ("--precision", self.precision, PRECISIONS),
            ("--impl", self.impl, TRAIN_IMPLS), ("--val-precision", self.val_precision, PRECISIONS),
            ("--on-nonfinite", self.on_nonfinite, NONFINITE_POLICIES),
        ]
        for option, value, allowed in checks:
            if value not in allowed:
                raise bad(option, f"unknown value {value!r}", f"use one of: {', '.join(allowed)}")
        r = self.resolution
        if not isinstance(r, int) or r < 128 or r & (r - 1):
            raise bad("--resolution", f"{r} is not supported (MAT needs a power of two >= 128)",
                      "use 256 or 512 (the resolutions of MAT's released models and mask protocols)")
        if self.batch < 1:
            raise bad("--batch", f"must be >= 1, got {self.batch}", "e.g. --batch 8")
        if self.batch % world_size:
            raise bad("--batch", f"{self.batch} is not divisible by the {world_size} processes",
                      f"use a multiple of {world_size}")
        for option, value in (("--kimg", self.kimg), ("--lr", self.lr), ("--tick", self.tick_kimg),
                              ("--ema-kimg", self.ema_kimg), ("--ada-kimg", self.effective_ada_kimg)):
            if not (math.isfinite(value) and value > 0):
                raise bad(option, f"must be a positive number, got {value}", "pass a value > 0")
        for option, value in (("--pcp-ratio", self.pcp_ratio), ("--r1-gamma", self.r1_gamma)):
            if not (math.isfinite(value) and value >= 0):
                raise bad(option, f"must be >= 0, got {value}", "pass a value >= 0")
        if not 0 <= self.style_mix <= 1:
            raise bad("--style-mix", f"is a probability, got {self.style_mix}", "pass a value in [0, 1]")
        if not 0 < self.truncation <= 1:
            raise bad("--truncation", f"must be in (0, 1], got {self.truncation}", "official value: 0.5")
        if self.snap < 1 or self.d_reg_interval < 1 or self.g_reg_interval < 1 or self.ada_interval < 1:
            raise bad("--snap/intervals", "must be >= 1", "pass a positive integer")
        if self.mbstd_group < 1:
            raise bad("--mbstd-group", f"must be >= 1, got {self.mbstd_group}", "official value: 8")
        local = self.batch // world_size
        group = min(self.mbstd_group, local)
        if local % group:
            raise bad("--batch", f"per-process batch {local} is not divisible by the minibatch-std group {group}",
                      f"use a batch that is a multiple of {group} per process, or change --mbstd-group")
        unknown = [m for m in self.val_metrics if m not in VALIDATION_METRICS]
        if unknown:
            raise bad("--val-metrics", f"unknown {', '.join(unknown)}", f"use some of {', '.join(VALIDATION_METRICS)}")
        if self.val and self.best_metric not in self.val_metrics:
            raise bad("--best-metric", f"{self.best_metric!r} is not among --val-metrics",
                      f"use one of {', '.join(self.val_metrics)}")

    @property
    def effective_ada_kimg(self) -> float:
        """ADA's adjustment speed: the explicit ``ada_kimg``, else StyleGAN2-ADA/MAT ``train.py``'s
        rule: ``ada_kimg = 100`` when resuming from a pretrained network ("make ADA react faster at
        the beginning"), 500 from scratch (fenglinglwb/MAT train.py, setup_training_loop_kwargs)."""
        if self.ada_kimg is not None:
            return float(self.ada_kimg)
        return 100.0 if self.init else 500.0

    @property
    def widths_preset(self) -> str:
        """The MAT width preset name (``official``/``tiny``) behind ``config``."""
        return "official" if self.config in (None, "full") else self.config

    def optimizer_settings(self, net: str) -> dict[str, Any]:
        """Adam ``lr``/``betas`` for ``net`` in ``{"G", "D"}``, with the lazy-regularization scaling.

        StyleGAN2-ADA (Karras et al. 2020, Appendix B "lazy regularization") runs a regularizer every
        ``r`` iterations and compensates by scaling ``lr`` by ``c = r / (r + 1)`` and ``betas`` to
        ``beta ** c``. MAT keeps this bookkeeping for G (``r = 4``) although it has no G regularizer,
        so under ``mat-official`` G effectively trains at ``0.8 * lr``; ``corrected`` drops it for G.
        """
        beta1, beta2 = 0.0, 0.99
        if net == "D":
            interval: int | None = self.d_reg_interval
        elif net == "G":
            interval = self.g_reg_interval if self.recipe == "mat-official" else None
        else:
            raise ValueError(net)
        if interval is None:
            return {"lr": self.lr, "betas": (beta1, beta2), "eps": 1e-8, "lazy_scale": 1.0}
        c = interval / (interval + 1)
        return {"lr": self.lr * c, "betas": (beta1 ** c, beta2 ** c), "eps": 1e-8, "lazy_scale": c}

    def ema_beta(self, cur_nimg: int) -> float:
        """EMA decay per step: ``0.5 ** (batch / ema_nimg)`` (half-life ``ema_kimg`` thousand images),
        with the optional StyleGAN2-ADA ramp-up ``ema_nimg = min(ema_nimg, cur_nimg * rampup)``."""
        ema_nimg = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_nimg = min(ema_nimg, cur_nimg * self.ema_rampup)
        return 0.5 ** (self.batch / max(ema_nimg, 1e-8))

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["val_metrics"] = list(self.val_metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values.setdefault("impl", "reference")  # runs stored before the option existed trained on that path
        if "val_metrics" in values:
            values["val_metrics"] = tuple(values["val_metrics"])
        return cls(**values)

    def trajectory_key(self) -> dict[str, Any]:
        """The settings a resumed run must share with the interrupted one."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUMABLE_OVERRIDES}


def merge_for_resume(stored: TrainConfig, given: dict[str, Any]) -> TrainConfig:
    """Config of a resumed run: the stored one, with only the explicitly given, allowed overrides.

    ``given`` holds the options the user typed (None = not given). Changing anything that alters the
    training trajectory is refused, because "resume" promises the same result as never stopping.
    """
    values = stored.to_dict()
    for key, value in given.items():
        if value is None:
            continue
        if key == "val_metrics":
            value = list(value)
        if key in RESUMABLE_OVERRIDES:
            values[key] = value
        elif values.get(key) != value:
            raise InputError(
                f"--resume: this run was trained with {key}={values.get(key)!r}, but {value!r} was given",
                "drop that option (a resumed run keeps its settings) or start a new run with --out",
            )
    return TrainConfig.from_dict(values)
