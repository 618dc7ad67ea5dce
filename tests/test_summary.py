"""summary.json statistics: BCa CIs recorded truthfully, no CI below two values, PSNR cap counted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from inpaintbench.errors import InputError
from inpaintbench.masks.bins import hole_ratio_bin
from inpaintbench.metrics.bootstrap import MIN_N_BOOT, bootstrap_mean_ci
from inpaintbench.metrics.pixel import PSNR_CAP_DB, pixel_metrics
from inpaintbench.summary import metric_stats, summarize


def make_rows(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hole = np.r_[0.05, rng.uniform(0.12, 0.55, n - 1)]  # exactly one sample in the 0-10% bin
    rows = pd.DataFrame(
        {
            "sample_id": [f"img{i:03d}|m{i:03d}" for i in range(n)],
            "hole_ratio": hole,
            "bin": [hole_ratio_bin(float(h)) for h in hole],
            "status": ["ok"] * n,
            "error": [None] * n,
            "psnr": rng.normal(25, 3, n),
            "lpips": rng.gamma(2.0, 0.05, n),
        }
    )
    rows.loc[3, "psnr"] = PSNR_CAP_DB  # a pixel-perfect prediction, as the capped metric reports it
    rows.loc[[5, 6], ["status", "error", "psnr", "lpips"]] = ["failed", "RuntimeError: x", np.nan, np.nan]
    return rows


def test_summary_means_cis_and_bootstrap_record():
    rows = make_rows()
    s = summarize(rows, ["psnr", "lpips"], seed=3)
    assert (s["n"], s["n_ok"], s["n_failed"]) == (30, 28, 2)
    ok = rows[rows["status"] == "ok"]
    for m in ("psnr", "lpips"):
        e = s["metrics"][m]
        ref = bootstrap_mean_ci(ok[m].to_numpy(), seed=3)
        assert e["mean"] == pytest.approx(ok[m].mean(), rel=1e-12)
        assert (e["ci_low"], e["ci_high"], e["ci_method"]) == (ref.lo, ref.hi, ref.method)
        assert e["ci_method"] == "BCa" and e["n"] == 28 and e["n_nonfinite"] == 0
    b = s["bootstrap"]
    assert b["n_boot"] >= MIN_N_BOOT and "BCa" in b["method"] and "scipy.stats.bootstrap" in b["method"]
    assert b["seed"] == 3 and b["alpha"] == 0.05
    json.dumps(s, allow_nan=False)  # no NaN literal anywhere (CIs that do not exist are null)


def test_fewer_than_two_values_have_no_ci():
    s = summarize(make_rows(), ["psnr"])
    single = s["bins"]["0-10%"]
    assert single["n"] == 1 and single["psnr"]["mean"] is not None
    assert single["psnr"]["ci_low"] is None and single["psnr"]["ci_high"] is None
    assert single["psnr"]["ci_method"] == "none"
    empty = metric_stats(np.array([np.nan, np.nan]), MIN_N_BOOT, 0, "psnr")
    assert empty["mean"] is None and empty["ci_low"] is None and empty["n_nonfinite"] == 2


def test_capped_psnr_is_counted_and_averaged():
    s = summarize(make_rows(), ["psnr", "lpips"])
    assert s["metrics"]["psnr"]["n_capped"] == 1
    assert "n_capped" not in s["metrics"]["lpips"]  # only capped metrics carry the count


def test_perfect_prediction_keeps_every_sample_in_the_mean():
    """End to end with the real metric: the perfect sample is averaged (at the cap), not dropped."""
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    pred[2] = gt[2]
    holes = np.zeros((4, 32, 32), bool)
    holes[:, 8:20, 8:20] = True
    out = pixel_metrics(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(holes))
    psnr = out["psnr"].numpy()
    stats = metric_stats(psnr, MIN_N_BOOT, 0, "psnr")
    assert (stats["n"], stats["n_nonfinite"], stats["n_capped"]) == (4, 0, 1)
    assert stats["mean"] == pytest.approx(psnr.mean(), rel=1e-12) and psnr[2] == PSNR_CAP_DB


def test_too_few_resamples_are_refused():
    with pytest.raises(InputError, match="n_boot"):
        summarize(make_rows(), ["psnr"], n_boot=200)
