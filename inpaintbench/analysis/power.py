"""Power analysis for the paired tests of ``inpaintbench compare``: how many images detect a difference.

Pure computations on arrays; :mod:`inpaintbench.analysis.power_report` applies them to two runs.

**The test being powered** is compare's decision rule (:mod:`inpaintbench.analysis.compare`): a
difference is called when the Holm-adjusted test p-value is below α *and* the (1 − α) bootstrap CI
of the difference excludes 0. Holm's adjusted p of a metric is at most ``m`` times its raw p
(Bonferroni), so requiring ``p < α / m`` (``family = m``, the number of metrics compare tests) is
sufficient whatever the other metrics do: the N reported is conservative for Holm, exact for
``family = 1``.

**Per-image metrics** (Wilcoxon signed-rank + paired bootstrap CI of the mean): power is estimated by
simulation from the empirical paired differences ``d`` (the "simulation / resampling" approach to
power, e.g. Arnold et al. 2011, *BMC Med. Res. Methodol.* 11:94; bootstrap power, Efron & Tibshirani
1993, §25). Under the location-shift model the differences at effect Δ are ``d − mean(d) + Δ``
(same spread and shape as observed). Each simulated study draws N of them with replacement and runs
the same Wilcoxon test as compare (scipy's ``wilcoxon``, ``zero_method="wilcox"``, two-sided,
vectorised over studies; all-zero samples get p = 1 as in
:func:`~inpaintbench.analysis.stats.wilcoxon_signed_rank`). The bootstrap-CI condition is taken in
its first-order form, ``|mean| > z_{1−α/2} · sd / √N`` (the bootstrap SE of a mean is sd/√N with
the population sd; BCa and percentile agree with it to O(1/N)). A study counts as a detection when
both hold with the sign of Δ. Studies use common random numbers (the same draws for every N and
Δ: an N-sample is a prefix of the (N+1)-sample), so the estimated power is monotone in Δ and
close to monotone in N, and bisection finds the smallest N. Beyond :data:`MAX_SIM_N` the N is
extrapolated analytically: Noether's (1987, *JASA* 82:645) formula for the signed-rank test,
``N = (z_{1−α_t/2} + z_{power})² / (3 (p' − ½)²)`` with ``p' = P(D_i + D_j > 0)`` estimated from the
shifted differences, and the normal formula ``N = ((z_{1−α/2} + z_power) sd / Δ)²`` for the CI;
the larger is reported (both conditions must hold) and marked as extrapolated.

**Set-level metrics** (FID, KID, IDS...: compare's paired bootstrap over images): the spread of the
metric difference is measured by the m-out-of-n bootstrap (Bickel, Götze & van Zwet 1997): draw m
image indices with replacement, the same for both runs and their ground truths, recompute both
metrics with compare's own code, at several m; fit ``sd(m) = c / √m`` (the 1/√N law of smooth
statistics) by least squares. At N images compare's bootstrap distribution of the difference is
then about Normal(D, (c/√N)²) with D ≈ Δ, and it detects D when ``|D| > z_{1−α_t/2} c/√N``, so
``power(N) = Φ(|Δ|√N / c − z_{1−α_t/2})``, ``N = ((z_{1−α_t/2} + z_power) c / Δ)²`` and the minimal
detectable difference at N is ``(z_{1−α_t/2} + z_power) c / √N``. The bias of FID/KID at small N
is not modelled: Δ is the difference to detect at whatever N.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from inpaintbench.analysis import fmt

#: Largest N simulated; beyond it the N needed is extrapolated analytically (memory: N × n_sim draws).
MAX_SIM_N = 5000
#: Simulated studies per power estimate: binomial SE √(0.8·0.2/400) = 0.02 at 80 % power.
DEFAULT_N_SIM = 400
_SIM_CHUNK = 4_000_000  # elements per block of simulated studies
_NOETHER_PAIRS = 200_000  # random pairs (i, j) that estimate p' = P(D_i + D_j > 0)


def z(q: float) -> float:
    return float(sps.norm.ppf(q))


@dataclass(frozen=True)
class PowerSettings:
    """Target power, significance level and Holm family size (see the module docstring)."""

    power: float = 0.8
    alpha: float = 0.05
    family: int = 1
    n_sim: int = DEFAULT_N_SIM
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.power < 1 or not 0 < self.alpha < 1 or self.family < 1 or self.n_sim < 10:
            raise ValueError(f"invalid power settings {self}")

    @property
    def alpha_test(self) -> float:
        """Level the test p-value must beat: α / family (Holm's worst case, Bonferroni)."""
        return self.alpha / self.family


# --- per-image metrics: simulation from the paired differences --------------------------------------
class PairedPower:
    """Power of compare's per-image test for the empirical paired differences ``d`` (A − B)."""

    def __init__(self, diffs: np.ndarray, settings: PowerSettings = PowerSettings()):
        d = np.asarray(diffs, dtype=np.float64).ravel()
        d = d[np.isfinite(d)]
        if d.size < 2:
            raise ValueError("power needs at least 2 finite paired differences")
        self.d = d
        self.centered = d - d.mean()
        self.sd = float(d.std())  # population sd: the bootstrap SE of the mean is sd / √N
        self.s = settings
        self._draws: np.ndarray | None = None

    def _indices(self, n: int) -> np.ndarray:
        """(n_sim, n) resampling indices; rows are prefixes of one (MAX_SIM_N, n_sim) draw (common
        random numbers: the N-sample is the first N values of the (N+1)-sample)."""
        if self._draws is None or self._draws.shape[0] < n:
            size = max(n, 64 if self._draws is None else 2 * self._draws.shape[0])
            rng = np.random.default_rng(self.s.seed)
            self._draws = rng.integers(0, self.d.size, size=(min(size, MAX_SIM_N), self.s.n_sim))
        return self._draws[:n].T

    def power(self, n: int, delta: float) -> float:
        """Share of simulated studies of size ``n`` at effect ``delta`` that compare would call (right sign)."""
        n = int(n)
        if n < 2 or delta == 0 or not math.isfinite(delta):
            return 0.0
        if n > MAX_SIM_N:
            raise ValueError(f"simulated power is limited to N <= {MAX_SIM_N}")
        idx = self._indices(n)
        x_all = self.centered + delta
        z_ci = z(1 - self.s.alpha / 2)
        hits = 0
        per = max(1, _SIM_CHUNK // n)
        for start in range(0, idx.shape[0], per):
            x = x_all[idx[start:start + per]]
            mean = x.mean(axis=1)
            se = x.std(axis=1) / math.sqrt(n)
            ci_ok = np.sign(mean) == np.sign(delta)
            ci_ok &= np.abs(mean) > z_ci * se
            p = wilcoxon_rows(x)
            hits += int(np.count_nonzero(ci_ok & (p < self.s.alpha_test)))
        return hits / idx.shape[0]

    def n_needed(self, delta: float) -> tuple[float, bool]:
        """(smallest N with power >= target, extrapolated?); ``inf`` for Δ = 0."""
        if delta == 0 or not math.isfinite(delta):
            return math.inf, False
        target = self.s.power
        lo, hi = 1, 2
        while hi <= MAX_SIM_N and self.power(hi, delta) < target:
            lo, hi = hi, hi * 2
        if hi > MAX_SIM_N:
            if self.power(MAX_SIM_N, delta) < target:
                return float(max(self.analytic_n(delta), MAX_SIM_N + 1)), True
            hi = MAX_SIM_N
        while hi - lo > 1:  # invariant: power(lo) < target <= power(hi)
            mid = (lo + hi) // 2
            if self.power(mid, delta) >= target:
                hi = mid
            else:
                lo = mid
        return float(hi), False

    def analytic_n(self, delta: float) -> float:
        """Noether's N for the signed-rank test and the normal N for the CI; the larger (see module)."""
        zb = z(self.s.power)
        x = self.centered + delta
        rng = np.random.default_rng(self.s.seed + 1)
        i, j = rng.integers(0, x.size, size=(2, _NOETHER_PAIRS))
        keep = i != j
        s = x[i[keep]] + x[j[keep]]
        p_prime = float(np.mean(s > 0) + 0.5 * np.mean(s == 0))
        n_w = math.inf if p_prime == 0.5 else (z(1 - self.s.alpha_test / 2) + zb) ** 2 / (3 * (p_prime - 0.5) ** 2)
        n_m = ((z(1 - self.s.alpha / 2) + zb) * self.sd / abs(delta)) ** 2 if self.sd > 0 else 0.0
        return float(math.ceil(max(n_w, n_m)))

    def mdd(self, n: int, sign: float = 1.0) -> float:
        """Minimal detectable difference at N: the smallest |Δ| (signed like ``sign``) with power >= target."""
        sign = -1.0 if sign < 0 else 1.0
        if n < 2:
            return math.nan
        if n > MAX_SIM_N:
            return sign * self._analytic_mdd(n, sign)
        scale = max(self.sd, float(np.max(np.abs(self.d))), 1e-300)
        lo, hi = 0.0, (z(1 - self.s.alpha_test / 2) + z(self.s.power)) * scale / math.sqrt(n)
        for _ in range(60):
            if self.power(n, sign * hi) >= self.s.power:
                break
            lo, hi = hi, hi * 2
        else:
            return math.nan
        for _ in range(30):  # power is monotone in Δ under common random numbers
            mid = 0.5 * (lo + hi)
            if self.power(n, sign * mid) >= self.s.power:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-4 * hi:
                break
        return sign * hi

    def _analytic_mdd(self, n: int, sign: float) -> float:
        """Smallest |Δ| whose :meth:`analytic_n` is <= n (bisection; analytic_n decreases in |Δ|)."""
        lo, hi = 0.0, max(self.sd, 1e-12) * 10
        while self.analytic_n(sign * hi) > n:
            hi *= 2
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            if self.analytic_n(sign * mid) <= n:
                hi = mid
            else:
                lo = mid
        return hi

    def curve(self, ns: Sequence[int], delta: float) -> np.ndarray:
        return np.array([self.power(n, delta) if n <= MAX_SIM_N else math.nan for n in ns])


def wilcoxon_rows(x: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p of each row, exactly as compare computes it for one sample.

    Compare calls ``scipy.stats.wilcoxon(d, zero_method="wilcox")`` (``method="auto"``), which picks
    per sample: the asymptotic normal test (tie-corrected, no continuity correction) above 50 values;
    at most 50 values: the exact distribution without ties or zeros, else an exact permutation test
    (all 2^n sign flips) up to 13 values, else the normal test. Calling scipy on a 2-D array would
    make that choice once for all rows, so rows are grouped by the choice each would get alone;
    the permutation rows use :func:`_sign_flip_p` (tested equal to scipy). All-zero rows: p = 1.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = x.shape[1]
    p = np.ones(x.shape[0])
    live = ~np.all(x == 0, axis=1)
    if n > 50:
        groups = {"asymptotic": live}
    else:
        srt = np.sort(np.abs(x), axis=1)
        tied = (np.diff(srt, axis=1) == 0).any(axis=1) | (x == 0).any(axis=1)
        groups = {"exact": live & ~tied, "perm" if n <= 13 else "asymptotic": live & tied}
    for method, rows in groups.items():
        if not rows.any():
            continue
        if method == "perm":
            p[rows] = [_sign_flip_p(r) for r in x[rows]]
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sps.wilcoxon(x[rows], axis=1, zero_method="wilcox", alternative="two-sided", method=method)
        p[rows] = np.nan_to_num(np.asarray(res.pvalue, dtype=np.float64), nan=1.0)
    return p


_FLIPS: dict[int, np.ndarray] = {}


def _sign_flip_p(d: np.ndarray) -> float:
    """scipy's exact permutation p of the signed-rank statistic (``permutation_type="samples"``, all
    2^k sign patterns of the k non-zero values; two-sided = 2 min(P(T <= t), P(T >= t)) with scipy's
    relative tolerance 1e-14, clipped to 1). Zeros are dropped first (``zero_method="wilcox"``)."""
    nz = d[d != 0]
    k = nz.size
    if k == 0:
        return 1.0
    if k not in _FLIPS:
        _FLIPS[k] = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(np.float64)
    ranks = sps.rankdata(np.abs(nz))
    null = _FLIPS[k] @ ranks
    t = float(ranks[nz > 0].sum())
    gamma = abs(1e-14 * t)
    less = np.count_nonzero(null <= t + gamma) / null.size
    greater = np.count_nonzero(null >= t - gamma) / null.size
    return float(min(1.0, 2 * min(less, greater)))


# --- set-level metrics: spread of the difference vs N --------------------------------------------
@dataclass(frozen=True)
class SpreadFit:
    """``sd(m) ≈ c / √m`` fitted to the m-out-of-n bootstrap spreads of a set-metric difference."""

    c: float
    sizes: tuple[int, ...]
    sds: tuple[float, ...]
    slope: float  # log-log slope of sd vs m (-0.5 under the 1/√N law), a diagnostic
    n_boot: int


def fit_spread(sizes: Sequence[int], sds: Sequence[float], n_boot: int) -> SpreadFit:
    """Least-squares ``c`` of ``sd = c/√m`` (minimises Σ (sd_m − c/√m)²) and the log-log slope."""
    m = np.asarray(sizes, dtype=np.float64)
    s = np.asarray(sds, dtype=np.float64)
    keep = np.isfinite(s) & (m > 0)
    m, s = m[keep], s[keep]
    if m.size == 0:
        return SpreadFit(math.nan, tuple(int(v) for v in sizes), tuple(float(v) for v in sds), math.nan, n_boot)
    c = float(np.sum(s / np.sqrt(m)) / np.sum(1.0 / m))
    pos = s > 0
    slope = float(np.polyfit(np.log(m[pos]), np.log(s[pos]), 1)[0]) if pos.sum() >= 2 else math.nan
    return SpreadFit(c, tuple(int(v) for v in sizes), tuple(float(v) for v in sds), slope, n_boot)


def bootstrap_spread(diff_of: Callable[[np.ndarray], float], n: int, sizes: Sequence[int], n_boot: int,
                     seed: int = 0) -> SpreadFit:
    """m-out-of-n bootstrap spread of ``diff_of(indices)`` (the metric difference of the rows
    ``indices``, drawn with replacement, common to both runs) at each size m; fitted by :func:`fit_spread`."""
    rng = np.random.default_rng(seed)
    sds = []
    for m in sizes:
        vals = np.array([diff_of(rng.integers(0, n, size=int(m))) for _ in range(n_boot)], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        sds.append(float(vals.std(ddof=1)) if vals.size >= 2 else math.nan)
    return fit_spread(sizes, sds, n_boot)


def spread_sizes(n: int) -> tuple[int, ...]:
    """Subsample sizes for the spread fit: N/4, N/2 and N (at least 4 images each, distinct)."""
    return tuple(sorted({max(4, n // 4), max(4, n // 2), max(4, n)}))


def normal_power(delta: float, c: float, n: float, settings: PowerSettings) -> float:
    """Power at N of compare's set-metric test under the normal model (module docstring)."""
    if delta == 0 or not math.isfinite(delta) or not math.isfinite(c) or c <= 0 or n <= 0:
        return 0.0 if c > 0 or not math.isfinite(c) else 1.0
    return float(sps.norm.cdf(abs(delta) * math.sqrt(n) / c - z(1 - settings.alpha_test / 2)))


def normal_n_needed(delta: float, c: float, settings: PowerSettings) -> float:
    if delta == 0 or not math.isfinite(delta) or not math.isfinite(c):
        return math.inf
    if c <= 0:
        return 2.0
    k = z(1 - settings.alpha_test / 2) + z(settings.power)
    return float(max(2, math.ceil((k * c / abs(delta)) ** 2)))


def normal_mdd(c: float, n: float, settings: PowerSettings) -> float:
    if not math.isfinite(c) or n <= 0:
        return math.nan
    return (z(1 - settings.alpha_test / 2) + z(settings.power)) * c / math.sqrt(n)


def n_grid(n_current: int, n_needed: float, points: int = 14) -> list[int]:
    """Geometric grid of N for a power curve, covering the current N and the N needed (capped)."""
    top = max(8, 2 * n_current, int(min(2 * n_needed, 4 * MAX_SIM_N)) if math.isfinite(n_needed) else 8 * n_current)
    grid = np.unique(np.round(np.geomspace(4, top, points)).astype(int))
    return [int(v) for v in grid]


# --- words ----------------------------------------------------------------------------------------
def n_text(n: float, extrapolated: bool = False) -> str:
    if not isinstance(n, (int, float)) or math.isnan(n):
        return "—"
    if math.isinf(n):
        return "∞"
    return ("≈ " if extrapolated else "") + f"{int(n):,}"


def detect_line(metric: str, delta: float, n_needed: float, n: int, s: PowerSettings,
                extrapolated: bool = False) -> str:
    """The sentence compare's verdict gains for a metric."""
    head = f"{fmt.header(metric)}: to detect Δ = {fmt.signed(delta, metric)}"
    if not math.isfinite(n_needed):
        return f"{head} you would need infinitely many images (Δ = 0)"
    return (f"{head} you would need about N = {n_text(n_needed, extrapolated).removeprefix('≈ ')} images "
            f"({100 * s.power:g}% power, α = {s.alpha:g}, Holm over {s.family}; N here {n})")
