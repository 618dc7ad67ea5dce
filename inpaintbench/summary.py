"""Turn per-image rows (+ set-level results) into ``summary.json``: means, 95% bootstrap CIs, bins.

Non-finite values (PSNR of a perfect prediction is +inf) are never averaged silently: they are
excluded from the mean and counted in ``n_nonfinite``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.masks.bins import BIN_LABELS
from inpaintbench.metrics.bootstrap import bootstrap_mean_ci
from inpaintbench.results import SCHEMA_VERSION, SUMMARY_SCHEMA


def metric_stats(values: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Mean and percentile-bootstrap 95% CI of the finite values, with counts."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"n": int(finite.size), "n_nonfinite": int(values.size - finite.size)}
    if finite.size == 0:
        out.update(mean=None, ci_low=None, ci_high=None)
        return out
    mean, lo, hi = bootstrap_mean_ci(finite, n_boot=n_boot, alpha=0.05, seed=seed)
    out.update(mean=float(mean), ci_low=float(lo), ci_high=float(hi))
    return out


def summarize(
    rows: pd.DataFrame,
    metric_names: list[str],
    set_metrics: dict[str, dict[str, Any]] | None = None,
    n_boot: int = 1000,
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
        "bootstrap": {"n_boot": n_boot, "seed": seed, "alpha": 0.05, "method": "percentile"},
    }
    for name in metric_names:
        if name in ok:
            summary["metrics"][name] = metric_stats(ok[name].to_numpy(), n_boot, seed)
    for label in BIN_LABELS:
        in_bin = ok[ok["bin"] == label]
        if in_bin.empty:
            continue
        entry: dict[str, Any] = {"n": int(len(in_bin))}
        for name in metric_names:
            if name in in_bin:
                entry[name] = metric_stats(in_bin[name].to_numpy(), n_boot, seed)
        summary["bins"][label] = entry
    return summary
