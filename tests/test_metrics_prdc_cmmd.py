"""PRDC against the `prdc` package, CMMD against a plain NumPy float64 restatement of
google-research/cmmd's formula, and their resampling shortcuts against recomputation."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inpaintbench.errors import InputError
from inpaintbench.metrics import prdc as P
from inpaintbench.metrics.mmd import WeightedMMD, cmmd
from inpaintbench.metrics.set_resampling import normal_bootstrap_cis, prdc_base_name, resampler


def _features(seed: int, n: int = 60, m: int = 50, d: int = 16, shift: float = 0.3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + shift


def _reference_prdc(real, fake, k=5):
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints the set sizes
        return compute_prdc(real, fake, k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prdc_equals_the_prdc_package_exactly(seed):
    real, fake = _features(seed)
    ours = P.prdc(real, fake, k=5)
    ref = _reference_prdc(real, fake, 5)
    # Each value is a count over N or kM: both implementations compare the same float64 distances
    # (same operation order as scikit-learn) with the same strict '<', so the counts are identical.
    for name in P.PRDC_NAMES:
        assert ours[name] == float(ref[name]), name
    assert set(ours) == set(P.PRDC_NAMES)


def test_prdc_blocked_distances_match_unblocked(monkeypatch):
    real, fake = _features(3, n=70, m=40)
    whole = P.prdc(real, fake)
    monkeypatch.setattr(P, "_BLOCK_ELEMENTS", 100)  # blocks of 1-2 rows
    assert P.prdc(real, fake) == whole


def test_prdc_identical_sets_and_separated_sets():
    real, _ = _features(4)
    same = P.prdc(real, real.copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    far = P.prdc(real, real + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_needs_more_than_k_images():
    real, fake = _features(5, n=5, m=5)
    with pytest.raises(InputError, match="more than k"):
        P.prdc(real, fake, k=5)


def _cmmd_numpy(x, y, sigma=10.0, scale=1000.0):
    """google-research/cmmd distance.py, restated: biased MMD² (all pairs, diagonal included)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def mean_k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)  # direct ‖a−b‖², independent of ours
        return np.exp(-d2 / (2 * sigma**2)).mean()

    return scale * (mean_k(x, x) + mean_k(y, y) - 2 * mean_k(x, y))


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 40), st.integers(2, 40))
def test_cmmd_equals_numpy_restatement(seed, n, m):
    rng = np.random.default_rng(seed)
    x = _unit(rng.normal(size=(n, 12)))
    y = _unit(rng.normal(size=(m, 12)) + 0.5)
    ref = _cmmd_numpy(x, y)
    # Kernel values lie in [e^-0.02, 1]; each mean of n·m terms carries ~n·m·eps relative error
    # in either formulation; ×1000 scale and the three-term cancellation: bound 1e3·3·(n·m)·eps.
    tol = 1e3 * 3 * max(n, m) ** 2 * np.finfo(np.float64).eps
    assert cmmd(x, y) == pytest.approx(ref, abs=tol)
    assert cmmd(y, x) == pytest.approx(cmmd(x, y), abs=tol)


def test_cmmd_is_zero_on_identical_sets_and_grows_with_shift():
    rng = np.random.default_rng(0)
    x = _unit(rng.normal(size=(30, 8)))
    assert abs(cmmd(x, x)) < 1e-9
    near, far = (cmmd(x, _unit(x + s)) for s in (0.1, 1.0))
    assert 0 < near < far


def test_weighted_mmd_equals_cmmd_of_resampled_rows():
    rng = np.random.default_rng(1)
    x, y = _unit(rng.normal(size=(25, 6))), _unit(rng.normal(size=(25, 6)) + 0.2)
    w = WeightedMMD(x, y)
    for _ in range(3):
        idx = rng.integers(0, 25, 25)
        assert w(np.bincount(idx, minlength=25)) == pytest.approx(cmmd(x[idx], y[idx]), abs=1e-9)


def test_weighted_mmd_without_the_kernel_cache(monkeypatch):
    import inpaintbench.metrics.mmd as M

    monkeypatch.setattr(M, "KERNEL_CACHE_MAX_N", 0)
    rng = np.random.default_rng(2)
    x, y = _unit(rng.normal(size=(20, 6))), _unit(rng.normal(size=(20, 6)))
    idx = rng.integers(0, 20, 20)
    assert M.WeightedMMD(x, y)(np.bincount(idx, minlength=20)) == pytest.approx(cmmd(x[idx], y[idx]), abs=1e-9)


@pytest.mark.parametrize("metric", ["precision", "recall", "density", "coverage", "coverage_dinov2"])
def test_prdc_resample_from_cached_distances_equals_recomputation(metric):
    real, fake = _features(6, n=40, m=40)
    point, resampled = resampler(metric, real, fake)
    base = prdc_base_name(metric)
    assert point() == P.prdc(real, fake)[base]
    rng = np.random.default_rng(0)
    for _ in range(3):
        idx = rng.integers(0, 40, 40)
        # d[idx][:, idx] is the distance matrix of the resampled rows, duplicates at exactly 0
        assert resampled(idx) == _reference_prdc(real[idx], fake[idx])[base]


def test_normal_cis_are_centred_and_shared():
    real, fake = _features(7, n=50, m=50)
    cis = normal_bootstrap_cis(["precision", "recall", "density", "coverage"], real, fake, n_boot=30, seed=3)
    for name, ci in cis.items():
        assert ci.value == P.prdc(real, fake)[name]
        assert ci.lo <= ci.value <= ci.hi and ci.hi - ci.lo == pytest.approx(2 * 1.959963984540054 * ci.boot_std)
        assert ci.boot_std > 0
    x, y = _unit(real), _unit(fake)
    c = normal_bootstrap_cis(["cmmd"], x, y, n_boot=30, seed=3)["cmmd"]
    assert c.value == pytest.approx(cmmd(x, y)) and c.lo < c.value < c.hi
