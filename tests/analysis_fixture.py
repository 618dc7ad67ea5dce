"""Deterministic run directories in the results format, for the analysis tests.

Written independently of the runner (plain json/pandas/numpy), so the analysis reader is tested
against the documented format rather than against whatever the writer happens to do. Summary CIs
use a normal approximation (mean ± 1.96·sd/√n): the leaderboard must print the summary's numbers,
not recompute them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from inpaintbench.masks.bins import BIN_LABELS, hole_ratio_bin

ALL_METRICS = ("psnr", "ssim", "l1", "psnr_hole", "l1_hole", "lpips")
IMG = 16  # side of the saved fixture images


def _enc(x: Any) -> Any:
    """JSON without NaN/inf literals, as the runner writes them ("nan"/"inf" strings)."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _enc(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_enc(v) for v in x]
    return x


def _stats(values: np.ndarray) -> dict[str, Any]:
    v = np.asarray(values, float)
    f = v[np.isfinite(v)]
    if f.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "n_nonfinite": int(v.size)}
    half = 1.96 * (f.std(ddof=1) / math.sqrt(f.size) if f.size > 1 else 0.0)
    return {
        "mean": float(f.mean()),
        "ci_low": float(f.mean() - half),
        "ci_high": float(f.mean() + half),
        "n": int(f.size),
        "n_nonfinite": int(v.size - f.size),
    }


def base_quality(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image hole ratios and difficulty, shared by every run on the same data."""
    rng = np.random.default_rng(12345)
    hole = np.round(rng.uniform(0.02, 0.78, n), 4)
    difficulty = rng.normal(0, 1, n)
    return hole, difficulty


def metric_values(n: int, effect: float, noise_seed: int, noise: float = 0.3) -> dict[str, np.ndarray]:
    """Plausible, correlated per-image metrics; ``effect`` > 0 makes every metric better."""
    hole, diff = base_quality(n)
    rng = np.random.default_rng(noise_seed)
    eps = rng.normal(0, noise, n)
    own = rng.normal(0, 1, (2, n))  # metric-specific noise, so no two metrics agree exactly
    q = -1.0 * diff + eps + effect  # higher = better image
    return {
        "psnr": 30.0 - 14.0 * hole + 1.2 * q,
        "ssim": np.clip(0.97 - 0.45 * hole + 0.02 * q, 0, 1),
        "l1": np.clip(0.004 + 0.07 * hole - 0.004 * q, 1e-4, None),
        "psnr_hole": 22.0 - 4.0 * hole + 1.5 * q,
        "l1_hole": np.clip(0.09 + 0.02 * hole - 0.01 * q + 0.004 * own[0], 1e-4, None),
        "lpips": np.clip(0.02 + 0.35 * hole - 0.015 * q + 0.02 * own[1], 0, None),
    }


def write_run(
    root: Path,
    name: str,
    *,
    model: str = "model-a",
    n: int = 40,
    effect: float = 0.0,
    noise_seed: int = 1,
    metrics: Sequence[str] = ("psnr", "ssim", "l1", "lpips"),
    dataset_digest: str = "ds0000000000aaaa",
    masks_digest: str = "mk0000000000bbbb",
    comparable: bool = True,
    failed: Sequence[int] = (),
    perfect: Sequence[int] = (),
    features_dim: int = 0,
    feature_shift: float = 0.0,
    save_images: bool = False,
    schema_version: int = 1,
    id_offset: int = 0,
    values: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one run directory ``root/name`` and return its path."""
    run = root / name
    run.mkdir(parents=True, exist_ok=True)
    hole, _ = base_quality(n + id_offset)
    hole = hole[id_offset:]
    vals = (
        values
        if values is not None
        else {k: v[id_offset:] for k, v in metric_values(n + id_offset, effect, noise_seed).items()}
    )
    rows = []
    for i in range(n):
        image_id, mask_id = f"img{i + id_offset:03d}", f"mask{i + id_offset:03d}"
        row: dict[str, Any] = {
            "sample_id": f"{image_id}|{mask_id}",
            "image_id": image_id,
            "mask_id": mask_id,
            "hole_ratio": float(hole[i]),
            "bin": hole_ratio_bin(float(hole[i])),
            "status": "ok",
            "error": None,
            "seconds": 0.01 * (1 + i % 3),
        }
        for m in metrics:
            row[m] = float(vals[m][i])
        if i in perfect:
            row.update(
                {
                    m: v
                    for m, v in {
                        "psnr": math.inf,
                        "psnr_hole": math.inf,
                        "l1": 0.0,
                        "l1_hole": 0.0,
                        "ssim": 1.0,
                        "lpips": 0.0,
                    }.items()
                    if m in metrics
                }
            )
        if i in failed:
            row.update({"status": "failed", "error": "RuntimeError: out of memory"})
            row.update({m: math.nan for m in metrics})
        rows.append(row)
    df = pd.DataFrame(rows)
    for m in metrics:
        df[m] = df[m].astype("float64")
    df.to_parquet(run / "per_image.parquet", index=False)

    manifest = {
        "schema": "inpaintbench.run",
        "schema_version": schema_version,
        "run_id": name,
        "command": ["inpaintbench", "run", "--model", model],
        "created": "2024-01-01T00:00:00+00:00",
        "finished": "2024-01-01T00:01:00+00:00",
        "model": {"name": model, "weights_sha256": None},
        "dataset": {
            "name": "fixture",
            "spec": "fixture",
            "digest": dataset_digest,
            "n": n + id_offset,
            "resolution": IMG,
            "resize_policy": "none",
        },
        "masks": {"name": "fixture-masks", "digest": masks_digest, "n": n + id_offset, "protocol": "box"},
        "seed": 0,
        "device": "cpu",
        "comparable": comparable,
        "versions": {"inpaintbench": "0.1.0", "numpy": "x"},
        "metrics": {"per_image": list(metrics)},
        "timings": {"total_s": 1.0},
    }
    (run / "manifest.json").write_text(json.dumps(_enc(manifest), indent=2))

    ok = df[df["status"] == "ok"]
    set_metrics: dict[str, Any] = {}
    if features_dim:
        rng_real = np.random.default_rng(777)
        real = rng_real.normal(0, 1, (n, features_dim)).astype(np.float32)
        rng_fake = np.random.default_rng(1000 + noise_seed)
        fake = (real + rng_fake.normal(0, 0.5, real.shape) + feature_shift).astype(np.float32)
        (run / "features").mkdir(exist_ok=True)
        np.save(run / "features" / "fake.npy", fake)
        np.save(run / "features" / "real.npy", real)
        d = fake.mean(0) - real.mean(0)
        set_metrics["fid"] = {
            "value": float(d @ d),
            "ci_low": None,
            "ci_high": None,
            "n": n,
            "status": "ok",
            "reason": None,
            "extra": {},
        }
    summary = {
        "schema": "inpaintbench.summary",
        "schema_version": schema_version,
        "n": n,
        "n_ok": int(len(ok)),
        "n_failed": int(n - len(ok)),
        "metrics": {m: _stats(ok[m].to_numpy()) for m in metrics},
        "set_metrics": set_metrics,
        "bins": {},
    }
    for label in BIN_LABELS:
        b = ok[ok["bin"] == label]
        if len(b):
            summary["bins"][label] = {"n": int(len(b)), **{m: _stats(b[m].to_numpy()) for m in metrics}}
    (run / "summary.json").write_text(json.dumps(_enc(summary), indent=2))

    if save_images:
        (run / "images").mkdir(exist_ok=True)
        for i, row in df.iterrows():
            sid = row["sample_id"].replace("|", "__")
            gt = ground_truth_image(row["image_id"])
            mask = np.zeros((IMG, IMG), np.uint8)
            mask[4:12, 4:12] = 255
            pred = gt.copy()
            pred[mask > 0] = (np.array([40, 90, 200]) + 7 * noise_seed + i) % 256
            inp = gt.copy()
            inp[mask > 0] = 255
            Image.fromarray(pred).save(run / "images" / f"{sid}_pred.png")
            Image.fromarray(inp).save(run / "images" / f"{sid}_input.png")
            Image.fromarray(mask).save(run / "images" / f"{sid}_mask.png")
    return run


def ground_truth_image(image_id: str) -> np.ndarray:
    """The fixture's 'dataset': a deterministic gradient image per id."""
    k = int(image_id[3:])
    y, x = np.mgrid[0:IMG, 0:IMG]
    img = np.stack([(x * 15 + 3 * k) % 256, (y * 15 + 5 * k) % 256, ((x + y) * 7 + 11 * k) % 256], axis=-1)
    return img.astype(np.uint8)


def golden_set(root: Path) -> list[Path]:
    """The small fixed results set behind the golden files: three models, one with failures and a
    perfect prediction, one a --limit quick look."""
    return [
        write_run(
            root,
            "run-baseline",
            model="mat-baseline",
            effect=0.0,
            noise_seed=1,
            metrics=ALL_METRICS,
            perfect=(3,),
        ),
        write_run(
            root,
            "run-finetuned",
            model="mat-finetuned",
            effect=0.25,
            noise_seed=2,
            metrics=ALL_METRICS,
            failed=(5, 9),
        ),
        write_run(
            root, "run-telea", model="telea", effect=-1.0, noise_seed=3, metrics=ALL_METRICS, comparable=False
        ),
    ]
