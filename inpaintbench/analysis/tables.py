"""Leaderboard tables as data: one row per run, and per hole-ratio bin; no rendering here.

Numbers come from each run's ``summary.json`` (what the runner printed), so the leaderboard and the
run agree to the last digit; a metric missing there is recomputed from ``per_image.parquet``.
Runs on different datasets or mask sets are never ranked together.

"Best" (bold / ★) is a claim a reader will publish, so it is tested: the best mean of a
comparability group is marked best only when paired tests (Holm-adjusted) show it beats every
other comparable run; otherwise it and every run not distinguishable from it are marked tied (≈).
The test is in :mod:`inpaintbench.analysis.ranking`. Layers: load -> stats -> ranking -> tables ->
{leaderboard_render, correlate, plots} -> report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.analysis import fmt
from inpaintbench.analysis.load import (
    PER_IMAGE_METRICS,
    SET_METRICS,
    Run,
    as_float,
    as_runs,
    check_same_data,
    digest_groups,
)
from inpaintbench.analysis.ranking import mark_best_and_ties, mark_bins_best_and_ties
from inpaintbench.analysis.stats import mean_with_ci
from inpaintbench.errors import InputError
from inpaintbench.masks.bins import BIN_LABELS
from inpaintbench.metrics.pixel import PSNR_CAP_DB
from inpaintbench.summary import CAPPED_METRICS

__all__ = ["bins_table", "leaderboard_table"]

_FID_MIN_N = 2048


def _metric_entry(run: Run, metric: str, notes: list[str]) -> dict[str, float]:
    """mean/ci/n/n_nonfinite of a per-image metric, from the summary or recomputed."""
    entry = (run.summary.get("metrics") or {}).get(metric)
    if isinstance(entry, dict) and "mean" in entry:
        return {
            "mean": as_float(entry.get("mean")),
            "ci_low": as_float(entry.get("ci_low")),
            "ci_high": as_float(entry.get("ci_high")),
            "n": as_float(entry.get("n")),
            "n_nonfinite": as_float(entry.get("n_nonfinite", 0)),
            "n_capped": as_float(entry.get("n_capped", 0)),
        }
    values = run.ok_rows[metric].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    mean, lo, hi = mean_with_ci(values, n_boot=1000, seed=0)
    notes.append(
        f"{run.label}: {fmt.label(metric)} recomputed from per_image.parquet (missing in summary.json)"
    )
    return {
        "mean": mean,
        "ci_low": lo,
        "ci_high": hi,
        "n": float(finite.sum()),
        "n_nonfinite": float((~finite).sum()),
        "n_capped": float((values[finite] >= CAPPED_METRICS.get(metric, math.inf)).sum()),
    }


def leaderboard_table(
    runs: Sequence[Run | str | os.PathLike[str]],
    allow_mixed: bool = False,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per run: ``<metric>`` and ``<metric>_ci_low/_ci_high/_n/_n_nonfinite/_n_capped/_best/_tied``.

    ``_best``: significantly best in its group; ``_tied``: not distinguishable from the best mean
    (the test is in :mod:`inpaintbench.analysis.ranking`). ``df.attrs`` holds ``metrics`` (display order), ``mixed``
    (bool), ``notes`` (list of str) and ``groups`` (one description per dataset/mask-set
    combination). Raises :class:`InputError` for runs on different data unless ``allow_mixed``.
    """
    runs = as_runs(runs)
    mixed = check_same_data(runs, allow_mixed, "rank these runs together")
    notes: list[str] = []
    groups = digest_groups(runs)
    group_of = {id(r): i + 1 for i, g in enumerate(groups) for r in g}

    present_pi = [m for m in PER_IMAGE_METRICS if any(m in r.per_image_metrics for r in runs)]
    present_set = [m for m in SET_METRICS if any(r.set_metric(m) is not None for r in runs)]
    wanted = list(metrics) if metrics else present_pi + present_set
    unknown = [m for m in wanted if m not in present_pi + present_set]
    if unknown:
        raise InputError(
            f"metric(s) {', '.join(unknown)} not found in these runs",
            f"use some of: {', '.join(present_pi + present_set)}",
        )

    records: list[dict[str, Any]] = []
    unavailable: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
    for pos, r in enumerate(runs):
        rec: dict[str, Any] = {
            "_pos": pos,
            "model": r.label,
            "run_id": r.run_id,
            "dataset": r.dataset_name,
            "dataset_digest": r.dataset_digest,
            "masks": r.mask_name,
            "masks_digest": r.masks_digest,
            "group": group_of[id(r)],
            "comparable": r.comparable,
            "n": r.n,
            "n_ok": int(r.summary.get("n_ok", len(r.ok_rows))),
            "n_failed": r.n_failed,
        }
        for m in wanted:
            if m in PER_IMAGE_METRICS:
                e = _metric_entry(r, m, notes) if m in r.per_image_metrics else None
            else:
                s = r.set_metric(m)
                e = None
                if s is not None:
                    e = {
                        "mean": s["value"],
                        "ci_low": s["ci_low"],
                        "ci_high": s["ci_high"],
                        "n": as_float(s.get("n")),
                        "n_nonfinite": 0.0,
                        "n_capped": 0.0,
                    }
                    if s.get("status", "ok") != "ok":
                        why = (s.get("reason") or "no reason given").removeprefix("unavailable: ")
                        unavailable.setdefault(why, ({}, {}))
                        unavailable[why][0][r.label] = None
                        unavailable[why][1][fmt.label(m)] = None
            e = e or {
                "mean": math.nan,
                "ci_low": math.nan,
                "ci_high": math.nan,
                "n": math.nan,
                "n_nonfinite": math.nan,
                "n_capped": math.nan,
            }
            rec[m] = e["mean"]
            for k in ("ci_low", "ci_high", "n", "n_nonfinite", "n_capped"):
                rec[f"{m}_{k}"] = e[k]
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    # One note per distinct reason, not one per model x metric.
    for why, (labels, names) in unavailable.items():
        notes.append(f"{', '.join(names)} unavailable for {', '.join(labels)}: {why}")
    # A metric no run could compute gets no column (its reason is in the notes).
    wanted = [m for m in wanted if df[m].notna().any()] if len(df) else wanted
    untested_notes = mark_best_and_ties(df, runs, wanted)
    df = df.drop(columns=["_pos"])

    # Notes: everything a reader needs to not over-read the table.
    for r in runs:
        if not r.comparable:
            notes.append(f"† {r.label}: not comparable with full-protocol results (a --limit quick look)")
        if not r.finished:
            notes.append(f"{r.label}: the manifest has no finish time (interrupted run?)")
    for _, row in df.iterrows():
        for m in wanted:
            k = row[f"{m}_n_nonfinite"]
            if isinstance(k, float) and math.isfinite(k) and k > 0:
                why = " (+inf PSNR = a pixel-perfect prediction)" if m.startswith("psnr") else ""
                notes.append(
                    f"‡ {row['model']}: {int(k)} non-finite {fmt.label(m)} value(s) excluded "
                    f"from the mean{why}"
                )
    for _, row in df.iterrows():
        for m in wanted:
            k = row.get(f"{m}_n_capped", 0.0)
            if isinstance(k, float) and math.isfinite(k) and k > 0:
                notes.append(
                    f"{row['model']}: {int(k)} {fmt.label(m)} value(s) at the {PSNR_CAP_DB:g} dB cap "
                    "(pixel-perfect predictions), included in the mean"
                )
    notes += untested_notes
    if int(df["n_failed"].sum()) > 0:
        notes.append("Failed samples are excluded from every mean; see the Failed column.")
    small = [m for m in wanted if m in SET_METRICS and (df[f"{m}_n"].dropna() < _FID_MIN_N).any()]
    if small:
        notes.append(
            f"{', '.join(fmt.label(m) for m in small)} computed on fewer than {_FID_MIN_N} images: "
            "FID is biased upward and IDS tends to 0 at small N; compare only at equal N."
        )
    if mixed:
        notes.insert(
            0,
            f"MIXED DATA: {len(groups)} different sample sets or feature extractors (column Group). "
            "Best and tied entries are marked within each group only; rows from different groups are "
            "not comparable.",
        )
    group_desc = [g[0].group_description() for g in groups]
    df.attrs = {"metrics": wanted, "mixed": mixed, "notes": notes, "groups": group_desc}
    return df


def bins_table(
    runs: Sequence[Run | str | os.PathLike[str]],
    allow_mixed: bool = False,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per hole-ratio bin, long format: ``model, run_id, group, bin, n, metric, mean, ci_low, ci_high,
    n_nonfinite, best, tied`` (tested as in the main table, within digest group, metric and bin, on
    the shared samples of that bin)."""
    runs = as_runs(runs)
    check_same_data(runs, allow_mixed, "rank these runs together")
    groups = digest_groups(runs)
    group_of = {id(r): i + 1 for i, g in enumerate(groups) for r in g}
    wanted = (
        list(metrics)
        if metrics
        else [m for m in PER_IMAGE_METRICS if any(m in r.per_image_metrics for r in runs)]
    )
    wanted = [m for m in wanted if m in PER_IMAGE_METRICS]
    records = []
    for pos, r in enumerate(runs):
        bins = r.summary.get("bins") or {}
        for label in BIN_LABELS:
            entry = bins.get(label)
            if not isinstance(entry, dict):
                continue
            for m in wanted:
                e = entry.get(m)
                if not isinstance(e, dict):
                    continue
                records.append(
                    {
                        "_pos": pos,
                        "model": r.label,
                        "run_id": r.run_id,
                        "group": group_of[id(r)],
                        "comparable": r.comparable,
                        "bin": label,
                        "n": int(entry.get("n", 0)),
                        "metric": m,
                        "mean": as_float(e.get("mean")),
                        "ci_low": as_float(e.get("ci_low")),
                        "ci_high": as_float(e.get("ci_high")),
                        "n_nonfinite": as_float(e.get("n_nonfinite", 0)),
                    }
                )
    cols = [
        "_pos",
        "model",
        "run_id",
        "group",
        "comparable",
        "bin",
        "n",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "n_nonfinite",
    ]
    df = pd.DataFrame.from_records(records, columns=cols)
    untested_notes = mark_bins_best_and_ties(df, runs)
    df.attrs = {"metrics": wanted, "notes": untested_notes}
    return df.drop(columns=["comparable", "_pos"])
