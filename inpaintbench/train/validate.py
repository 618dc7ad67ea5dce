"""Validation during training: the EMA generator scored exactly as ``inpaintbench run`` scores it.

The numbers must be the ones a user gets later from ``run --model <registered> --data folder:VAL
--masks <val masks> --seed 0`` on the snapshot, so validation has no inference code of its own: the
live ``G_ema`` is wrapped in the same :class:`~inpaintbench.models.mat.adapter.MATInpainter` (same
polarity, range, per-sample z from the sample id, noise mode, precision), the samples are planned by
the runner's :func:`~inpaintbench.runner.plan_samples` (image ``i`` with mask ``i mod n_masks``), and
each batch goes through the runner's :func:`~inpaintbench.runner.model_batches` (masked input,
output checks, quantise, composite) and the same :class:`~inpaintbench.metrics.suite.MetricSuite`.
Only the run directory is not written: the per-image values go into the snapshot's state instead.
Fixed across snapshots: the same samples, masks and seeds, so two snapshots differ only by weights.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch

from inpaintbench.errors import InputError

#: validation uses ``run``'s default seed, so its numbers equal a default ``run`` of the snapshot
VAL_SEED = 0
VAL_RESIZE_POLICY = "center-crop"  # `run`'s default dataset policy


class Validator:
    """Holds the validation images, masks and metric networks between snapshots."""

    def __init__(self, folder: str, resolution: int, masks: str, metrics: tuple[str, ...], device: torch.device,
                 batch: int = 8, limit: int | None = None, require: tuple[str, ...] = (),
                 weights_dir: str | None = None, offline: bool | None = None, allow_unverified: bool = False,
                 precision: str = "fp32", feature_extractor: str = "inception-tf"):
        from inpaintbench.datasets import load_dataset
        from inpaintbench.metrics.suite import MetricSuite
        from inpaintbench.runner import batches_of, plan_samples

        ds = load_dataset(f"folder:{folder}", resolution=resolution, resize_policy=VAL_RESIZE_POLICY)
        problems = dict(ds.verify())
        if problems:
            first = sorted(problems.items())[0]
            raise InputError(f"--val {folder}: {len(problems)} unreadable image(s); first: {first[0]}: {first[1]}",
                             "remove or fix them (validation pairs image i with mask i like `run`, so it cannot "
                             "skip images without changing every pairing)")
        self.dataset = ds
        self.masks = _resolve_val_masks(masks, len(ds.ids))
        res = self.masks.resolution
        if res is not None and tuple(res) != (resolution, resolution):
            raise InputError(f"--val-masks {masks}: masks are {res[0]}x{res[1]}, training is {resolution}",
                             f"use a {resolution} mask set (e.g. mat-large-{resolution})")
        self.samples = plan_samples(ds.ids, self.masks.ids, limit)
        if not self.samples:
            raise InputError(f"--val {folder}: no validation images", "pass a folder with readable images")
        self.batches = batches_of(self.samples, batch)
        self.device = device
        self.precision = precision
        self.spec = {"dataset": f"folder:{folder}", "masks": masks, "resolution": resolution, "seed": VAL_SEED,
                     "limit": limit, "precision": precision, "feature_extractor": feature_extractor}
        self.suite = MetricSuite(metrics=metrics, device=device, feature_extractor=feature_extractor,
                                 weights_dir=weights_dir, offline=offline,
                                 allow_unverified=allow_unverified, require=require, seed=VAL_SEED, fid_n_boot=0,
                                 kid_subsets=0)

    def describe(self) -> dict[str, Any]:
        return {"dataset": {**self.dataset.describe(), "used": len(self.samples)},
                "masks": self.masks.describe(), "pairing": "image i <-> mask (i mod n_masks), as `run`",
                "sampling": "MATInpainter defaults, as `run` (G_ema, truncation 1, official noise mode, "
                            "z from the sample id and seed)",
                "equivalent_run": self.equivalent_command("<registered model>"),
                "metrics": self.suite.describe()}

    def equivalent_command(self, model: str) -> str:
        s = self.spec
        cmd = (f"inpaintbench run --model {model} --data {s['dataset']} --masks {s['masks']} --resolution "
               f"{s['resolution']} --seed {s['seed']} --feature-extractor {s['feature_extractor']}")
        if s["limit"] is not None:
            cmd += f" --limit {s['limit']}"
        return cmd + ("" if s["precision"] == "fp32" else f" -O precision={s['precision']}")

    @torch.no_grad()
    def run(self, G_ema: torch.nn.Module) -> dict[str, Any]:
        """Validate ``G_ema``: ``{metric: value, ..., "n", "seconds", "per_image": [rows], "status"?}``."""
        from inpaintbench.models.mat.adapter import MATInpainter
        from inpaintbench.runner import model_batches

        t0 = time.perf_counter()
        was_training = G_ema.training
        G_ema.eval()
        model = MATInpainter.from_generator(G_ema, name="validation", device=self.device, seed=VAL_SEED,
                                            precision=self.precision, source="training G_ema")
        self.suite.reset()
        rows: list[dict[str, Any]] = []
        try:
            every = set(range(len(self.batches)))
            for b, result in model_batches(model, self.dataset, self.masks, self.batches, every):
                batch = self.batches[b]
                ok = np.array([e is None for e in result.errors])
                values: dict[str, np.ndarray] = {}
                if ok.any():
                    values = self.suite.update(result.pred[ok], result.gt[ok], result.holes[ok],
                                               ids=[s.image_id for s, good in zip(batch, ok, strict=True) if good]
                                               ).per_image
                k = 0
                for i, s in enumerate(batch):
                    row: dict[str, Any] = {"sample_id": s.sample_id, "status": "ok" if ok[i] else "failed"}
                    if ok[i]:
                        row.update({name: float(v[k]) for name, v in values.items()})
                        k += 1
                    else:
                        row["error"] = result.errors[i]
                    rows.append(row)
        finally:
            G_ema.train(was_training)
        out: dict[str, Any] = {}
        good = [r for r in rows if r["status"] == "ok"]
        for name in {k for r in good for k in r} - {"sample_id", "status"}:
            vals = np.array([r[name] for r in good], dtype=np.float64)
            finite = vals[np.isfinite(vals)]  # +inf PSNR of an exact fill is capped by the suite anyway
            out[name] = float(finite.mean()) if finite.size else None
        for name, res in self.suite.compute().items():
            out[name] = res.value
        status = {k: v for k, v in self.suite.status.items() if v != "ok"}
        failed = len(rows) - len(good)
        if failed:
            warnings.warn(f"validation: {failed} sample(s) failed; first: {next(r for r in rows if 'error' in r)}",
                          UserWarning, stacklevel=2)
        for name in self.suite.metrics:
            out.setdefault(name, None)
        return {**out, "n": len(good), "seconds": round(time.perf_counter() - t0, 3), "per_image": rows,
                **({"status": status} if status else {})}


def _resolve_val_masks(spec: str, n: int) -> Any:
    """The fixed validation masks: a standard set's first ``n`` masks, or a mask-set folder."""
    from inpaintbench.masks import resolve_mask_set
    from inpaintbench.masks.standard import standard_definitions

    defs = standard_definitions()
    if spec in defs:
        return resolve_mask_set(spec, n=min(n, defs[spec].n))
    return resolve_mask_set(spec)
