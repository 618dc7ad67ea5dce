"""Statistics of paired-comparison judgments: Wilson intervals, the sign test, Bradley–Terry scores
with bootstrap intervals, and Krippendorff's α.

Everything is float64 NumPy/SciPy; no randomness without an explicit seed.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
from scipy import stats as sps


def wilson(k: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (Wilson 1927; Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return (math.nan, math.nan)
    z = float(sps.norm.ppf(1 - alpha / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial (sign) test of wins vs losses at p = 1/2; ties are left out, as in the
    classical sign test (Dixon & Mood 1946). NaN without any decided judgment."""
    n = wins + losses
    if n == 0:
        return math.nan
    return float(sps.binomtest(int(wins), int(n), 0.5, alternative="two-sided").pvalue)


def bradley_terry(wins: np.ndarray, prior: float = 0.1, tol: float = 1e-10, max_iter: int = 100_000) -> np.ndarray:
    """Bradley–Terry log-strengths (mean 0) from win matrices, by Hunter's (2004) MM algorithm.

    ``wins[..., i, j]`` is how often i beat j (a tie counts half a win for each side); leading axes
    are independent problems (bootstrap replicates), fitted together. ``prior`` adds that many
    virtual wins each way to every pair that was compared, which keeps the estimate finite when a
    model never wins (the MLE is then at infinity) and shrinks it by O(prior / n) otherwise.
    The model: P(i beats j) = π_i / (π_i + π_j) (Bradley & Terry 1952).
    """
    w = np.asarray(wins, dtype=np.float64)
    k = w.shape[-1]
    n = w + np.swapaxes(w, -1, -2)
    compared = n > 0
    w = w + prior * compared
    n = w + np.swapaxes(w, -1, -2)
    total = w.sum(axis=-1)
    p = np.ones(w.shape[:-1])
    for _ in range(max_iter):
        denom = (n / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), p)
        new = np.where(new > 0, new, 1e-300)
        new = new / np.exp(np.log(new).mean(axis=-1, keepdims=True))
        if np.max(np.abs(np.log(new) - np.log(p))) < tol:
            p = new
            break
        p = new
    s = np.log(p)
    return s - s.mean(axis=-1, keepdims=True) if k else s


def bt_win_probability(scores: np.ndarray, i: int, j: int) -> float:
    return float(1.0 / (1.0 + math.exp(scores[j] - scores[i])))


def bootstrap_bradley_terry(per_cluster: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                            prior: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT scores and percentile bootstrap intervals, resampling clusters (images) with replacement.

    ``per_cluster[c]`` is the win matrix of cluster c. Judgments of one image are not independent
    (the same completions), so the image is the resampling unit (a cluster bootstrap, Davison &
    Hinkley 1997 §3.8). Returns (scores, low, high).
    """
    per_cluster = np.asarray(per_cluster, dtype=np.float64)
    scores = bradley_terry(per_cluster.sum(axis=0), prior=prior)
    c = per_cluster.shape[0]
    if c < 2 or n_boot <= 0:
        nan = np.full_like(scores, math.nan)
        return scores, nan, nan
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, c, size=(n_boot, c))
    counts = np.stack([np.bincount(d, minlength=c) for d in draws]).astype(np.float64)
    boot = bradley_terry(np.einsum("bc,cij->bij", counts, per_cluster), prior=prior)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return scores, low, high


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Krippendorff's α for nominal data (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

    ``units[u]`` holds the values the raters gave unit u (None = missing). Only units with at least
    two values are pairable. With the coincidence matrix o_ck = Σ_u (number of ordered pairs (c, k)
    of values in u) / (m_u − 1) and n_c = Σ_k o_ck, n = Σ_c n_c:
    α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k. NaN when nothing is pairable or every value is equal.
    """
    counts: list[dict[Hashable, int]] = []
    for values in units:
        vals = [v for v in values if v is not None]
        if len(vals) < 2:
            continue
        d: dict[Hashable, int] = {}
        for v in vals:
            d[v] = d.get(v, 0) + 1
        counts.append(d)
    if not counts:
        return math.nan
    cats = sorted({c for d in counts for c in d}, key=repr)
    index = {c: i for i, c in enumerate(cats)}
    o = np.zeros((len(cats), len(cats)))
    for d in counts:
        m = sum(d.values())
        for c, nc in d.items():
            for k, nk in d.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                o[index[c], index[k]] += pairs / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    observed = o.sum() - np.trace(o)
    expected = n_c.sum() ** 2 - (n_c**2).sum()
    if expected == 0:
        return math.nan
    return float(1.0 - (n - 1) * observed / expected)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Kendall's τ-b and its two-sided p-value (SciPy); NaN with fewer than two finite pairs."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return math.nan, math.nan
    res = sps.kendalltau(a[ok], b[ok])
    return float(res.statistic), float(res.pvalue)
