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
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from inpaintbench.errors import InputError

__all__ = ["kernel_inception_distance", "polynomial_mmd2_unbiased"]


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


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                             coef0: float = 1.0) -> float:
    """Unbiased MMD² of two equally sized samples [m, d] under the polynomial kernel (float64)."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise InputError(f"MMD² needs two samples of equal size >= 2, got {x.shape[0]} and {y.shape[0]}",
                         "use a larger subset_size or more images")
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)
    k_xx = (x @ x.T * g + coef0) ** degree
    k_yy = (y @ y.T * g + coef0) ** degree
    k_xy = (x @ y.T * g + coef0) ** degree
    within = (k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))
    return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(real: Any, fake: Any, subsets: int = 100, subset_size: int = 1000,
                              degree: int = 3, gamma: float | None = None, coef0: float = 1.0,
                              seed: int = 0) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets (see module docstring). Papers often
    print ×10³. ``subset_size`` larger than either set is clipped to it, with a warning."""
    x = _features(real, "real")
    y = _features(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}",
                         "use the same feature extractor for both sets")
    if int(subsets) < 1:
        raise InputError(f"subsets must be >= 1, got {subsets}", "use e.g. subsets=100")
    n1, n2 = len(x), len(y)
    if min(n1, n2) < 2:
        raise InputError(f"KID needs at least 2 images per set, got {n1} real and {n2} fake",
                         "evaluate more images")
    m = int(subset_size)
    if m > min(n1, n2):
        warnings.warn(f"KID subset_size {m} exceeds the number of images ({n1} real, {n2} fake); "
                      f"using {min(n1, n2)}", stacklevel=2)
        m = min(n1, n2)
    if m < 2:
        raise InputError(f"KID subset_size must be >= 2, got {m}", "use e.g. subset_size=1000")
    rng = np.random.RandomState(seed)  # legacy generator on purpose: torch-fidelity's draw order
    mmds = np.empty(int(subsets))
    for i in range(int(subsets)):
        ix = rng.choice(n1, m, replace=False)
        iy = rng.choice(n2, m, replace=False)
        mmds[i] = polynomial_mmd2_unbiased(x[ix], y[iy], degree, gamma, coef0)
    return float(mmds.mean()), float(mmds.std())
