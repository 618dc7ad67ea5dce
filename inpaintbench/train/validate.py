"""Validation during training: the EMA generator on a fixed validation split with a fixed mask set,
scored by the same :class:`~inpaintbench.metrics.suite.MetricSuite` and the same composite/quantise
steps as ``inpaintbench run``.

Fixed means fixed across snapshots: image ``i`` is always paired with mask ``i mod n_masks``, and its
z, noise images and MAT feature-mixing maps come from a generator seeded by ``(val seed, i)``, so two
snapshots differ only by their weights. Sampling follows the official evaluation of MAT during
training (``G_ema``, truncation 1, random noise).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch

from inpaintbench.errors import InputError
from inpaintbench.train.loss import stream_seed

_TAG_VAL = 0x7A1
VAL_SEED = 0


class Validator:
    """Holds the validation images, masks and metric networks between snapshots."""

    def __init__(self, folder: str, resolution: int, masks: str, metrics: tuple[str, ...], device: torch.device,
                 batch: int = 8, limit: int | None = None, require: tuple[str, ...] = (),
                 weights_dir: str | None = None, offline: bool | None = None, allow_unverified: bool = False,
                 precision: str = "fp32", feature_extractor: str = "inception-tf"):
        from inpaintbench.datasets import load_dataset
        from inpaintbench.metrics.suite import MetricSuite

        ds = load_dataset(f"folder:{folder}", resolution=resolution, resize_policy="center-crop")
        problems = dict(ds.verify())
        self.skipped = sorted(problems.items())
        if problems:
            warnings.warn(f"--val {folder}: skipped {len(problems)} unreadable image(s); first: "
                          f"{self.skipped[0][0]}: {self.skipped[0][1]}", UserWarning, stacklevel=2)
        self.indices = [i for i, image_id in enumerate(ds.ids) if image_id not in problems]
        if limit is not None:
            self.indices = self.indices[:limit]
        if not self.indices:
            raise InputError(f"--val {folder}: no usable validation images", "pass a folder with readable images")
        self.dataset = ds
        n = len(self.indices)
        self.masks = _resolve_val_masks(masks, n)
        res = self.masks.resolution
        if res is not None and tuple(res) != (resolution, resolution):
            raise InputError(f"--val-masks {masks}: masks are {res[0]}x{res[1]}, training is {resolution}",
                             f"use a {resolution} mask set (e.g. mat-large-{resolution})")
        self.device = device
        self.batch = batch
        self.precision = precision
        self.ids = [ds.ids[i] for i in self.indices]
        self.suite = MetricSuite(metrics=metrics, device=device, feature_extractor=feature_extractor,
                                 weights_dir=weights_dir, offline=offline,
                                 allow_unverified=allow_unverified, require=require, seed=VAL_SEED, fid_n_boot=0,
                                 kid_subsets=0)
        self._real_features: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        return {"dataset": {**self.dataset.describe(), "used": len(self.indices),
                            "skipped": [{"id": i, "reason": r} for i, r in self.skipped]},
                "masks": self.masks.describe(), "pairing": "image i <-> mask (i mod n_masks)",
                "sampling": "G_ema, truncation_psi 1, noise random, z/noise/mixing maps seeded per image",
                "metrics": self.suite.describe()}

    @torch.no_grad()
    def run(self, G_ema: torch.nn.Module) -> dict[str, Any]:
        """Validate ``G_ema``; returns ``{metric: value, ..., "n": N, "seconds": s, "status": {...}}``."""
        from inpaintbench.runner import composite, masked_input, quantize

        t0 = time.perf_counter()
        was_training = G_ema.training
        G_ema.eval()
        self.suite.reset()
        sums: dict[str, float] = {}
        n = 0
        for start in range(0, len(self.indices), self.batch):
            rows = list(range(start, min(start + self.batch, len(self.indices))))
            gt = np.stack([self.dataset[self.indices[r]][1] for r in rows])
            holes = np.stack([self.masks.get(r % len(self.masks)) for r in rows])
            shown = masked_input(gt, holes)
            x = torch.from_numpy(shown).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1
            m = torch.from_numpy(~holes).to(self.device).float()[:, None]
            gens = []
            for r in rows:
                g = torch.Generator(device=self.device)
                g.manual_seed(stream_seed(_TAG_VAL, VAL_SEED, r))
                gens.append(g)
            z = torch.cat([torch.randn(1, G_ema.z_dim, generator=g, device=g.device) for g in gens])
            ctx = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16" else _null()
            with ctx:
                out = G_ema(x, m, z, truncation_psi=1.0, noise_mode="random", generator=gens)
            pred01 = ((out.float() + 1) * 0.5).permute(0, 2, 3, 1).cpu().numpy()
            pred = np.stack([composite(quantize(pred01[i]), gt[i], holes[i]) for i in range(len(rows))])
            upd = self.suite.update(pred, gt, holes, ids=[self.ids[r] for r in rows])
            for k, v in upd.per_image.items():
                sums[k] = sums.get(k, 0.0) + float(np.sum(v))
            n += len(rows)
        out_metrics: dict[str, Any] = {k: v / n for k, v in sums.items()}
        for name, res in self.suite.compute().items():
            out_metrics[name] = res.value
        status = {k: v for k, v in self.suite.status.items() if v != "ok"}
        for name in self.suite.metrics:
            out_metrics.setdefault(name, None)
        G_ema.train(was_training)
        return {**out_metrics, "n": n, "seconds": round(time.perf_counter() - t0, 3),
                **({"status": status} if status else {})}


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _resolve_val_masks(spec: str, n: int) -> Any:
    """The fixed validation masks: a standard set's first ``n`` masks, or a mask-set folder."""
    from inpaintbench.masks import resolve_mask_set
    from inpaintbench.masks.standard import standard_definitions

    defs = standard_definitions()
    if spec in defs:
        return resolve_mask_set(spec, n=min(n, defs[spec].n))
    return resolve_mask_set(spec)
