"""Bootstrap CI helpers: equality with a plain loop restatement, coverage, non-finite handling."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintbench.errors import InputError
from inpaintbench.metrics import bootstrap as B
from inpaintbench.metrics.bootstrap import bootstrap_mean_ci, paired_bootstrap_diff_ci


def loop_percentile_ci(x: np.ndarray, n_boot: int, alpha: float, seed: int) -> tuple[float, float]:
    """Textbook percentile bootstrap, one resample at a time, same generator and draw order."""
    rng = np.random.default_rng(seed)
    means = [x[rng.integers(0, len(x), len(x))].mean() for _ in range(n_boot)]
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def test_equals_loop_restatement_and_block_size_is_irrelevant(monkeypatch):
    x = np.random.default_rng(1).normal(3.0, 2.0, 157)
    ci = bootstrap_mean_ci(x, n_boot=300, alpha=0.1, seed=5)
    assert ci.mean == pytest.approx(x.mean(), rel=1e-15)
    assert (ci.lo, ci.hi) == pytest.approx(loop_percentile_ci(x, 300, 0.1, 5), rel=1e-12)
    monkeypatch.setattr(B, "_MAX_INDICES", 157 * 7)  # 7 resamples per block
    assert bootstrap_mean_ci(x, n_boot=300, alpha=0.1, seed=5) == ci
    mean, lo, hi = ci  # unpacks as a 3-tuple
    assert lo < mean < hi


def test_coverage_of_the_true_mean():
    rng = np.random.default_rng(0)
    hits = 0
    reps = 150
    for r in range(reps):
        x = rng.exponential(1.0, 60)  # skewed, true mean 1
        ci = bootstrap_mean_ci(x, n_boot=400, seed=r)
        hits += ci.lo <= 1.0 <= ci.hi
    assert 0.85 <= hits / reps <= 0.99  # nominal 0.95; percentile intervals under-cover slightly


def test_non_finite_values_are_excluded_and_counted():
    x = np.array([30.0, np.inf, 31.0, np.nan, 29.0, 33.0])
    ci = bootstrap_mean_ci(x, n_boot=200)
    assert ci.n == 4 and ci.n_excluded == 2
    assert ci.mean == pytest.approx(30.75)
    empty = bootstrap_mean_ci([np.inf, np.nan])
    assert np.isnan(empty.mean) and empty.n == 0 and empty.n_excluded == 2
    one = bootstrap_mean_ci([np.inf, 4.0])
    assert (one.mean, one.lo, one.hi, one.n_excluded) == (4.0, 4.0, 4.0, 1)


def test_paired_difference():
    rng = np.random.default_rng(2)
    difficulty = rng.normal(28, 4, 200)  # shared per-image difficulty dominates the spread
    a = difficulty + 0.3 + rng.normal(0, 0.2, 200)
    b = difficulty + rng.normal(0, 0.2, 200)
    d = paired_bootstrap_diff_ci(a, b, n_boot=1000, seed=1)
    assert d.mean == pytest.approx(np.mean(a - b))
    assert 0 < d.lo < 0.3 < d.hi and d.p_value <= 2 / 1001
    # an unpaired view of the same data cannot separate the two
    ca, cb = bootstrap_mean_ci(a, seed=1), bootstrap_mean_ci(b, seed=2)
    assert ca.lo < cb.hi
    same = paired_bootstrap_diff_ci(b + rng.normal(0, 0.2, 200), b, n_boot=1000, seed=3)
    assert same.p_value > 0.05 and same.lo < 0 < same.hi
    with_inf = paired_bootstrap_diff_ci([1.0, np.inf, 2.0, 3.0], [0.5, 1.0, np.nan, 2.0], n_boot=50)
    assert with_inf.n == 2 and with_inf.n_excluded == 2 and with_inf.mean == pytest.approx(0.75)


def test_input_errors():
    with pytest.raises(InputError, match="1-D"):
        bootstrap_mean_ci(np.zeros((3, 2)))
    with pytest.raises(InputError, match="n_boot"):
        bootstrap_mean_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(InputError, match="alpha"):
        bootstrap_mean_ci([1.0, 2.0], alpha=1.5)
    with pytest.raises(InputError, match="differ in length"):
        paired_bootstrap_diff_ci([1.0, 2.0], [1.0])
