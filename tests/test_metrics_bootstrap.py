"""Bootstrap CI helpers: BCa equal to a textbook loop restatement, coverage, degenerate data,
non-finite handling, the resample minimum, the paired difference and its p-value."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from inpaintbench.errors import InputError
from inpaintbench.metrics import bootstrap as B
from inpaintbench.metrics.bootstrap import (
    bootstrap_indices,
    bootstrap_mean_ci,
    bootstrap_p_value,
    paired_bootstrap_diff_ci,
)

# Tolerance for "same arithmetic, different code": both sides take the same resampled means and
# quantiles, so the only differences are summation order in the jackknife sums (a few ulp of the
# acceleration a ~ 1e-2), which moves a quantile position by ~1e-13 of one order-statistic gap:
# far below 1e-12 relative on bounds of order 1.
REL = 1e-12


def loop_bca_ci(x: np.ndarray, n_boot: int, alpha: float, seed: int) -> tuple[float, float]:
    """Textbook BCa (Efron & Tibshirani 1993, §14.3), one resample and one jackknife at a time,
    drawing with the same generator in the same order as scipy."""
    rng = np.random.default_rng(seed)
    n = len(x)
    means = np.array([x[rng.integers(0, n, n)].mean() for _ in range(n_boot)])
    theta = x.mean()
    z0 = ndtri((np.sum(means < theta) + np.sum(means <= theta)) / (2 * n_boot))  # ties count half
    jack = np.array([np.delete(x, i).mean() for i in range(n)])
    u = jack.mean() - jack
    a = np.sum(u**3) / (6 * np.sum(u**2) ** 1.5)  # eq. 14.15
    z = ndtri(alpha / 2)
    q = [ndtr(z0 + (z0 + zz) / (1 - a * (z0 + zz))) for zz in (z, -z)]
    lo, hi = np.quantile(means, q)
    return float(lo), float(hi)


def test_bca_equals_loop_restatement_and_block_size_is_irrelevant(monkeypatch):
    x = np.random.default_rng(1).lognormal(0.0, 0.8, 157)  # skewed: BCa differs from percentile
    ci = bootstrap_mean_ci(x, n_boot=1000, alpha=0.1, seed=5)
    assert ci.method == "BCa" and ci.n_boot == 1000
    assert ci.mean == pytest.approx(x.mean(), rel=1e-15)
    assert (ci.lo, ci.hi) == pytest.approx(loop_bca_ci(x, 1000, 0.1, 5), rel=REL)
    monkeypatch.setattr(B, "_MAX_INDICES", 157 * 7)  # 7 resamples per block
    assert bootstrap_mean_ci(x, n_boot=1000, alpha=0.1, seed=5) == ci
    mean, lo, hi = ci  # unpacks as a 3-tuple
    assert lo < mean < hi
    # the percentile interval of the same resamples is a different interval (so the test can fail)
    means = np.concatenate([x[i].mean(axis=1) for i in bootstrap_indices(157, 1000, 5)])
    assert abs(np.quantile(means, 0.05) - ci.lo) > 1e-6


def test_closed_form_bca_for_large_n_equals_scipy(monkeypatch):
    x = np.random.default_rng(4).exponential(1.0, 300)
    via_scipy = bootstrap_mean_ci(x, seed=2)
    monkeypatch.setattr(B, "_SCIPY_BCA_MAX_N", 10)  # force the O(N) path
    closed = bootstrap_mean_ci(x, seed=2)
    assert closed.method == via_scipy.method == "BCa"
    assert (closed.lo, closed.hi) == pytest.approx((via_scipy.lo, via_scipy.hi), rel=REL)


def test_coverage_of_the_true_mean():
    rng = np.random.default_rng(0)
    hits = 0
    reps = 150
    for r in range(reps):
        x = rng.exponential(1.0, 60)  # skewed, true mean 1
        ci = bootstrap_mean_ci(x, n_boot=1000, seed=r)
        hits += ci.lo <= 1.0 <= ci.hi
    # nominal 0.95 (BCa at n = 60 exponential: true coverage ≈ 0.92-0.95). hits ~ Binomial(150, p); for any
    # p in [0.92, 0.95], P(hits < 128) + P(hits > 148) ≤ 0.004 (sd ≤ 0.022); it catches gross under-coverage
    # only: P(fail) = 0.03 at p = 0.90, 0.49 at p = 0.85, 0.94 at p = 0.80 (e.g. a 1-sd interval, p ≈ 0.68).
    # Seeded, so deterministic; float rounding cannot move a hit.
    assert 0.85 <= hits / reps <= 0.99


def test_degenerate_data_falls_back_to_percentile():
    const = bootstrap_mean_ci(np.full(12, 0.25))
    assert const.method == "percentile" and (const.lo, const.hi) == (0.25, 0.25)
    zero = paired_bootstrap_diff_ci(np.arange(5.0), np.arange(5.0))
    assert zero.method == "percentile" and (zero.mean, zero.lo, zero.hi, zero.p_value) == (0, 0, 0, 1)


def test_non_finite_values_are_excluded_and_counted_and_n_below_2_has_no_ci():
    x = np.array([30.0, np.inf, 31.0, np.nan, 29.0, 33.0])
    ci = bootstrap_mean_ci(x)
    assert ci.n == 4 and ci.n_excluded == 2
    assert ci.mean == pytest.approx(30.75)
    empty = bootstrap_mean_ci([np.inf, np.nan])
    assert np.isnan(empty.mean) and empty.n == 0 and empty.n_excluded == 2 and empty.method == "none"
    one = bootstrap_mean_ci([np.inf, 4.0])
    assert (one.mean, one.n_excluded, one.method) == (4.0, 1, "none")
    assert np.isnan(one.lo) and np.isnan(one.hi)  # no zero-width interval from a single value
    d1 = paired_bootstrap_diff_ci([1.0, np.nan], [0.5, 2.0])
    assert d1.mean == 0.5 and np.isnan(d1.lo) and np.isnan(d1.hi) and np.isnan(d1.p_value)


def test_resample_minimum():
    with pytest.raises(InputError, match="n_boot must be >= 1000"):
        bootstrap_mean_ci([1.0, 2.0, 3.0], n_boot=999)
    few = bootstrap_mean_ci([1.0, 2.0, 3.0], n_boot=50, allow_few=True)
    assert few.n_boot == 50 and few.lo <= few.mean <= few.hi
    assert bootstrap_mean_ci([1.0, 2.0, 3.0]).n_boot >= 1000  # the default


def test_paired_difference():
    rng = np.random.default_rng(2)
    difficulty = rng.normal(28, 4, 200)  # shared per-image difficulty dominates the spread
    a = difficulty + 0.3 + rng.normal(0, 0.2, 200)
    b = difficulty + rng.normal(0, 0.2, 200)
    d = paired_bootstrap_diff_ci(a, b, n_boot=1000, seed=1)
    assert d.mean == pytest.approx(np.mean(a - b)) and d.method == "BCa"
    assert 0 < d.lo < 0.3 < d.hi and d.p_value <= 2 / 1001
    # the CI is the one-sample BCa interval of the per-image differences (the paired design)
    assert (d.lo, d.hi) == pytest.approx(tuple(bootstrap_mean_ci(a - b, seed=1))[1:], rel=REL)
    # an unpaired view of the same data cannot separate the two
    ca, cb = bootstrap_mean_ci(a, seed=1), bootstrap_mean_ci(b, seed=2)
    assert ca.lo < cb.hi
    same_a = b + rng.normal(0, 0.2, 200)
    same = paired_bootstrap_diff_ci(same_a, b, n_boot=1000, seed=3)
    assert same.p_value > 0.05 and same.lo < 0 < same.hi
    # p-value: the project's convention applied to the bootstrap distribution of the mean difference
    diffs = same_a - b
    boot = np.concatenate([diffs[i].mean(axis=1) for i in bootstrap_indices(200, 1000, 3)])
    assert same.p_value == bootstrap_p_value(boot)
    with_inf = paired_bootstrap_diff_ci([1.0, np.inf, 2.0, 3.0], [0.5, 1.0, np.nan, 2.0], n_boot=50)
    assert with_inf.n == 2 and with_inf.n_excluded == 2 and with_inf.mean == pytest.approx(0.75)


def test_input_errors():
    with pytest.raises(InputError, match="1-D"):
        bootstrap_mean_ci(np.zeros((3, 2)))
    with pytest.raises(InputError, match="n_boot"):
        bootstrap_mean_ci([1.0, 2.0], n_boot=0, allow_few=True)
    with pytest.raises(InputError, match="n_boot"):
        paired_bootstrap_diff_ci([1.0, 2.0], [1.0, 2.0], n_boot=0)
    with pytest.raises(InputError, match="alpha"):
        bootstrap_mean_ci([1.0, 2.0], alpha=1.5)
    with pytest.raises(InputError, match="differ in length"):
        paired_bootstrap_diff_ci([1.0, 2.0], [1.0])
