"""Bootstrap confidence intervals for per-image metric means (and paired differences).

Percentile bootstrap (Efron & Tibshirani 1993, ch. 13): resample the images with replacement
``n_boot`` times, take the mean each time, report the ``alpha/2`` and ``1-alpha/2`` percentiles of
those means (NumPy's default linear interpolation). Non-finite values (PSNR = +inf for an exact
reconstruction, NaN for a hole-only metric of an image without hole) are dropped *before*
resampling and counted, so that the caller can report "mean over N, K excluded".

Everything is vectorised (an index matrix per block of resamples, at most ~8 M indices in memory at
a time) and seeded with ``numpy.random.default_rng(seed)``: the same inputs and seed give the same
interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from inpaintbench.errors import InputError

_MAX_INDICES = 8_000_000  # indices per block of resamples (64 MB of int64)

__all__ = ["MeanCI", "DiffCI", "bootstrap_mean_ci", "paired_bootstrap_diff_ci", "bootstrap_indices"]


@dataclass(frozen=True)
class MeanCI:
    """Mean with a percentile-bootstrap interval. Unpacks as ``mean, lo, hi = ci``."""

    mean: float
    lo: float
    hi: float
    n: int  # finite values used
    n_excluded: int  # non-finite values dropped (inf / NaN)
    n_boot: int
    alpha: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.mean, self.lo, self.hi))


@dataclass(frozen=True)
class DiffCI:
    """Mean paired difference ``a - b`` with its bootstrap interval; unpacks as ``mean, lo, hi``.

    ``p_value`` is the two-sided bootstrap p-value ``2*min(P(d*<=0), P(d*>=0))`` (clipped to 1, and
    at least ``1/(n_boot+1)``): an approximation whose resolution is limited by ``n_boot``.
    """

    mean: float
    lo: float
    hi: float
    p_value: float
    n: int  # pairs where both values are finite
    n_excluded: int
    n_boot: int
    alpha: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.mean, self.lo, self.hi))


def _finite_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of per-image values, got shape {arr.shape}",
                         "pass one value per image")
    return arr


def _check_args(n_boot: int, alpha: float) -> None:
    if int(n_boot) < 1:
        raise InputError(f"n_boot must be >= 1, got {n_boot}", "use e.g. n_boot=1000")
    if not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha}", "use alpha=0.05 for a 95% interval")


def bootstrap_indices(n: int, n_boot: int, seed: int | np.random.Generator = 0) -> Iterator[np.ndarray]:
    """Yield blocks of resampling index rows ``[k, n]`` (k <= n_boot in total), seeded.

    The blocks concatenate to the same ``[n_boot, n]`` matrix whatever the block size, because the
    generator draws the rows in order.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    per_block = max(1, _MAX_INDICES // max(n, 1))
    done = 0
    while done < n_boot:
        k = min(per_block, n_boot - done)
        yield rng.integers(0, n, size=(k, n))
        done += k


def _boot_means(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    return np.concatenate([x[idx].mean(axis=1) for idx in bootstrap_indices(len(x), n_boot, seed)])


def bootstrap_mean_ci(values, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> MeanCI:
    """Mean of the finite ``values`` and its ``1-alpha`` percentile-bootstrap interval.

    Returns a :class:`MeanCI` (unpacks as ``mean, lo, hi``; ``.n_excluded`` counts dropped inf/NaN).
    No finite value -> all NaN; one finite value -> ``lo == hi == mean``.
    """
    _check_args(n_boot, alpha)
    arr = _finite_1d(values, "values")
    finite = np.isfinite(arr)
    x = arr[finite]
    n, excl = int(x.size), int(arr.size - x.size)
    if n == 0:
        nan = float("nan")
        return MeanCI(nan, nan, nan, 0, excl, int(n_boot), float(alpha))
    mean = float(x.mean())
    if n == 1:
        return MeanCI(mean, mean, mean, 1, excl, int(n_boot), float(alpha))
    means = _boot_means(x, int(n_boot), seed)
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return MeanCI(mean, float(lo), float(hi), n, excl, int(n_boot), float(alpha))


def paired_bootstrap_diff_ci(a, b, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> DiffCI:
    """Mean of ``a - b`` over the pairs where both are finite, with a paired percentile bootstrap.

    Use it to compare two models on the same images (e.g. PSNR of model A minus model B): pairs are
    resampled jointly, which removes the image-difficulty variance a two-sample test would carry.
    """
    _check_args(n_boot, alpha)
    xa = _finite_1d(a, "a")
    xb = _finite_1d(b, "b")
    if xa.shape != xb.shape:
        raise InputError(f"paired values differ in length: {xa.size} vs {xb.size}",
                         "pass the two models' values for the same images, in the same order")
    both = np.isfinite(xa) & np.isfinite(xb)
    d = xa[both] - xb[both]
    n, excl = int(d.size), int(xa.size - d.size)
    nan = float("nan")
    if n == 0:
        return DiffCI(nan, nan, nan, nan, 0, excl, int(n_boot), float(alpha))
    mean = float(d.mean())
    if n == 1:
        return DiffCI(mean, mean, mean, nan, 1, excl, int(n_boot), float(alpha))
    means = _boot_means(d, int(n_boot), seed)
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    tail = min(np.mean(means <= 0.0), np.mean(means >= 0.0))
    p = float(min(1.0, max(2.0 * tail, 1.0 / (n_boot + 1))))
    return DiffCI(mean, float(lo), float(hi), p, n, excl, int(n_boot), float(alpha))
