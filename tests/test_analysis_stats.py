"""Statistics against scipy/numpy references and constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from inpaintbench.analysis.stats import (
    KIDSettings,
    _kendall_tau_b_rows,
    correlation,
    finite_pairs,
    fisher_z_ci,
    holm,
    mean_with_ci,
    paired_bootstrap_diff_ci,
    set_metric_bootstrap,
    wilcoxon_signed_rank,
)
from inpaintbench.metrics.fid import frechet_distance
from inpaintbench.metrics.ids import inception_discriminative_scores
from inpaintbench.metrics.kid import kernel_inception_distance


def test_bootstrap_mean_ci_matches_normal_theory_and_excludes_nonfinite() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(10, 2, 2000)
    mean, lo, hi = mean_with_ci(np.concatenate([v, [np.inf, np.nan]]), n_boot=2000, seed=1)
    assert mean == pytest.approx(v.mean())
    half = 1.96 * v.std(ddof=1) / math.sqrt(v.size)
    assert lo == pytest.approx(v.mean() - half, abs=0.15 * half)
    assert hi == pytest.approx(v.mean() + half, abs=0.15 * half)
    assert all(math.isnan(x) for x in mean_with_ci(np.array([np.nan, np.inf])))


def test_bootstrap_is_seeded() -> None:
    v = np.arange(50.0)
    assert mean_with_ci(v, seed=3) == mean_with_ci(v, seed=3)
    assert mean_with_ci(v, seed=3) != mean_with_ci(v, seed=4)


def test_paired_bootstrap_identical_is_zero_and_shift_is_detected() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(25, 3, 300)  # large between-image spread ...
    d, lo, hi, p = paired_bootstrap_diff_ci(a, a.copy())
    assert (d, lo, hi, p) == (0.0, 0.0, 0.0, 1.0)
    b = a - 0.2 + rng.normal(0, 0.1, a.size)  # ... but a small, consistent per-image shift
    d, lo, hi, p = paired_bootstrap_diff_ci(a, b, n_boot=2000)
    assert d == pytest.approx(np.mean(a - b))
    assert 0 < lo < 0.2 < hi and p < 0.01
    # Unpaired resampling could not see this shift: the per-image spread dwarfs it.
    assert mean_with_ci(a)[2] - mean_with_ci(a)[1] > 10 * (hi - lo)


def test_finite_pairs_counts_excluded() -> None:
    a, b, n = finite_pairs(np.array([1.0, np.inf, 3.0, np.nan]), np.array([1.0, 2.0, np.nan, 4.0]))
    assert a.tolist() == [1.0] and b.tolist() == [1.0] and n == 3


def test_wilcoxon_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 80), rng.normal(0.3, 1, 80)
    stat, p = wilcoxon_signed_rank(a, b)
    ref = sps.wilcoxon(a - b)
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert wilcoxon_signed_rank(a, a) == (0.0, 1.0)


def test_holm_known_answer() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06
    adj = holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])
    adj = holm(np.array([0.5, np.nan, 0.01]))
    np.testing.assert_allclose(adj, [0.5, np.nan, 0.02])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_properties(ps: list[float]) -> None:
    p = np.array(ps)
    adj = holm(p)
    assert np.all(adj >= p - 1e-15) and np.all(adj <= 1)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-15)  # monotone in p
    assert np.all(adj <= np.minimum(1, p * len(p)) + 1e-15)  # never stricter than Bonferroni


def test_pearson_ci_matches_scipy_fisher() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    c = correlation(x, y, "pearson")
    ref = sps.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)
    assert c.r == pytest.approx(ref.statistic) and c.p == pytest.approx(ref.pvalue)
    assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high))
    assert fisher_z_ci(0.5, 3) == (pytest.approx(math.nan, nan_ok=True), pytest.approx(math.nan, nan_ok=True))


@pytest.mark.parametrize(
    "method, population",
    [
        # For a bivariate normal with correlation rho: Spearman = 6/pi asin(rho/2), Kendall = 2/pi asin(rho).
        ("spearman", 6 / math.pi * math.asin(0.3)),
        ("kendall", 2 / math.pi * math.asin(0.6)),
        ("pearson", 0.6),
    ],
)
def test_correlation_ci_covers_known_population_value(method: str, population: float) -> None:
    rng = np.random.default_rng(4)
    xy = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=120)
    c = correlation(xy[:, 0], xy[:, 1], method, n_boot=400)
    assert c.ci_low < population < c.ci_high
    assert c.ci_low < c.r < c.ci_high
    assert c.ci_high - c.ci_low < 0.4


def test_correlation_exact_and_degenerate_cases() -> None:
    x = np.linspace(0, 1, 30)
    for method in ("pearson", "spearman", "kendall"):
        c = correlation(x, x**3, method, n_boot=100)
        assert c.r == pytest.approx(1.0 if method != "pearson" else sps.pearsonr(x, x**3).statistic)
    assert correlation(x, x**3, "spearman", n_boot=100).ci_low == pytest.approx(1.0)
    c = correlation(np.r_[x, np.inf], np.r_[x, 1.0], "spearman", n_boot=50)
    assert c.n == 30 and c.n_excluded == 1
    assert math.isnan(correlation(x, np.ones_like(x), "pearson").r)
    with pytest.raises(ValueError):
        correlation(x, x, "cosine")


def test_vectorised_kendall_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, (4, 40)).astype(float)
    y = x + rng.integers(0, 4, (4, 40))
    ours = _kendall_tau_b_rows(x, y)
    ref = [sps.kendalltau(a, b).statistic for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


# --- set-level metrics: one implementation (inpaintbench.metrics), (fake, real) order here -------------
def test_set_metric_values_are_the_runners_functions_in_the_right_order() -> None:
    """Point values equal the runner's calls exactly (same functions, same float64 inputs). Swapping
    fake and real changes KID (whose subsets are drawn from the real set first), so the order is tested
    there; FID and IDS are symmetric under the swap (the SVM's labels and decisions just flip sign)."""
    rng = np.random.default_rng(12)
    real = rng.normal(size=(70, 6))
    fake_a = real + rng.normal(0.2, 0.6, real.shape)
    fake_b = real + rng.normal(0.0, 0.4, real.shape)
    fid = set_metric_bootstrap("fid", fake_a, real, fake_b, real, n_boot=3)
    assert (fid.value_a, fid.value_b) == (frechet_distance(real, fake_a), frechet_distance(real, fake_b))
    ka, kb = KIDSettings(subsets=8, subset_size=50, seed=3), KIDSettings(subsets=5, subset_size=1000, seed=4)
    kid = set_metric_bootstrap("kid", fake_a, real, fake_b, real, n_boot=3, kid_a=ka, kid_b=kb)
    assert kid.value_a == kernel_inception_distance(real, fake_a, subsets=8, subset_size=50, seed=3)[0]
    assert kid.value_b == kernel_inception_distance(real, fake_b, subsets=5, subset_size=70, seed=4)[0]
    assert kid.value_a != kernel_inception_distance(fake_a, real, subsets=8, subset_size=50, seed=3)[0]
    p_ref, u_ref = inception_discriminative_scores(real, fake_a)
    p = set_metric_bootstrap("p_ids", fake_a, real, fake_b, real, n_boot=2)
    u = set_metric_bootstrap("u_ids", fake_a, real, fake_b, real, n_boot=2)
    assert (p.value_a, u.value_a) == (p_ref, u_ref)


def test_kid_at_n_above_1000_equals_the_leaderboards() -> None:
    """N > 1000: the runner's KID is torch-fidelity's subset estimator (subsets of min(1000, N) rows),
    not the all-pairs MMD² the old analysis code used; compare's value must be the runner's, exactly.
    (10 subsets instead of the runner's 100 keep this fast; the settings come from the run anyway.)"""
    rng = np.random.default_rng(13)
    n, d = 1300, 16
    real = np.maximum(rng.normal(0.3, 1, (n, d)), 0)
    fake = np.maximum(real + rng.normal(0.05, 0.5, (n, d)), 0)
    runner = kernel_inception_distance(real, fake, subsets=10, subset_size=min(1000, n), seed=7)[0]
    k = KIDSettings(subsets=10, subset_size=1000, seed=7)
    r = set_metric_bootstrap("kid", fake, real, fake, real, n_boot=4, kid_a=k, kid_b=k)
    assert r.value_a == runner and r.value_b == runner and r.n == n
    assert (r.diff, r.ci_low, r.ci_high) == (0.0, 0.0, 0.0)  # common draws: identical runs cancel
    # other seeds in B: B's own value, and independent subset draws in the resamples too
    other = set_metric_bootstrap("kid", fake, real, fake, real, n_boot=4, kid_a=k, kid_b=KIDSettings(10, 1000, 8))
    assert other.value_b == kernel_inception_distance(real, fake, subsets=10, subset_size=1000, seed=8)[0]
    assert other.ci_low < other.ci_high
    # the all-pairs estimator differs by far more than round-off (it has no subset noise)
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((fake, fake), (real, real), (fake, real)))
    all_pairs = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    assert abs(all_pairs - runner) > 1e-6 * abs(runner)


def test_ids_separable_sets() -> None:
    rng = np.random.default_rng(9)
    real = rng.normal(size=(40, 5))
    fake = real + 10.0  # trivially separable: the SVM never confuses them
    for metric in ("p_ids", "u_ids"):
        r = set_metric_bootstrap(metric, fake, real, fake, real, n_boot=2)
        assert r.value_a == 0.0 and r.diff == 0.0


def test_set_metric_bootstrap_identical_and_shifted() -> None:
    rng = np.random.default_rng(10)
    real = rng.normal(size=(60, 8))
    fake_a = real + rng.normal(0, 0.3, real.shape)
    same = set_metric_bootstrap("fid", fake_a, real, fake_a.copy(), real, n_boot=50)
    assert same.diff == 0 and same.ci_low == 0 and same.ci_high == 0 and same.p == 1.0
    fake_b = fake_a + 0.5
    for metric in ("fid", "kid"):
        r = set_metric_bootstrap(metric, fake_a, real, fake_b, real, n_boot=100)
        assert r.diff < 0 and r.ci_high < 0 and r.p < 0.05, metric  # A is closer to real
    r = set_metric_bootstrap("p_ids", fake_a, real, fake_b, real, n_boot=5)
    assert r.n_boot == 5 and math.isfinite(r.diff)
    # the project's p-value convention: floored at 1/(B+1), never 0
    r = set_metric_bootstrap("fid", fake_a, real, fake_a + 3.0, real, n_boot=40)
    assert r.p == pytest.approx(1 / 41) and r.ci_method == "percentile (40 paired resamples)"
    with pytest.raises(ValueError):
        set_metric_bootstrap("fid_inf", fake_a, real, fake_b, real)


def test_kendall_bootstrap_large_n_path_uses_scipy() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    c = correlation(x, y, "kendall", n_boot=30)
    assert c.r == pytest.approx(sps.kendalltau(x, y).statistic)
    assert c.ci_low < c.r < c.ci_high and c.ci_method == "bootstrap (30)"
