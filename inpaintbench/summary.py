"""Turn per-image rows (+ set-level results) into ``summary.json``: means, 95% bootstrap CIs, bins.

- CIs are BCa bootstrap intervals from :mod:`inpaintbench.metrics.bootstrap` (scipy), with at
  least :data:`~inpaintbench.metrics.bootstrap.MIN_N_BOOT` resamples; the method actually used is
  recorded per metric (``ci_method``) and for the run (``summary["bootstrap"]``).
- Fewer than two finite values: ``ci_low``/``ci_high`` are null (no interval, never a zero-width one).
- PSNR is capped at :data:`~inpaintbench.metrics.pixel.PSNR_CAP_DB` by the metric itself, so every
  model is averaged over the same samples; values at the cap are counted in ``n_capped``.
- Non-finite values (NaN hole-only metrics of images without hole; +inf PSNR from older writers)
  are never averaged silently: they are excluded from the mean and counted in ``n_nonfinite``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.masks.bins import BIN_LABELS
from inpaintbench.metrics.bootstrap import METHOD_DESCRIPTION, MIN_N_BOOT, bootstrap_mean_ci
from inpaintbench.metrics.pixel import PSNR_CAP_DB
from inpaintbench.results import SCHEMA_VERSION, SUMMARY_SCHEMA

ALPHA = 0.05
#: Metrics whose values are capped by their definition, and the cap.
CAPPED_METRICS: dict[str, float] = {"psnr": PSNR_CAP_DB, "psnr_hole": PSNR_CAP_DB}


def metric_stats(values: np.ndarray, n_boot: int, seed: int, metric: str | None = None) -> dict[str, Any]:
    """Mean and BCa-bootstrap 95% CI of the finite values, with counts (``n_capped`` for PSNR)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"n": int(finite.size), "n_nonfinite": int(values.size - finite.size)}
    cap = CAPPED_METRICS.get(metric or "")
    if cap is not None:
        out["n_capped"] = int(np.count_nonzero(finite >= cap))
    if finite.size == 0:
        out.update(mean=None, ci_low=None, ci_high=None, ci_method="none")
        return out
    ci = bootstrap_mean_ci(finite, n_boot=n_boot, alpha=ALPHA, seed=seed)
    has_ci = np.isfinite(ci.lo) and np.isfinite(ci.hi)
    out.update(
        mean=float(ci.mean),
        ci_low=float(ci.lo) if has_ci else None,
        ci_high=float(ci.hi) if has_ci else None,
        ci_method=ci.method,
    )
    return out


def summarize(
    rows: pd.DataFrame,
    metric_names: list[str],
    set_metrics: dict[str, dict[str, Any]] | None = None,
    n_boot: int = MIN_N_BOOT,
    seed: int = 0,
) -> dict[str, Any]:
    """Build the summary dict for a run from its rows (failed rows are counted, not scored)."""
    ok = rows[rows["status"] == "ok"]
    summary: dict[str, Any] = {
        "schema": SUMMARY_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "n": int(len(rows)),
        "n_ok": int(len(ok)),
        "n_failed": int((rows["status"] != "ok").sum()),
        "failures": rows.loc[rows["status"] != "ok", ["sample_id", "error"]].head(20).to_dict("records"),
        "metrics": {},
        "set_metrics": set_metrics or {},
        "bins": {},
        "bootstrap": {
            "n_boot": int(n_boot),
            "seed": seed,
            "alpha": ALPHA,
            "method": METHOD_DESCRIPTION,
            "resampling": "per image (sample), with replacement; no CI when fewer than 2 values",
            "psnr_cap_db": PSNR_CAP_DB,
        },
    }
    for name in metric_names:
        if name in ok:
            summary["metrics"][name] = metric_stats(ok[name].to_numpy(), n_boot, seed, name)
    for label in BIN_LABELS:
        in_bin = ok[ok["bin"] == label]
        if in_bin.empty:
            continue
        entry: dict[str, Any] = {"n": int(len(in_bin))}
        for name in metric_names:
            if name in in_bin:
                entry[name] = metric_stats(in_bin[name].to_numpy(), n_boot, seed, name)
        summary["bins"][label] = entry
    return summary
