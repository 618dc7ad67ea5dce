"""Do the metrics agree with people? BAPPS' 2AFC score per per-image metric, and model-ranking
agreement (Kendall's τ with the Bradley–Terry order) for every metric.

2AFC score (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", §5; richzhang/PerceptualSimilarity ``lpips/trainer.py: score_2afc_dataset``): for a judged
pair with a share p of human votes for completion A (a "can't tell" is half a vote each way), a
metric that prefers A scores p, one that prefers B scores 1 − p, and a metric tie scores 0.5. The
score of a metric is the mean over judged (image, model pair) units: 1 = always agrees with the
majority, 0.5 = chance. The human ceiling is the same score between two different judgments of one
unit (BAPPS' p² + (1 − p)², without pairing a judgment with itself).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.metrics.info import METRICS, is_higher_better


def unit_votes(judgments: pd.DataFrame) -> pd.DataFrame:
    """Model-pair judgments per unit (sample, run_a, run_b): n, votes for A (ties half) and the
    within-unit pair agreement terms."""
    j = judgments[judgments["kind"] == "model"].copy()
    if j.empty:
        return pd.DataFrame(columns=["sample_id", "run_a", "run_b", "n", "votes_a", "pair_agree", "n_pairs"])
    v = np.where(j["choice"] == "tie", 0.5, (j["winner_run"] == j["run_a"]).astype(float))
    j["v"], j["v2"], j["w2"] = v, v * v, (1 - v) ** 2
    g = j.groupby(["sample_id", "run_a", "run_b"], sort=False)
    out = g.agg(n=("v", "size"), votes_a=("v", "sum"), q=("v2", "sum"), r=("w2", "sum")).reset_index()
    s, n = out["votes_a"], out["n"]
    # Σ_{i≠j} [v_i v_j + (1 - v_i)(1 - v_j)] over ordered pairs of distinct judgments of the unit.
    out["pair_agree"] = (s * s - out["q"]) + ((n - s) ** 2 - out["r"])
    out["n_pairs"] = n * (n - 1)
    return out.drop(columns=["q", "r"])


def _cluster_ci(scores: np.ndarray, clusters: np.ndarray, weights: np.ndarray, n_boot: int, seed: int,
                alpha: float) -> tuple[float, float]:
    """Percentile CI of a weighted mean, resampling clusters (images) with replacement."""
    ids, inv = np.unique(clusters, return_inverse=True)
    if len(ids) < 2 or n_boot <= 0:
        return math.nan, math.nan
    num = np.bincount(inv, weights=scores * weights, minlength=len(ids))
    den = np.bincount(inv, weights=weights, minlength=len(ids))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(ids), size=(n_boot, len(ids)))
    counts = np.stack([np.bincount(d, minlength=len(ids)) for d in draws]).astype(float)
    tot = counts @ den
    boot = np.where(tot > 0, (counts @ num) / np.where(tot > 0, tot, 1.0), np.nan)
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def metric_values(runs: Mapping[str, Any], metric: str) -> dict[str, pd.Series] | None:
    """``run_id -> per-sample values`` of a per-image metric, or None when a run lacks it."""
    out = {}
    for rid, run in runs.items():
        if metric not in run.rows.columns:
            return None
        ok = run.ok_rows
        out[rid] = pd.Series(ok[metric].to_numpy(float), index=ok["sample_id"].astype(str))
    return out


def two_afc(units: pd.DataFrame, runs: Mapping[str, Any], metrics: Sequence[str] | None = None,
            n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
            ceiling_units: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per per-image metric present in every run: n units, 2AFC score and CI, ranked best first;
    a last row ``human`` holds the human ceiling from ``ceiling_units`` (default ``units``; pass one
    judgment per rater and unit so that it measures agreement between people) when some unit has two
    judgments or more."""
    names = list(metrics) if metrics is not None else [m.name for m in METRICS.values() if m.per_image]
    rows = []
    p = (units["votes_a"] / units["n"]).to_numpy(float) if len(units) else np.zeros(0)
    for m in names:
        vals = metric_values(runs, m) if runs else None
        if vals is None or units.empty:
            continue
        a = np.array([vals[r].get(s, np.nan) if r in vals else np.nan
                      for r, s in zip(units["run_a"], units["sample_id"], strict=True)], dtype=float)
        b = np.array([vals[r].get(s, np.nan) if r in vals else np.nan
                      for r, s in zip(units["run_b"], units["sample_id"], strict=True)], dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        if not ok.any():
            continue
        if not is_higher_better(m):
            a, b = -a, -b
        score = np.where(a > b, p, np.where(b > a, 1 - p, 0.5))[ok]
        lo, hi = _cluster_ci(score, units["sample_id"].to_numpy()[ok], np.ones(ok.sum()), n_boot, seed, alpha)
        rows.append({"metric": m, "higher_is_better": is_higher_better(m), "n_units": int(ok.sum()),
                     "agreement": float(score.mean()), "ci_low": lo, "ci_high": hi,
                     "metric_ties": int(((a == b) & ok).sum())})
    out = pd.DataFrame(rows, columns=["metric", "higher_is_better", "n_units", "agreement", "ci_low", "ci_high",
                                      "metric_ties"])
    out = out.sort_values("agreement", ascending=False, kind="stable").reset_index(drop=True)
    cu = units if ceiling_units is None else ceiling_units
    multi = cu[cu["n_pairs"] > 0] if len(cu) else cu
    if len(multi):
        per_unit = (multi["pair_agree"] / multi["n_pairs"]).to_numpy(float)
        lo, hi = _cluster_ci(per_unit, multi["sample_id"].to_numpy(), np.ones(len(multi)), n_boot, seed, alpha)
        human = {"metric": "human", "higher_is_better": True, "n_units": len(multi),
                 "agreement": float(per_unit.mean()), "ci_low": lo, "ci_high": hi, "metric_ties": 0}
        out = pd.concat([out, pd.DataFrame([human])], ignore_index=True)
    return out


def ranking_agreement(bt: pd.DataFrame, runs: Mapping[str, Any]) -> pd.DataFrame:
    """Kendall's τ between each metric's model order and the Bradley–Terry order.

    Set-level metrics (FID, KID, IDS) use the run summary's value; per-image metrics the mean over
    the run's scored samples. Each metric is oriented so that larger = better before ranking.
    """
    from inpaintbench.humans.stats import kendall_tau

    rows = []
    ids = [r for r in bt["run_id"] if r in runs]
    score = bt.set_index("run_id")["score"]
    for m in METRICS.values():
        vals = []
        for rid in ids:
            run = runs[rid]
            if m.per_image:
                v = float(run.ok_rows[m.name].mean()) if m.name in run.rows.columns else math.nan
            else:
                entry = run.set_metric(m.name)
                v = entry["value"] if entry else math.nan
            vals.append(v if m.higher_is_better else -v)
        vals_a = np.array(vals, dtype=float)
        ok = np.isfinite(vals_a)
        if ok.sum() < 2:
            entries = [runs[r].set_metric(m.name) for r in ids] if not m.per_image else []
            recorded = [e for e in entries if e]
            if recorded:  # selected for these runs but not computed: say why
                reason = next((str(e.get("reason") or e.get("status")) for e in recorded if e.get("reason")),
                              "unavailable")
                rows.append({"metric": m.name, "kind": "set", "n_models": int(ok.sum()), "tau": math.nan,
                             "p_value": math.nan, "note": reason.split(" (fix:")[0][:160]})
            continue
        tau, pv = kendall_tau(vals_a[ok], score.loc[np.array(ids)[ok]].to_numpy(float))
        note = "two models: τ is ±1 by construction" if ok.sum() == 2 else ""
        rows.append({"metric": m.name, "kind": "per-image mean" if m.per_image else "set",
                     "n_models": int(ok.sum()), "tau": tau, "p_value": pv, "note": note})
    return pd.DataFrame(rows, columns=["metric", "kind", "n_models", "tau", "p_value", "note"])
