"""Polynomial least-squares fit with a confidence band of the mean response, for scatter panels."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

__all__ = ["poly_fit_band"]


def poly_fit_band(
    x: np.ndarray, y: np.ndarray, degree: int = 2, alpha: float = 0.05, points: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Least-squares polynomial fit with a pointwise (1 − alpha) confidence band of the mean.

    Band: ŷ ± t_{n−p} · s · sqrt(g(x)ᵀ (XᵀX)⁻¹ g(x)), the textbook OLS mean-response interval.
    Returns (grid, fit, low, high) or None when there are too few distinct x values.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    degree = min(degree, len(np.unique(x)) - 1, len(x) - 2)
    if degree < 1:
        return None
    lo, hi = x.min(), x.max()
    scale = (hi - lo) / 2 or 1.0
    center = (hi + lo) / 2

    def design(v: np.ndarray) -> np.ndarray:
        return np.vander((v - center) / scale, degree + 1, increasing=True)

    xd = design(x)
    coef, *_ = np.linalg.lstsq(xd, y, rcond=None)
    dof = len(x) - (degree + 1)
    resid = y - xd @ coef
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(xd.T @ xd)
    grid = np.linspace(lo, hi, points)
    gd = design(grid)
    fit = gd @ coef
    se = np.sqrt(np.einsum("ij,jk,ik->i", gd, cov, gd).clip(min=0))
    t = sps.t.ppf(1 - alpha / 2, dof)
    return grid, fit, fit - t * se, fit + t * se
