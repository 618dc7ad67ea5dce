"""KID: exact parity with torch-fidelity's own ``kid_features_to_metric`` on the same features and
seed, the unbiased estimator against a brute-force restatement, and its behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from inpaintbench.errors import InputError
from inpaintbench.metrics.kid import ResampledKID, kernel_inception_distance, polynomial_mmd2_unbiased


def feats(n: int, d: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((n, d)) + 0.3 + shift, 0)


def torch_fidelity_kid(a: np.ndarray, b: np.ndarray, subsets: int, size: int, seed: int,
                       degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> tuple[float, float]:
    out = kid_features_to_metric(
        torch.from_numpy(a), torch.from_numpy(b), kid_subsets=subsets, kid_subset_size=size, rng_seed=seed,
        kid_kernel="poly", kid_kernel_poly_degree=degree, kid_kernel_poly_gamma=gamma,
        kid_kernel_poly_coef0=coef0, verbose=False,
    )
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


@pytest.mark.parametrize(
    "n_a,n_b,d,subsets,size,seed,kernel",
    [
        (300, 250, 64, 20, 100, 7, {}),
        (120, 120, 32, 10, 120, 2020, {}),  # subset = whole set
        (200, 400, 16, 15, 50, 0, {"degree": 2, "gamma": 0.5, "coef0": 0.0}),
    ],
)
def test_parity_with_torch_fidelity(n_a, n_b, d, subsets, size, seed, kernel):
    """Same RandomState draw order, float64 features: equal to rounding (rel 1e-10)."""
    a = feats(n_a, d, seed=1)
    b = feats(n_b, d, shift=0.1, seed=2)
    ours = kernel_inception_distance(a, b, subsets=subsets, subset_size=size, seed=seed, **kernel)
    ref = torch_fidelity_kid(a, b, subsets, size, seed, **kernel)
    assert ours[0] == pytest.approx(ref[0], rel=1e-10, abs=1e-14)
    assert ours[1] == pytest.approx(ref[1], rel=1e-10, abs=1e-14)


def test_unbiased_estimator_matches_brute_force():
    x = feats(7, 5, seed=3)
    y = feats(7, 5, shift=0.4, seed=4)

    def k(u, v):
        return (u @ v / 5 + 1) ** 3

    m = 7
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_behaviour():
    a = feats(400, 32, seed=5)
    same = feats(400, 32, seed=6)
    far = feats(400, 32, shift=0.5, seed=7)
    m_same, s_same = kernel_inception_distance(a, same, subsets=30, subset_size=200, seed=0)
    m_far, _ = kernel_inception_distance(a, far, subsets=30, subset_size=200, seed=0)
    assert abs(m_same) < 3 * s_same  # unbiased: ~0 for one distribution (can be negative)
    assert m_far > 10 * max(abs(m_same), s_same)
    # with the whole sets as the single "subset" the estimate is symmetric
    assert kernel_inception_distance(a, far, subsets=1, subset_size=400) == pytest.approx(
        kernel_inception_distance(far, a, subsets=1, subset_size=400), rel=1e-12)
    # deterministic per seed, different across seeds
    assert kernel_inception_distance(a, far, subsets=5, subset_size=100, seed=3) == \
        kernel_inception_distance(torch.from_numpy(a), far, subsets=5, subset_size=100, seed=3)
    assert kernel_inception_distance(a, far, subsets=5, subset_size=100, seed=3) != \
        kernel_inception_distance(a, far, subsets=5, subset_size=100, seed=4)


def test_subset_size_clipped_with_warning():
    a = feats(80, 8, seed=1)
    b = feats(60, 8, shift=0.2, seed=2)
    with pytest.warns(UserWarning, match="subset_size 1000"):
        clipped = kernel_inception_distance(a, b, subsets=5, subset_size=1000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explicit = kernel_inception_distance(a, b, subsets=5, subset_size=60, seed=1)
    assert clipped == explicit
    assert explicit == pytest.approx(torch_fidelity_kid(a, b, 5, 60, 1), rel=1e-10)


def test_input_errors():
    with pytest.raises(InputError, match="dimensions differ"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(InputError, match="at least 2"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((10, 3)))
    with pytest.raises(InputError, match="NaN"):
        kernel_inception_distance(np.full((10, 3), np.nan), np.zeros((10, 3)))


# --- resampled KID: the bootstrap's entry points evaluate this same estimator ---------------------
def _paired(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = np.maximum(rng.normal(0.3, 1.0, (n, d)), 0)
    fake = np.maximum(real + rng.normal(0.1, 0.5, (n, d)), 0)
    return real, fake


def test_rows_is_the_explicit_resample():
    real, fake = _paired(120, 8)
    idx = np.random.default_rng(1).integers(0, 120, 120)
    explicit = kernel_inception_distance(real[idx], fake[idx], subsets=7, subset_size=50, seed=3)
    assert kernel_inception_distance(real, fake, subsets=7, subset_size=50, seed=3, rows=idx) == explicit
    with pytest.raises(InputError, match="index-matched"):
        kernel_inception_distance(real, fake[:100], rows=idx[:50])
    with pytest.raises(InputError, match="integer indices"):
        kernel_inception_distance(real, fake, rows=idx + 0.5)


def test_resampled_kid_equals_the_subset_estimator_on_the_resample():
    """Kernel route (N x N kernels once, quadratic forms of the subsets' row counts) against
    kernel_inception_distance on the materialised resample: the same sums in another order.
    Tolerance: each sum has <= m^2 terms of size <= max|K|, so recursive float64 summation is off by
    at most m^2·eps·max|K| (Higham 2002, §4.2); divided by m(m-1) or m^2 and three sums: 4·m^2·eps·max|K|
    bounds the difference of each subset's MMD² and hence of the mean."""
    real, fake = _paired(300, 12, seed=2)
    m = 200
    idx = np.random.default_rng(4).integers(0, 300, 300)
    kid = ResampledKID(real, fake, subsets=9, subset_size=m)
    assert kid.kernels is not None
    kmax = max(float(np.abs(k).max()) for k in kid.kernels)
    tol = 4 * m * m * np.finfo(np.float64).eps * kmax
    ref = kernel_inception_distance(real[idx], fake[idx], subsets=9, subset_size=m, seed=11)
    got = kid(idx, seed=11)
    assert abs(got[0] - ref[0]) <= tol and abs(got[1] - ref[1]) <= 2 * tol
    full = kernel_inception_distance(real, fake, subsets=9, subset_size=m, seed=11)
    assert abs(kid(None, seed=11)[0] - full[0]) <= tol
    assert abs(got[0] - full[0]) > 100 * tol  # a resample is a different image set
    # above kernel_rows_max: per-subset kernels through rows=, bit-identical to the explicit resample
    direct = ResampledKID(real, fake, subsets=9, subset_size=m, kernel_rows_max=0)
    assert direct.kernels is None and direct(idx, seed=11) == ref
