"""Which leaderboard entries may be marked best (bold / ★) or tied (≈): the significance test.

It lives apart from :mod:`inpaintbench.analysis.leaderboard` (which builds the tables) so that the
statistical claim a reader will publish is in one short module that can be read and reviewed on
its own; the table builders only call :func:`mark_best_and_ties` and :func:`mark_bins_best_and_ties`.

Within a comparability group the run with the best mean is marked best only when it beats every
other comparable run, each by a paired test on the samples both scored (per-image metrics: paired
BCa bootstrap CI of the mean difference excluding 0 *and* Wilcoxon signed-rank p, Holm-adjusted
over the k-1 comparisons (Holm 1979), below α = 0.05; FID/KID: the feature bootstrap of the
difference, CI excluding 0 and Holm-adjusted bootstrap p). Otherwise the best mean and every run
not distinguishable from it are marked tied (≈). P-IDS/U-IDS are not marked (their test refits an
SVM per resample, too slow for the table printed after every run; ``inpaintbench compare`` tests
them). An untestable comparison (no shared samples, no saved features) marks nothing and says why
in the notes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.analysis import fmt
from inpaintbench.analysis.compare_sets import _network_mismatch, load_space_features, space_features_dir
from inpaintbench.analysis.load import PER_IMAGE_METRICS, Run
from inpaintbench.analysis.stats import holm, set_metric_bootstrap, wilcoxon_signed_rank
from inpaintbench.errors import InputError
from inpaintbench.metrics.bootstrap import paired_bootstrap_diff_ci
from inpaintbench.metrics.info import feature_space, is_higher_better

__all__ = [
    "ALPHA",
    "PAIRED_N_BOOT",
    "RULE",
    "SET_N_BOOT",
    "SET_TEST_MAX_N",
    "mark_best_and_ties",
    "mark_bins_best_and_ties",
]

#: Significance level of the "best" marks.
ALPHA = 0.05
PAIRED_N_BOOT = 1000  # resamples of the paired per-image bootstrap (the summary's minimum)
SET_N_BOOT = 200  # feature-bootstrap resamples for FID/KID: p floor 1/201, enough for Holm at k <= 9
#: Above this many shared samples FID/KID are not tested here: each FID resample is an N x N
#: eigenproblem per run (measured on 2 shared cores, 3 runs, D = 2048: ~1 s for FID at N = 48,
#: ~4.5 s at N = 128, ~15 s at N = 256); ``inpaintbench compare`` tests larger sets.
SET_TEST_MAX_N = 128
_UNMARKED_SET = ("p_ids", "u_ids")
#: The marking rule as printed in every leaderboard caption.
RULE = (
    f"bold = significantly best at α={ALPHA:g} (paired test, Holm); ≈ = not distinguishable from the best"
)

# best - other, as (ci_low, ci_high, p), or the reason the comparison cannot be made
_Test = Callable[["Run", "Run", int], "tuple[float, float, float] | str"]


def mark_best_and_ties(df: pd.DataFrame, runs: Sequence[Run], metrics: Sequence[str]) -> list[str]:
    """Add ``<metric>_best`` and ``<metric>_tied`` (bool) columns to the leaderboard ``df``, in place.

    ``df`` has one row per run with the columns ``group``, ``comparable``, ``_pos`` (the index of
    the row's run in ``runs``) and ``<metric>`` (its mean) for each of ``metrics``. Returns the
    notes on comparisons that could not be made (one per distinct reason).
    """
    features: dict[tuple[int, str], tuple[np.ndarray, np.ndarray] | str] = {}
    untested: dict[str, dict[str, None]] = {}
    for m in metrics:
        if m in _UNMARKED_SET:
            df[f"{m}_best"], df[f"{m}_tied"] = False, False
            if int(np.isfinite(df[m].astype(float)).sum()) >= 2:
                untested.setdefault(
                    "its test refits an SVM per resample, too slow here; `inpaintbench compare` tests it", {}
                )[fmt.label(m)] = None
            continue
        test = _per_image_test(m) if m in PER_IMAGE_METRICS else _set_test(m, features)
        df[f"{m}_best"], df[f"{m}_tied"], reasons = _mark(df, runs, m, test)
        for why in reasons:
            untested.setdefault(why, {})[fmt.label(m)] = None
    return _untested_notes(untested)


def mark_bins_best_and_ties(df: pd.DataFrame, runs: Sequence[Run]) -> list[str]:
    """Add ``best`` and ``tied`` (bool) columns to the long per-bin table ``df``, in place.

    ``df`` has the columns ``group``, ``comparable``, ``_pos``, ``metric``, ``bin`` and ``mean``;
    each metric and bin is tested on the shared samples of that bin. Returns the notes on
    comparisons that could not be made.
    """
    df["best"] = False
    df["tied"] = False
    untested: dict[str, dict[str, None]] = {}
    for (m, label), g in df.groupby(["metric", "bin"], sort=False):
        best, tied, reasons = _mark(g, runs, m, _per_image_test(m, label), value_col="mean")
        df.loc[g.index, "best"] = best
        df.loc[g.index, "tied"] = tied
        for why in reasons:
            untested.setdefault(why, {})[fmt.label(m)] = None
    return _untested_notes(untested, " in some hole-ratio bins")


def _shared_positions(a: Run, b: Run, bin_label: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in ``a.rows`` and ``b.rows`` of the ok samples both runs scored (joined on
    sample_id, in ``a``'s order), optionally within one hole-ratio bin."""

    def ok(r: Run) -> pd.DataFrame:
        keep = (r.rows["status"] == "ok").to_numpy()
        if bin_label is not None:
            keep = keep & (r.rows["bin"] == bin_label).to_numpy()
        return pd.DataFrame({"sample_id": r.rows["sample_id"].to_numpy()[keep], "pos": np.flatnonzero(keep)})

    m = ok(a).merge(ok(b), on="sample_id", suffixes=("_a", "_b"))
    return m["pos_a"].to_numpy(), m["pos_b"].to_numpy()


def _per_image_test(metric: str, bin_label: str | None = None) -> _Test:
    """Paired bootstrap CI (BCa) of mean(best - other) and Wilcoxon signed-rank p on shared samples."""

    def test(best: Run, other: Run, seed: int) -> tuple[float, float, float] | str:
        if metric not in best.rows.columns or metric not in other.rows.columns:
            return "per-image values missing"
        ia, ib = _shared_positions(best, other, bin_label)
        va = best.rows[metric].to_numpy(np.float64)[ia]
        vb = other.rows[metric].to_numpy(np.float64)[ib]
        d = paired_bootstrap_diff_ci(va, vb, n_boot=PAIRED_N_BOOT, alpha=ALPHA, seed=seed)
        if d.n < 2 or not (math.isfinite(d.lo) and math.isfinite(d.hi)):
            return "fewer than 2 shared samples"
        return d.lo, d.hi, wilcoxon_signed_rank(va, vb)[1]

    return test


def _set_test(metric: str, features: dict[tuple[int, str], tuple[np.ndarray, np.ndarray] | str]) -> _Test:
    """Feature bootstrap of ``metric(best) - metric(other)`` on the shared samples, from the saved
    features of the metric's space (Inception for FID/KID/PRDC, DINOv2, CLIP)."""
    space = feature_space(metric) or "inception"

    def feats(r: Run) -> tuple[np.ndarray, np.ndarray] | str:
        key = (id(r), space)
        if key not in features:
            try:
                features[key] = load_space_features(r, space) if space_features_dir(r, space) is not None \
                    else "no saved features"
            except InputError as exc:
                features[key] = f"unreadable features ({exc.message})"
        return features[key]

    def test(best: Run, other: Run, seed: int) -> tuple[float, float, float] | str:
        fa, fb = feats(best), feats(other)
        if isinstance(fa, str) or isinstance(fb, str):
            return fa if isinstance(fa, str) else str(fb)
        mismatch = _network_mismatch(best, other, (best.label, other.label), space)
        if mismatch:
            return mismatch
        ia, ib = _shared_positions(best, other)
        if len(ia) < 2:
            return "fewer than 2 shared samples"
        if len(ia) > SET_TEST_MAX_N:
            return f"not tested here above N = {SET_TEST_MAX_N} (slow); use `inpaintbench compare`"
        r = set_metric_bootstrap(
            metric, fa[0][ia], fa[1][ia], fb[0][ib], fb[1][ib], n_boot=SET_N_BOOT, alpha=ALPHA, seed=seed,
            features=space,
        )
        return r.ci_low, r.ci_high, r.p

    return test


def _rank(
    cands: Sequence[tuple[Any, Run, float]], higher: bool, test: _Test
) -> tuple[set[Any], set[Any], str | None]:
    """(best, tied, why untestable) among ``cands`` = (key, run, mean) of one comparability group.

    The best mean is "best" only when it is significantly better than every other candidate (CI
    of the difference on the right side of 0 and Holm-adjusted p < ALPHA); otherwise it and every
    candidate not significantly worse are "tied". Fewer than two finite means mark nothing.
    """
    cands = [c for c in cands if isinstance(c[2], float | int) and math.isfinite(c[2])]
    if len(cands) < 2:
        return set(), set(), None
    order = sorted(cands, key=lambda c: -c[2] if higher else c[2])  # stable: first run wins exact ties
    top, rest = order[0], order[1:]
    results = [test(top[1], o[1], j) for j, o in enumerate(rest)]
    why = next((r for r in results if isinstance(r, str)), None)
    if why is not None:
        return set(), set(), why
    p_adj = holm(np.array([r[2] for r in results], dtype=np.float64))  # Holm (1979) over k-1 tests
    beats = [
        bool((r[0] > 0 if higher else r[1] < 0) and p_adj[j] < ALPHA)  # NaN p never beats
        for j, r in enumerate(results)
    ]
    if all(beats):
        return {top[0]}, set(), None
    return set(), {top[0]} | {o[0] for o, b in zip(rest, beats, strict=True) if not b}, None


def _mark(
    df: pd.DataFrame, runs: Sequence[Run], metric: str, test: _Test, group_col: str = "group",
    value_col: str | None = None,
) -> tuple[pd.Series, pd.Series, list[str]]:
    """(best, tied, reasons) of ``metric`` for every row of ``df`` (``runs[i]`` is the run of row i).

    Non-comparable rows (``--limit`` quick looks) are only ranked when the group has nothing else.
    """
    col = value_col or metric
    best = pd.Series(False, index=df.index)
    tied = pd.Series(False, index=df.index)
    reasons: list[str] = []
    for _, g in df.groupby(group_col, sort=False):
        cand = g[g["comparable"]] if g["comparable"].any() else g
        b, t, why = _rank(
            [(i, runs[pos], float(cand.at[i, col])) for i, pos in zip(cand.index, cand["_pos"], strict=True)],
            is_higher_better(metric),
            test,
        )
        best.loc[list(b)] = True
        tied.loc[list(t)] = True
        if why:
            reasons.append(why)
    return best, tied, reasons


def _untested_notes(reasons: dict[str, dict[str, None]], where: str = "") -> list[str]:
    return [
        f"{', '.join(names)}: no best marked{where} ({why})" for why, names in reasons.items()
    ]

