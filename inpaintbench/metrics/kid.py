"""Kernel Inception Distance (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018).

Defined as in torch-fidelity 0.4 / StyleGAN2-ADA: polynomial kernel ``k(x, y) = (γ xᵀy + c0)^degree``
with γ = 1/d, c0 = 1, degree 3; ``subsets`` times draw ``subset_size`` rows of each set without
replacement (per subset; rows may recur across subsets), compute the unbiased MMD² estimate

    MMD² = [Σ_{i≠j} k(xᵢ,xⱼ) + Σ_{i≠j} k(yᵢ,yⱼ)] / (m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / m²

and report the mean and the (population, ddof=0) standard deviation over subsets.

Sampling order matches torch-fidelity's ``kid_features_to_metric``: one ``numpy.random.RandomState
(seed)``; per subset first ``choice(n_real, m, replace=False)`` then ``choice(n_fake, m, ...)``. So
``kernel_inception_distance(a, b, seed=s)`` reproduces ``kid_features_to_metric(a, b, rng_seed=s)``
(torch-fidelity's own default seed is 2020 and its ``input1`` is usually the generated set).
Unlike torch-fidelity we compute in float64 whatever the input dtype, and clip ``subset_size`` to
the smaller set with a warning instead of failing.

Bootstrap over images (``inpaintbench compare``): :class:`ResampledKID` evaluates this same subset
estimator on paired resamples ``(real[rows], fake[rows])``, so a resampled KID is the leaderboard's
KID of the resampled image set, not a different (all-pairs) estimator. Up to
:data:`KERNEL_ROWS_MAX` images it computes the three N×N kernel matrices once and gets each subset's
sums as quadratic forms of the subset's row counts (same estimator, different summation order: equal
to round-off); above that it calls :func:`kernel_inception_distance` with ``rows``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from inpaintbench.errors import InputError

__all__ = ["kernel_inception_distance", "polynomial_mmd2_unbiased", "ResampledKID", "KERNEL_ROWS_MAX"]

#: Largest N for which :class:`ResampledKID` keeps the three N×N float64 kernels (3·8·N² bytes:
#: 400 MB at 4096; per run compared).
KERNEL_ROWS_MAX = 4096


def _features(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected features of shape [N, D], got {arr.shape}",
                         "pass one feature row per image")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: features contain NaN or inf", "check the images and the extractor")
    return arr


def _poly_kernel(x: np.ndarray, y: np.ndarray, degree: int, gamma: float | None, coef0: float) -> np.ndarray:
    """k(x, y) = (γ xᵀy + c0)^degree for all row pairs, γ = 1/d by default (torch-fidelity's KID kernel)."""
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return (x @ y.T * g + coef0) ** degree


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                             coef0: float = 1.0) -> float:
    """Unbiased MMD² of two equally sized samples [m, d] under the polynomial kernel (float64)."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise InputError(f"MMD² needs two samples of equal size >= 2, got {x.shape[0]} and {y.shape[0]}",
                         "use a larger subset_size or more images")
    k_xx = _poly_kernel(x, x, degree, gamma, coef0)
    k_yy = _poly_kernel(y, y, degree, gamma, coef0)
    k_xy = _poly_kernel(x, y, degree, gamma, coef0)
    within = (k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))
    return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def _subset_size(m: int, n1: int, n2: int) -> int:
    if m > min(n1, n2):
        warnings.warn(f"KID subset_size {m} exceeds the number of images ({n1} real, {n2} fake); "
                      f"using {min(n1, n2)}", stacklevel=3)
        m = min(n1, n2)
    if m < 2:
        raise InputError(f"KID subset_size must be >= 2, got {m}", "use e.g. subset_size=1000")
    return m


def _check_rows(rows: Any, n: int) -> np.ndarray:
    r = np.asarray(rows)
    if r.ndim != 1 or not np.issubdtype(r.dtype, np.integer) or r.size < 2 or \
            (r.size and (r.min() < 0 or r.max() >= n)):
        raise InputError(f"rows must be >= 2 integer indices into the {n} images, got shape {r.shape}, "
                         f"dtype {r.dtype}", "pass the drawn indices of a resample, e.g. rng.integers(0, N, N)")
    return r


def kernel_inception_distance(real: Any, fake: Any, subsets: int = 100, subset_size: int = 1000,
                              degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
                              seed: int = 0, rows: Any | None = None) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets (see module docstring). Papers often
    print ×10³. ``subset_size`` larger than either set is clipped to it, with a warning.

    ``rows`` (index-aligned sets only): the KID of the paired resample ``(real[rows], fake[rows])``,
    identical to passing those arrays but without copying them (the bootstrap's entry point)."""
    x = _features(real, "real")
    y = _features(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}",
                         "use the same feature extractor for both sets")
    if int(subsets) < 1:
        raise InputError(f"subsets must be >= 1, got {subsets}", "use e.g. subsets=100")
    if rows is None:
        map_x = map_y = None
        n1, n2 = len(x), len(y)
    else:
        if len(x) != len(y):
            raise InputError(f"rows= needs index-matched sets, got {len(x)} real and {len(y)} fake",
                             "pass the resampled arrays instead")
        map_x = map_y = _check_rows(rows, len(x))
        n1 = n2 = len(map_x)
    if min(n1, n2) < 2:
        raise InputError(f"KID needs at least 2 images per set, got {n1} real and {n2} fake",
                         "evaluate more images")
    m = _subset_size(int(subset_size), n1, n2)
    rng = np.random.RandomState(seed)  # legacy generator on purpose: torch-fidelity's draw order
    mmds = np.empty(int(subsets))
    for i in range(int(subsets)):
        ix = rng.choice(n1, m, replace=False)
        iy = rng.choice(n2, m, replace=False)
        if map_x is not None:
            ix, iy = map_x[ix], map_y[iy]
        mmds[i] = polynomial_mmd2_unbiased(x[ix], y[iy], degree, gamma, coef0)
    return float(mmds.mean()), float(mmds.std())


class ResampledKID:
    """KID (the subset estimator above) of many paired resamples of one (real, fake) pair.

    ``kid(rows, seed)`` equals ``kernel_inception_distance(real[rows], fake[rows], subsets,
    subset_size, seed=seed)`` to round-off (``tests/test_kid.py``); ``rows=None`` is the full set.
    For N <= ``kernel_rows_max`` the kernels K_rr, K_ff, K_rf are computed once (3·N²·d
    multiply-adds) and a subset with row counts c (a resampled image drawn twice counts twice)
    contributes cᵀKc − c·diag K to the within-set sums and c_rᵀK_rf c_f to the cross sum — exactly
    the sums over the subset's kernel submatrices, so each resample costs O(subsets·N²) instead of
    O(subsets·m²·d). Larger N: per-subset kernels through ``kernel_inception_distance(rows=...)``.
    """

    def __init__(self, real: Any, fake: Any, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                 gamma: float | None = None, coef0: float = 1.0, kernel_rows_max: int = KERNEL_ROWS_MAX):
        self.x = _features(real, "real")
        self.y = _features(fake, "fake")
        if self.x.shape != self.y.shape:
            raise InputError(f"paired resampling needs index-matched sets, got {self.x.shape} real and "
                             f"{self.y.shape} fake", "pass the features of the same images, in order")
        if int(subsets) < 1:
            raise InputError(f"subsets must be >= 1, got {subsets}", "use e.g. subsets=100")
        self.n = len(self.x)
        self.subsets, self.subset_size = int(subsets), int(subset_size)
        self.kernel_args = (degree, gamma, coef0)
        self.kernels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if 2 <= self.n <= int(kernel_rows_max):
            self.kernels = (_poly_kernel(self.x, self.x, *self.kernel_args),
                            _poly_kernel(self.y, self.y, *self.kernel_args),
                            _poly_kernel(self.x, self.y, *self.kernel_args))

    def __call__(self, rows: Any | None = None, seed: int = 0) -> tuple[float, float]:
        """(mean, std) of the subset MMD² estimates of the resample ``rows`` (None: all images)."""
        if self.kernels is None:
            degree, gamma, coef0 = self.kernel_args
            return kernel_inception_distance(self.x, self.y, self.subsets, self.subset_size, degree, gamma,
                                             coef0, seed=seed, rows=rows)
        rmap = np.arange(self.n) if rows is None else _check_rows(rows, self.n)
        n = len(rmap)
        m = _subset_size(self.subset_size, n, n)
        rng = np.random.RandomState(seed)  # the same draws as kernel_inception_distance
        cx = np.zeros((self.subsets, self.n))
        cy = np.zeros((self.subsets, self.n))
        for i in range(self.subsets):
            cx[i] = np.bincount(rmap[rng.choice(n, m, replace=False)], minlength=self.n)
            cy[i] = np.bincount(rmap[rng.choice(n, m, replace=False)], minlength=self.n)
        kxx, kyy, kxy = self.kernels
        sxx = np.einsum("si,si->s", cx @ kxx, cx) - cx @ np.diag(kxx)
        syy = np.einsum("si,si->s", cy @ kyy, cy) - cy @ np.diag(kyy)
        sxy = np.einsum("si,si->s", cx @ kxy, cy)
        mmds = (sxx + syy) / (m * (m - 1)) - 2.0 * sxy / (m * m)
        return float(mmds.mean()), float(mmds.std())
