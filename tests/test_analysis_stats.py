"""Statistics against scipy/numpy references and constructed data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from inpaintbench.analysis.stats import (
    _GramFid,
    _kendall_tau_b_rows,
    bootstrap_mean_ci,
    correlation,
    fid_from_features,
    finite_pairs,
    fisher_z_ci,
    holm,
    ids_from_features,
    kid_from_features,
    paired_bootstrap_diff_ci,
    set_metric_bootstrap,
    wilcoxon_signed_rank,
)


def test_bootstrap_mean_ci_matches_normal_theory_and_excludes_nonfinite() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(10, 2, 2000)
    mean, lo, hi = bootstrap_mean_ci(np.concatenate([v, [np.inf, np.nan]]), n_boot=2000, seed=1)
    assert mean == pytest.approx(v.mean())
    half = 1.96 * v.std(ddof=1) / math.sqrt(v.size)
    assert lo == pytest.approx(v.mean() - half, abs=0.15 * half)
    assert hi == pytest.approx(v.mean() + half, abs=0.15 * half)
    assert all(math.isnan(x) for x in bootstrap_mean_ci(np.array([np.nan, np.inf])))


def test_bootstrap_is_seeded() -> None:
    v = np.arange(50.0)
    assert bootstrap_mean_ci(v, seed=3) == bootstrap_mean_ci(v, seed=3)
    assert bootstrap_mean_ci(v, seed=3) != bootstrap_mean_ci(v, seed=4)


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
    assert bootstrap_mean_ci(a)[2] - bootstrap_mean_ci(a)[1] > 10 * (hi - lo)


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


def _fid_reference(f: np.ndarray, r: np.ndarray) -> float:
    s1 = np.cov(f, rowvar=False, bias=True)
    s2 = np.cov(r, rowvar=False, bias=True)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(
        ((f.mean(0) - r.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real
    )


@pytest.mark.parametrize("n, d", [(200, 16), (12, 40)])  # N > D and the rank-deficient N < D
def test_fid_matches_sqrtm_reference(n: int, d: int) -> None:
    rng = np.random.default_rng(6)
    f, r = rng.normal(size=(n, d)), rng.normal(0.2, 1.3, size=(n, d))
    assert fid_from_features(f, r) == pytest.approx(_fid_reference(f, r), rel=1e-6)
    assert fid_from_features(r, r) == pytest.approx(0.0, abs=1e-8)


def test_fid_weights_equal_duplicated_rows_and_gram_path() -> None:
    rng = np.random.default_rng(7)
    f, r = rng.normal(size=(30, 50)), rng.normal(0.1, 1, size=(30, 50))
    w = np.bincount(rng.integers(0, 30, 30), minlength=30)
    idx = np.repeat(np.arange(30), w)
    gram = _GramFid(f, r)
    assert fid_from_features(f, r, w) == pytest.approx(fid_from_features(f[idx], r[idx]), rel=1e-9)
    assert gram(w) == pytest.approx(fid_from_features(f[idx], r[idx]), rel=1e-7)
    assert gram() == pytest.approx(fid_from_features(f, r), rel=1e-7)


def test_kid_matches_direct_unbiased_mmd() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(15, 6)), rng.normal(0.5, 1, size=(15, 6))
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    m = len(x)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert kid_from_features(x, y) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-10)


def test_ids_separable_sets() -> None:
    rng = np.random.default_rng(9)
    real = rng.normal(size=(40, 5))
    fake = real + 10.0  # trivially separable: the SVM never confuses them
    p_ids, u_ids = ids_from_features(fake, real)
    assert p_ids == 0.0 and u_ids == 0.0


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
    with pytest.raises(ValueError):
        set_metric_bootstrap("fid_inf", fake_a, real, fake_b, real)


def test_kendall_bootstrap_large_n_path_uses_scipy() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    c = correlation(x, y, "kendall", n_boot=30)
    assert c.r == pytest.approx(sps.kendalltau(x, y).statistic)
    assert c.ci_low < c.r < c.ci_high and c.ci_method == "bootstrap (30)"
