"""Resampled FID: the bootstrap interval over images, and FID∞ (FID extrapolated to N → ∞).

Small N: FID is biased upward roughly ∝ 1/N and values at different N are not comparable;
:func:`~inpaintbench.metrics.fid.small_sample_warning` gives the caveat, :func:`fid_infinity`
(Chong & Forsyth, "Effectively Unbiased FID and Inception Score and where to find them", CVPR
2020) extrapolates to N → ∞.
The bootstrap resamples through multiplicities (:func:`frechet_distance_weighted`), never copies
of the rows; the algebra is :mod:`inpaintbench.metrics.frechet`'s.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.metrics.frechet import (
    _as_features,
    _fid_from_rows,
    _mean_trace_cov,
    _moments,
    _row_chunks,
    _scaled_centred_rows,
    _sqrt_factor,
    _sum_sqrt_eigvals,
    _use_rows,
    frechet_distance,
    frechet_distance_from_moments,
)


# ----------------------------------------------------------------------------------------------
# resampled FID and the bootstrap interval
# ----------------------------------------------------------------------------------------------
def _check_weights(w: Any, n: int, name: str) -> np.ndarray:
    w = np.asarray(w)
    if w.shape != (n,) or not np.issubdtype(w.dtype, np.integer) or (w < 0).any():
        raise InputError(f"{name}: expected {n} non-negative integer multiplicities, got shape {w.shape}, "
                         f"dtype {w.dtype}", "pass np.bincount(indices, minlength=N) of a resample")
    if int((w > 0).sum()) < 2:
        raise InputError(f"{name}: a resample needs at least 2 distinct rows", "draw a larger resample")
    return w


def _weighted_fid(real: np.ndarray, fake: np.ndarray, wr: np.ndarray, wf: np.ndarray, rows: bool) -> float:
    """FID of the resample with multiplicities ``wr``/``wf``, by the route chosen by the caller
    (``rows``: the N×N nuclear norm; else the d×d weighted moments). No validation (hot loop)."""
    if rows:
        return _fid_from_rows(*_scaled_centred_rows(real, wr), *_scaled_centred_rows(fake, wf))
    mu1, s1 = _moments(real, wr)
    mu2, s2 = _moments(fake, wf)
    return frechet_distance_from_moments(mu1, s1, mu2, s2)


def frechet_distance_weighted(real_feats: Any, fake_feats: Any, weights_real: Any,
                              weights_fake: Any | None = None) -> float:
    """FID of a bootstrap resample given as multiplicities (``np.bincount`` of the drawn indices).

    Equal (to round-off) to ``frechet_distance(real[idx], fake[idx])`` for the drawn ``idx``, without
    materialising the resample: the rows route weights the centred rows by √(wᵢ/W), the moments route
    accumulates weighted moments (module docstring). ``weights_fake=None`` reuses ``weights_real``
    (a paired resample: an inpainted image stays with its ground truth). This is the entry point
    :func:`fid_bootstrap_ci` and ``inpaintbench.analysis.stats.set_metric_bootstrap`` resample through.
    """
    real = _as_features(real_feats, "real_feats")
    fake = _as_features(fake_feats, "fake_feats", real.shape[1])
    wr = _check_weights(weights_real, len(real), "weights_real")
    wf = wr if weights_fake is None else _check_weights(weights_fake, len(fake), "weights_fake")
    if weights_fake is None and len(real) != len(fake):
        raise InputError(f"shared weights need index-matched sets, got {len(real)} real vs {len(fake)} fake",
                         "pass weights_fake for unrelated sets")
    return _weighted_fid(real, fake, wr, wf, _use_rows(len(real), len(fake), real.shape[1]))


class FIDBootstrapCI(NamedTuple):
    """``lo, hi`` first (``ci[0], ci[1]``); ``fid`` is the point estimate on the full sets."""

    lo: float
    hi: float
    fid: float
    boot_mean: float  # mean FID over resamples: > fid, the resampling bias (duplicated images)
    boot_std: float  # the bootstrap standard error the interval is built from
    n_boot: int
    alpha: float
    paired: bool
    method: str
    boot_below: float = float("nan")  # share of resamples <= fid: BC's Φ(z0), 0 in practice (see below)


#: Default resamples: enough for a standard error (coefficient of variation ≈ 1/√(2B) ≈ 5 %,
#: Efron & Tibshirani 1993, §6.4), which is all the normal interval needs.
FID_N_BOOT = 200


def fid_bootstrap_ci(real_feats: Any, fake_feats: Any, n_boot: int = FID_N_BOOT, alpha: float = 0.05,
                     seed: int = 0, paired: bool | None = None) -> FIDBootstrapCI:
    """Normal-approximation bootstrap interval for FID over images: ``fid ± z₁₋α/₂ · se_boot``.

    Method ("standard" interval, Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, §12.2
    and §13.2, with the bootstrap estimate of the standard error, §6): draw ``n_boot`` resamples of
    the images with replacement (``paired=True``: the same indices for real and fake, which keeps an
    inpainted image with its ground truth; default: paired when both sets have the same length),
    compute FID_b of each through :func:`frechet_distance_weighted`, take se_boot = sd(FID_b)
    (ddof = 1), report ``fid ± Φ⁻¹(1 − alpha/2) · se_boot``.

    Why not a percentile-type interval (percentile, BC, or BCa of Efron 1987)? They all read the
    interval off the quantiles of FID_b, and FID_b is not centred anywhere near ``fid``: a resample
    repeats ~37 % of the images, fewer distinct images mean a larger finite-N bias, and that bias
    (∝ d/N) exceeds FID's sampling spread (∝ 1/√N). In our trials (``tests/test_fid.py``; ReLU
    features with N/d from 0.02 to 60, N = 48..4000) *no* resample out of 200-300 fell at or below
    the point estimate, so BC's bias correction z₀ = Φ⁻¹(#{FID_b ≤ fid}/B) is −∞ and BC/BCa are
    undefined; plain percentiles would sit entirely above ``fid``. The spread of FID_b is still
    informative, so we use it as a standard error, not its location. Measured against the spread of
    FID over independent samples, se_boot was ~0.9× the truth for N ≫ d and 1.5-3× it (a
    conservative, wider interval) for N ≲ d. ``boot_below`` reports the share of resamples at or
    below ``fid`` so this can be checked on real features. The interval describes the variation of
    FID at this N; it does not correct FID's own small-N bias (use :func:`fid_infinity` for that).

    Resamples: ``n_boot = 200`` (default) gives se_boot within ≈ ±5 % (CV ≈ 1/√(2B) for a normal
    statistic); 50 gives ±10 %. Cost per resample at d = 2048: with N < d one N×N product and SVD
    (milliseconds at N in the hundreds, ~0.1 s at N = 1000); with N ≥ d two weighted d×d
    covariances (≈ N·d² multiply-adds each) plus one FID from moments (a pivoted Cholesky, two d×d products
    and a symmetric eigensolve, ≈ 1-2 s), i.e. tens of seconds per resample at N = 36,500 on a
    2-core CPU (``benchmarks/bench_fid.py``).
    """
    from scipy.stats import norm

    if int(n_boot) < 2:
        raise InputError(f"n_boot must be >= 2, got {n_boot}", f"use e.g. n_boot={FID_N_BOOT}")
    if not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha}", "use alpha=0.05 for a 95% interval")
    real = _as_features(real_feats, "real_feats")
    fake = _as_features(fake_feats, "fake_feats", real.shape[1])
    nr, nf = len(real), len(fake)
    if min(nr, nf) < 2:
        raise InputError(f"FID bootstrap needs at least 2 images per side, got {nr}/{nf}",
                         "evaluate more images")
    if paired is None:
        paired = nr == nf
    if paired and nr != nf:
        raise InputError(f"paired bootstrap needs index-matched sets, got {nr} real vs {nf} fake",
                         "pass paired=False for unrelated sets")
    point = frechet_distance(real, fake)
    rows_route = _use_rows(nr, nf, real.shape[1])
    if rows_route:  # small (N < d): convert once rather than in every resample
        real, fake = real.astype(np.float64), fake.astype(np.float64)
    rng = np.random.default_rng(seed)
    boots = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        wr = np.bincount(rng.integers(0, nr, nr), minlength=nr)
        wf = wr if paired else np.bincount(rng.integers(0, nf, nf), minlength=nf)
        boots[b] = _weighted_fid(real, fake, wr, wf, rows_route)
    se = float(boots.std(ddof=1))
    half = float(norm.ppf(1.0 - float(alpha) / 2.0)) * se
    kind = "paired" if paired else "independent"
    return FIDBootstrapCI(float(point - half), float(point + half), float(point), float(boots.mean()), se,
                          int(n_boot), float(alpha), bool(paired),
                          f"normal interval with bootstrap SE ({int(n_boot)} {kind} resamples)",
                          float(np.mean(boots <= point)))


# ----------------------------------------------------------------------------------------------
# FID∞ (Chong & Forsyth 2020)
# ----------------------------------------------------------------------------------------------
class FIDInfinity(NamedTuple):
    """``fid_inf`` first (``res[0]``); the fitted line is ``FID(N) ≈ fid_inf + slope / N``."""

    fid_inf: float
    slope: float
    ns: list[int]
    fids: list[float]
    r2: float
    subsample: str


def fid_infinity(real_feats: Any, fake_feats: Any, num_points: int = 15, min_n: int | None = None,
                 seed: int = 0, subsample: Literal["auto", "fake", "both"] = "auto") -> FIDInfinity:
    """FID∞: FID at ``num_points`` subset sizes N (evenly spaced from ``min_n`` to all images),
    least-squares line FID = a + b/N, FID∞ = a (Chong & Forsyth, CVPR 2020, §3).

    ``subsample="fake"`` is the paper's protocol: fake subsets drawn without replacement, the real
    statistics from the whole (there: large) reference set; the real side's own finite-N bias stays
    in the intercept. ``"both"`` draws the same indices from both sets (index-matched inpainting
    sets of equal size, where the real set is just as finite) and extrapolates both; on Gaussian
    features with a known distance it recovered the true value where ``"fake"`` stayed ~10 % high.
    ``"auto"``: ``"both"`` when the sets have equal length, else ``"fake"``.

    ``min_n`` defaults to ``max(N // 5, min(D, N // 2))``: the paper spans 5k..50k (a factor 10)
    with D = 2048 features, i.e. always N > D; below D the covariance is rank-deficient and FID
    no longer follows a/N + b closely (extrapolations from N < D were badly off in our trials).
    One seeded subset per N, as in the paper. Cost: one FID per point (``"fake"`` projects the
    fakes once and then costs n·r² per point).
    """
    real = _as_features(real_feats, "real_feats")
    fake = _as_features(fake_feats, "fake_feats", real.shape[1])
    nr, nf = len(real), len(fake)
    if subsample == "auto":
        subsample = "both" if nr == nf else "fake"
    if subsample not in ("fake", "both"):
        raise InputError(f"unknown subsample mode {subsample!r}", "use 'auto', 'fake' or 'both'")
    if subsample == "both" and nr != nf:
        raise InputError(f"subsample='both' needs index-matched sets, got {nr} real vs {nf} fake",
                         "use subsample='fake'")
    if int(num_points) < 2:
        raise InputError(f"num_points must be >= 2, got {num_points}", "use e.g. num_points=15")
    lo = max(nf // 5, min(real.shape[1], nf // 2), 2) if min_n is None else int(min_n)
    if not 2 <= lo < nf:
        raise InputError(f"FID∞ needs 2 <= min_n < N, got min_n={lo}, N={nf}",
                         "evaluate more images or lower min_n")
    ns = sorted({int(round(v)) for v in np.linspace(lo, nf, int(num_points))})
    if len(ns) < 2:
        raise InputError(f"only {len(ns)} distinct subset size(s) between {lo} and {nf}",
                         "lower min_n or num_points")
    rng = np.random.default_rng(seed)
    fids: list[float] = []
    if subsample == "fake":
        mu_r, s_r = _moments(real)
        u = _sqrt_factor(s_r)  # Σ_r = UUᵀ, d×r
        tr_r = float(np.trace(s_r))
        # UᵀΣ_fU is the covariance of the projected rows z = xU: project once (N·d·r flops), then
        # each subset costs n·r² instead of n·d² + 2d³.
        z = np.concatenate([c @ u for c in _row_chunks(fake)]) if u.shape[1] else np.zeros((nf, 0))
        for n in ns:
            idx = np.sort(rng.choice(nf, n, replace=False))
            mu_f, tr_f = _mean_trace_cov(fake[idx])
            diff = mu_r - mu_f
            tr_root = _sum_sqrt_eigvals(_moments(z[idx])[1]) if u.shape[1] else 0.0
            fids.append(float(diff @ diff + tr_r + tr_f - 2.0 * tr_root))
    else:
        for n in ns:
            idx = np.sort(rng.choice(nf, n, replace=False))
            fids.append(frechet_distance(real[idx], fake[idx]))
    x = 1.0 / np.asarray(ns, dtype=np.float64)
    y = np.asarray(fids)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return FIDInfinity(float(intercept), float(slope), ns, fids, r2, subsample)
