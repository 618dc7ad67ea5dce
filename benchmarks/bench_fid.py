"""FID's matrix-root step: our symmetric eigendecomposition vs ``scipy.linalg.sqrtm`` (MAT,
pytorch-fid, clean-fid) on the same float64 statistics of 2048-d features (128-d under
``--benchmark-disable``). Both values are compared (rel 1e-6) and the ratio is reported."""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from inpaintbench.metrics.fid import frechet_distance_from_stats


def _stats(n: int, d: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = d // 8
    mix = np.random.default_rng(99).standard_normal((k, d)) / np.sqrt(k)
    x = np.maximum(rng.standard_normal((n, k)) @ mix + 0.4 * rng.standard_normal((n, d)) + shift, 0)
    return x.mean(0), np.cov(x, rowvar=False, bias=True)


def _sqrtm_fid(mu1, s1, mu2, s2) -> float:
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root)))


def test_fid_eigh_vs_sqrtm(benchmark):
    small = benchmark.disabled
    n, d = (400, 128) if small else (5000, 2048)
    mu1, s1 = _stats(n, d, 0.3, seed=1)
    mu2, s2 = _stats(n, d, 0.35, seed=2)

    t0 = time.perf_counter()
    ref = _sqrtm_fid(mu1, s1, mu2, s2)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = frechet_distance_from_stats(mu1, s1, mu2, s2)
    t_ours = time.perf_counter() - t0
    assert abs(ours - ref) <= 1e-6 * abs(ref)

    benchmark.pedantic(frechet_distance_from_stats, args=(mu1, s1, mu2, s2), rounds=1 if small else 2,
                       iterations=1)
    benchmark.extra_info.update(d=d, n=n, ours_s=t_ours, sqrtm_s=t_ref, speedup=t_ref / t_ours,
                                fid=ours, rel_diff=abs(ours - ref) / abs(ref))
    print(f"\nFID d={d}: ours {t_ours:.2f} s, sqrtm {t_ref:.2f} s, speed-up {t_ref / t_ours:.1f}x, "
          f"rel diff {abs(ours - ref) / abs(ref):.1e}")


def test_fid_small_n_row_route_vs_moments(benchmark):
    """A 350-image test set (the seed study's size): FID from the N×N nuclear norm vs from d×d moments
    (what a bootstrap resample costs on each route)."""
    from inpaintbench.metrics import fid as F

    small = benchmark.disabled
    n, d = (60, 256) if small else (350, 2048)
    rng = np.random.default_rng(5)
    mix = rng.standard_normal((d // 8, d)) / np.sqrt(d / 8)
    a = np.maximum(rng.standard_normal((n, d // 8)) @ mix + 0.4 * rng.standard_normal((n, d)) + 0.3, 0)
    b = np.maximum(rng.standard_normal((n, d // 8)) @ mix + 0.4 * rng.standard_normal((n, d)) + 0.35, 0)

    def moments_route() -> float:
        return frechet_distance_from_stats(*F._moments(a), *F._moments(b))

    def rows_route() -> float:
        return F._fid_from_rows(*F._scaled_centred_rows(a), *F._scaled_centred_rows(b))

    t0 = time.perf_counter()
    ref = moments_route()
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = rows_route()
    t_ours = time.perf_counter() - t0
    assert abs(ours - ref) <= 1e-6 * abs(ref)
    benchmark.pedantic(rows_route, rounds=1 if small else 5, iterations=1)
    benchmark.extra_info.update(d=d, n=n, rows_s=t_ours, moments_s=t_ref, speedup=t_ref / t_ours)
    print(f"\nFID N={n}, d={d}: N×N route {t_ours * 1e3:.0f} ms, d×d route {t_ref * 1e3:.0f} ms, "
          f"speed-up {t_ref / t_ours:.1f}x")
