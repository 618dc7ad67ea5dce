"""FID: parity with a scipy.linalg.sqrtm restatement (MAT / pytorch-fid style), streaming statistics,
the bootstrap interval and FID∞."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from inpaintbench.errors import InputError
from inpaintbench.metrics import fid as F
from inpaintbench.metrics.fid import (
    FeatureStats,
    fid_bootstrap_ci,
    fid_infinity,
    frechet_distance,
    frechet_distance_from_stats,
    single_threaded_lapack,
    small_sample_warning,
)

REL = 1e-4  # parity target vs sqrtm (observed: 1e-14 full rank, ~3e-8 rank-deficient)


def sqrtm_fid(a: np.ndarray, b: np.ndarray) -> float:
    """MAT's formula restated: float64 moments, population covariance, sqrtm(S1 S2), real part."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    m1, m2 = a.mean(0), b.mean(0)
    s1 = np.cov(a, rowvar=False, bias=True)
    s2 = np.cov(b, rowvar=False, bias=True)
    with single_threaded_lapack():  # only for speed on a shared machine
        root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root)))


def relu_feats(n: int, d: int, shift: float = 0.0, seed: int = 0, rank: int | None = None) -> np.ndarray:
    """Nonnegative, correlated features (like Inception pool features), float32."""
    rng = np.random.default_rng(seed)
    k = rank or max(4, d // 4)
    mix = np.random.default_rng(1234).standard_normal((k, d)) / np.sqrt(k)
    h = rng.standard_normal((n, k)) @ mix + 0.4 * rng.standard_normal((n, d)) + 0.3 + shift
    return np.maximum(h, 0).astype(np.float32)


@pytest.mark.parametrize(
    "n_a,n_b,d",
    [(500, 400, 64), (40, 50, 64), (100, 100, 256), (20, 300, 64)],
    ids=["full-rank", "rank-deficient", "N<d", "one-side-deficient"],
)
def test_parity_with_sqrtm(n_a, n_b, d):
    a = relu_feats(n_a, d, seed=1)
    b = relu_feats(n_b, d, shift=0.1, seed=2)
    ref = sqrtm_fid(a, b)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=REL)
    # torch tensors and float64 input give the same value
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b).double()) == pytest.approx(ref, rel=REL)


def test_identical_sets_and_symmetry():
    a = relu_feats(300, 32, seed=3)
    b = relu_feats(300, 32, shift=0.2, seed=4)
    assert abs(frechet_distance(a, a)) < 1e-9
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    # mean shift only: FID = |Δμ|² exactly
    assert frechet_distance(a, a + 0.5) == pytest.approx(0.25 * a.shape[1], rel=1e-9)


def test_from_stats_arrays_and_featurestats_agree():
    a = relu_feats(400, 48, seed=5)
    b = relu_feats(350, 48, shift=0.3, seed=6)
    sa, sb = FeatureStats(48).update(a), FeatureStats().update(b)
    via_stats = frechet_distance_from_stats(sa, sb)
    via_arrays = frechet_distance_from_stats(sa.mean(), sa.cov(), sb.mean(), sb.cov())
    assert via_stats == via_arrays
    assert via_stats == pytest.approx(sqrtm_fid(a, b), rel=REL)
    with pytest.raises(TypeError):
        frechet_distance_from_stats(sa)
    with pytest.raises(InputError):
        frechet_distance_from_stats(sa.mean(), sa.cov(), sb.mean()[:10], sb.cov())


def test_featurestats_streaming_merge_and_state_dict():
    x = relu_feats(1000, 40, seed=7).astype(np.float64)
    whole = FeatureStats().update(x)
    np.testing.assert_allclose(whole.mean(), x.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(whole.cov(), np.cov(x, rowvar=False, bias=True), rtol=0, atol=1e-12)
    parts = FeatureStats(40)
    for chunk in np.array_split(x, 7):
        parts.update(torch.from_numpy(chunk))
    np.testing.assert_allclose(parts.cov(), whole.cov(), rtol=0, atol=1e-12)
    gpu_path = FeatureStats()._update_torch(torch.from_numpy(x[:500]))._update_torch(torch.from_numpy(x[500:]))
    np.testing.assert_allclose(gpu_path.cov(), whole.cov(), rtol=0, atol=1e-12)
    left, right = FeatureStats().update(x[:300]), FeatureStats().update(x[300:])
    merged = FeatureStats().merge(left).merge(right)
    assert merged.n == 1000
    np.testing.assert_allclose(merged.cov(), whole.cov(), rtol=0, atol=1e-12)
    restored = FeatureStats.from_state_dict({k: torch.from_numpy(np.asarray(v))
                                             for k, v in whole.state_dict().items()})
    assert restored.n == whole.n and restored.dim == 40
    np.testing.assert_array_equal(restored.cov(), whole.cov())
    with pytest.raises(InputError, match="dimension"):
        whole.update(x[:, :10])
    with pytest.raises(InputError):
        FeatureStats(40).mean()
    with pytest.raises(InputError, match="NaN"):
        FeatureStats().update(np.full((3, 4), np.nan))


def test_float32_would_be_wrong():
    """The same algebra (raw moments, symmetric root, eigenvalues) in float32 misses the float64
    value by ~1.5e-3 relative on rank-deficient 256-d statistics, well outside the 1e-4 parity
    we promise: the reason everything here is float64."""
    a = relu_feats(100, 256, seed=8) + 3.0  # a common offset leaves FID unchanged in exact arithmetic
    b = relu_feats(100, 256, shift=0.05, seed=9) + 3.0
    ref = sqrtm_fid(a, b)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=REL)
    with single_threaded_lapack():
        m1, m2 = a.mean(0), b.mean(0)
        s1 = a.T @ a / len(a) - np.outer(m1, m1)
        s2 = b.T @ b / len(b) - np.outer(m2, m2)
        assert s1.dtype == np.float32
        w, v = scipy.linalg.eigh(s1, driver="evd")
        root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        lam = scipy.linalg.eigh(root @ s2 @ root, eigvals_only=True, driver="evd")
    f32 = float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(lam, 0, None)).sum())
    assert abs(f32 - ref) / ref > 5 * REL


def test_weighted_moments_equal_explicit_resample():
    x = relu_feats(50, 6, seed=10)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 50, 50)
    w = np.bincount(idx, minlength=50)
    mu, cov = F._moments(x, w)
    xs = x[idx].astype(np.float64)
    np.testing.assert_allclose(mu, xs.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(xs, rowvar=False, bias=True), rtol=0, atol=1e-12)


def test_small_n_row_route_equals_the_moment_route():
    """N < d: FID from the N×N nuclear norm (weighted or not) equals FID from d×d moments."""
    a = relu_feats(60, 300, seed=21)
    b = relu_feats(45, 300, shift=0.2, seed=22)
    assert F._use_rows(len(a), len(b), 300) and not F._use_rows(400, 45, 300)
    via_moments = frechet_distance_from_stats(*F._moments(a), *F._moments(b))
    # the two routes round differently (an SVD vs a pivoted Cholesky and eigensolve): ~3e-9 apart here
    assert frechet_distance(a, b) == pytest.approx(via_moments, rel=1e-7)
    rng = np.random.default_rng(3)
    wa, wb = np.bincount(rng.integers(0, 60, 60), minlength=60), np.bincount(rng.integers(0, 45, 45), minlength=45)
    rows = F._fid_from_rows(*F._scaled_centred_rows(a, wa), *F._scaled_centred_rows(b, wb))
    assert rows == pytest.approx(frechet_distance_from_stats(*F._moments(a, wa), *F._moments(b, wb)), rel=1e-7)
    assert rows == pytest.approx(sqrtm_fid(np.repeat(a, wa, axis=0), np.repeat(b, wb, axis=0)), rel=REL)


def test_bootstrap_interval_tracks_sampling_variability():
    """Simulation: the bootstrap spread from ONE sample should match the spread of FID over many
    independent samples of the same size (within a factor 2), and the normal interval is centred on
    the point estimate although the raw bootstrap FIDs are biased upward."""
    d, n = 8, 300
    true_fids, widths = [], []
    ci = None
    for s in range(30):
        real = relu_feats(n, d, seed=100 + s)
        fake = relu_feats(n, d, shift=0.15, seed=200 + s)
        true_fids.append(frechet_distance(real, fake))
        if s < 3:
            ci = fid_bootstrap_ci(real, fake, n_boot=200, seed=s)
            widths.append(ci.boot_std)
            assert ci.lo < ci.fid < ci.hi
            # fid ± z·se, z = Φ⁻¹(0.975) = 1.959964 (float64 round-off of fid ± half only)
            assert ci.hi - ci.fid == pytest.approx(1.959963984540054 * ci.boot_std, rel=1e-9)
            assert ci.fid - ci.lo == pytest.approx(ci.hi - ci.fid, rel=1e-9)
            assert ci.boot_mean > ci.fid  # resampling duplicates images: upward bias
            assert ci.paired and ci.method.startswith("normal interval with bootstrap SE (200 paired")
    sd = float(np.std(true_fids, ddof=1))
    assert 0.5 * sd < float(np.mean(widths)) < 2.0 * sd
    # determinism and the lo/hi-first tuple layout the suite relies on
    again = fid_bootstrap_ci(relu_feats(n, d, seed=102), relu_feats(n, d, shift=0.15, seed=202),
                             n_boot=200, seed=2)
    assert again == ci and again[0] == again.lo and again[1] == again.hi


@pytest.mark.parametrize("n,d", [(48, 256), (400, 32)], ids=["N<d", "N>d"])
def test_percentile_type_intervals_would_be_undefined(n, d):
    """Why fid_bootstrap_ci is not BC/BCa: no resample falls at or below the point estimate, so BC's
    z0 = Φ⁻¹(share below) is -inf (and the percentile interval would exclude the estimate)."""
    ci = fid_bootstrap_ci(relu_feats(n, d, seed=5), relu_feats(n, d, shift=0.1, seed=6), n_boot=100, seed=0)
    assert ci.boot_below == 0.0


def test_weighted_fid_is_the_fid_of_the_resample():
    """frechet_distance_weighted (both routes) against frechet_distance of the materialised resample.
    Same formula, other summation order: float64 round-off, ~d·eps relative on the moments and a few
    eps·d on the eigen/singular values; 1e-9 relative is > 1e3 times that at these sizes."""
    rng = np.random.default_rng(8)
    for n, d in ((40, 64), (300, 16)):  # rows route (N < d) and moments route (N >= d)
        real, fake = relu_feats(n, d, seed=1), relu_feats(n, d, shift=0.2, seed=2)
        idx = rng.integers(0, n, n)
        w = np.bincount(idx, minlength=n)
        explicit = frechet_distance(real[idx], fake[idx])
        assert F.frechet_distance_weighted(real, fake, w) == pytest.approx(explicit, rel=1e-9)
        assert F.frechet_distance_weighted(real, fake, w, w) == F.frechet_distance_weighted(real, fake, w)
    with pytest.raises(InputError, match="multiplicities"):
        F.frechet_distance_weighted(real, fake, w[:-1])
    with pytest.raises(InputError, match="2 distinct rows"):
        F.frechet_distance_weighted(real, fake, np.eye(1, n, dtype=np.int64)[0] * n)


def test_bootstrap_unpaired_and_errors():
    real = relu_feats(120, 6, seed=1)
    fake = relu_feats(90, 6, shift=0.2, seed=2)
    ci = fid_bootstrap_ci(real, fake, n_boot=20, seed=0)
    assert not ci.paired and ci.lo <= ci.hi
    with pytest.raises(InputError, match="index-matched"):
        fid_bootstrap_ci(real, fake, n_boot=20, paired=True)
    with pytest.raises(InputError):
        fid_bootstrap_ci(real, fake, n_boot=1)


def _gauss_pair(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Two Gaussian feature sets with an analytically known FID between their distributions."""
    rng = np.random.default_rng(seed)
    a1 = np.random.default_rng(7).standard_normal((d, d)) / np.sqrt(d)
    a2 = a1 + 0.3 * np.random.default_rng(8).standard_normal((d, d)) / np.sqrt(d)
    mu2 = np.full(d, 0.1)
    x = rng.standard_normal((n, d)) @ a1.T
    y = rng.standard_normal((n, d)) @ a2.T + mu2
    s1, s2 = a1 @ a1.T, a2 @ a2.T
    true = float(mu2 @ mu2 + np.trace(s1) + np.trace(s2) - 2 * np.real(np.trace(scipy.linalg.sqrtm(s1 @ s2))))
    return x, y, true


def test_fid_infinity_removes_small_sample_bias():
    x, y, true = _gauss_pair(3000, 32, seed=0)
    fid_n = frechet_distance(x, y)
    res = fid_infinity(x, y, num_points=10, min_n=300, seed=0, subsample="both")
    assert res[0] == res.fid_inf and len(res.ns) == 10 and res.ns[-1] == 3000
    assert res.slope > 0 and res.r2 > 0.9  # FID grows linearly in 1/N
    assert fid_n - true > 0.02  # the finite-N bias is real here ...
    assert abs(res.fid_inf - true) < 0.3 * (fid_n - true)  # ... and mostly removed
    # the paper's protocol (fake subsets only, full real statistics): every point equals the plain
    # FID of the same seeded subset (the projected shortcut is exact), the last one the full set
    fake_only = fid_infinity(x, y, num_points=5, min_n=500, seed=1, subsample="fake")
    rng = np.random.default_rng(1)
    direct = [frechet_distance(x, y[np.sort(rng.choice(3000, n, replace=False))]) for n in fake_only.ns]
    np.testing.assert_allclose(fake_only.fids, direct, rtol=1e-9)
    assert fake_only.fids[-1] == pytest.approx(fid_n, rel=1e-9)
    slope, intercept = np.polyfit(1.0 / np.asarray(fake_only.ns), direct, 1)
    assert fake_only.fid_inf == pytest.approx(intercept, rel=1e-9)
    # the real side's finite-N bias stays in the paper's intercept; "both" removes it too
    assert abs(res.fid_inf - true) < abs(fake_only.fid_inf - true)
    assert fid_infinity(x, y, num_points=5, min_n=500, seed=1).subsample == "both"  # auto, equal sizes
    assert fid_infinity(x, y[:2000], num_points=3, seed=1).subsample == "fake"  # auto, unequal
    with pytest.raises(InputError):
        fid_infinity(x, y, min_n=3000)
    with pytest.raises(InputError, match="index-matched"):
        fid_infinity(x, y[:2000], subsample="both")


def test_small_sample_warning():
    assert small_sample_warning(5000) is None
    msg = small_sample_warning(1000)
    assert msg and "N=1000" in msg and "biased" in msg
    assert small_sample_warning(2047) is not None


def test_input_errors():
    with pytest.raises(InputError, match=r"\[N, D\]"):
        frechet_distance(np.zeros(10), np.zeros((10, 2)))
    with pytest.raises(InputError, match="dimension"):
        frechet_distance(np.zeros((10, 3)), np.zeros((10, 2)))
    with pytest.raises(InputError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((10, 3)))
    with pytest.raises(InputError, match="NaN"):
        frechet_distance(np.full((4, 3), np.inf), np.zeros((10, 3)))
