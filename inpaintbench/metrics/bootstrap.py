"""Bootstrap confidence intervals for per-image metric means (and paired differences).

Intervals come from :func:`scipy.stats.bootstrap` (``vectorized=True``), **BCa** by default: the
bias-corrected and accelerated percentile interval (Efron & Tibshirani 1993, ch. 14; DiCiccio &
Efron 1996), which is second-order accurate where the plain percentile interval under-covers for
skewed metrics (LPIPS, L1 of small holes). Where BCa is degenerate (constant data: the acceleration
is 0/0) the percentile interval of the *same* resamples is reported instead, and the returned
object says which (``.method``).

- Non-finite values (NaN for a hole-only metric of an image without hole, +inf from writers older
  than the PSNR cap) are dropped *before* resampling and counted, so that the caller can report
  "mean over N, K excluded".
- Fewer than two finite values: no interval (``lo = hi = NaN``), never a zero-width one.
- Seeded with ``numpy.random.default_rng(seed)``; scipy draws the resamples as
  ``rng.integers(0, n, (batch, n))`` blocks, so :func:`bootstrap_indices` reproduces them exactly.
- A CI meant for publication needs at least :data:`MIN_N_BOOT` resamples: fewer is refused unless
  the caller says ``allow_few=True`` (unit tests, quick looks).
- Speed: scipy's BCa jackknife is O(N²) (it materialises every leave-one-out sample). Above
  :data:`_SCIPY_BCA_MAX_N` values the acceleration is computed from the closed form for the mean,
  ``a = Σc³ / (6 (Σc²)^1.5)`` with ``c = x - mean`` (Efron & Tibshirani 1993, eq. 14.15), on
  scipy's bootstrap distribution; the result equals scipy's BCa (tested).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from scipy.special import ndtr, ndtri

from inpaintbench.errors import InputError

_MAX_INDICES = 8_000_000  # indices per block of resamples (64 MB of int64)
#: The fewest resamples :func:`bootstrap_mean_ci` accepts without ``allow_few=True``.
MIN_N_BOOT = 1000
#: Up to this many values scipy's own (O(N²)) BCa jackknife is used; above, the closed form.
_SCIPY_BCA_MAX_N = 500
#: What ``summary.json`` records as the interval method.
METHOD_DESCRIPTION = "BCa (scipy.stats.bootstrap); percentile where BCa is degenerate (constant data)"

__all__ = ["MeanCI", "DiffCI", "bootstrap_mean_ci", "paired_bootstrap_diff_ci", "bootstrap_indices",
           "bootstrap_p_value", "MIN_N_BOOT", "METHOD_DESCRIPTION"]


def bootstrap_p_value(boot_diffs) -> float:
    """The one bootstrap p-value convention of inpaintbench, for "difference = 0", two-sided.

    ``2 * min(P(d* <= 0), P(d* >= 0))`` over the finite resampled differences, clipped to 1 and
    floored at ``1 / (n_boot + 1)`` (a bootstrap with B resamples cannot resolve smaller p-values;
    Davison & Hinkley 1997, §4.4). NaN when no resample is finite.
    """
    boot = np.asarray(boot_diffs, dtype=np.float64).ravel()
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return float("nan")
    tail = min(float(np.mean(boot <= 0.0)), float(np.mean(boot >= 0.0)))
    return float(min(1.0, max(2.0 * tail, 1.0 / (boot.size + 1))))


@dataclass(frozen=True)
class MeanCI:
    """Mean with a bootstrap interval. Unpacks as ``mean, lo, hi = ci``.

    ``method`` is ``"BCa"``, ``"percentile"`` (BCa degenerate) or ``"none"`` (fewer than two
    finite values: ``lo`` and ``hi`` are NaN).
    """

    mean: float
    lo: float
    hi: float
    n: int  # finite values used
    n_excluded: int  # non-finite values dropped (inf / NaN)
    n_boot: int
    alpha: float
    method: str = "BCa"

    def __iter__(self) -> Iterator[float]:
        return iter((self.mean, self.lo, self.hi))


@dataclass(frozen=True)
class DiffCI:
    """Mean paired difference ``a - b`` with its bootstrap interval; unpacks as ``mean, lo, hi``.

    ``p_value`` is :func:`bootstrap_p_value` of the bootstrap distribution of the mean difference:
    an approximation whose resolution is limited by ``n_boot``. ``method`` as in :class:`MeanCI`.
    """

    mean: float
    lo: float
    hi: float
    p_value: float
    n: int  # pairs where both values are finite
    n_excluded: int
    n_boot: int
    alpha: float
    method: str = "BCa"

    def __iter__(self) -> Iterator[float]:
        return iter((self.mean, self.lo, self.hi))


def _as_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of per-image values, got shape {arr.shape}",
                         "pass one value per image")
    return arr


def _check_args(n_boot: int, alpha: float, minimum: int) -> None:
    if int(n_boot) < max(1, minimum):
        raise InputError(
            f"n_boot must be >= {max(1, minimum)}, got {n_boot}"
            + (" (a published CI needs at least that many resamples)" if minimum > 1 else ""),
            f"use n_boot={MIN_N_BOOT} or more" + (" (allow_few=True for a quick look)" if minimum > 1 else ""),
        )
    if not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha}", "use alpha=0.05 for a 95% interval")


def bootstrap_indices(n: int, n_boot: int, seed: int | np.random.Generator = 0) -> Iterator[np.ndarray]:
    """Yield blocks of resampling index rows ``[k, n]`` (k <= n_boot in total), seeded.

    The blocks concatenate to the same ``[n_boot, n]`` matrix whatever the block size, because the
    generator draws the rows in order; :func:`bootstrap_mean_ci` resamples exactly these rows.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    per_block = max(1, _MAX_INDICES // max(n, 1))
    done = 0
    while done < n_boot:
        k = min(per_block, n_boot - done)
        yield rng.integers(0, n, size=(k, n))
        done += k


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _bca_mean_closed_form(x: np.ndarray, boot: np.ndarray, alpha: float) -> tuple[float, float]:
    """BCa bounds of the mean from its bootstrap distribution, O(N) (Efron & Tibshirani 1993, §14.3).

    z0 from the share of resampled means below the estimate (ties count half, as scipy), the
    acceleration from the jackknife of the mean, whose leave-one-out deviations are ``x_i - mean``
    up to the factor 1/(n-1) that cancels in eq. 14.15.
    """
    theta = float(x.mean())
    z0 = ndtri((np.count_nonzero(boot < theta) + np.count_nonzero(boot <= theta)) / (2.0 * boot.size))
    c = x - theta
    s2 = float(np.sum(c * c))
    if s2 == 0.0 or not np.isfinite(z0):
        return float("nan"), float("nan")
    a = float(np.sum(c**3)) / (6.0 * s2**1.5)
    z = ndtri(alpha / 2.0)
    q = [ndtr(z0 + (z0 + zz) / (1.0 - a * (z0 + zz))) for zz in (z, -z)]
    lo, hi = np.quantile(boot, q)
    return float(lo), float(hi)


def _bootstrap_mean(
    x: np.ndarray, n_boot: int, alpha: float, seed: int | np.random.Generator
) -> tuple[float, float, np.ndarray, str]:
    """(lo, hi, bootstrap distribution of the mean, method) for finite ``x`` with ``x.size >= 2``."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    kw = dict(vectorized=True, confidence_level=1.0 - alpha, batch=max(1, _MAX_INDICES // x.size))
    scipy_bca = x.size <= _SCIPY_BCA_MAX_N
    with warnings.catch_warnings():
        # constant data: scipy warns (DegenerateDataWarning, 0/0) and returns NaN bounds; handled below
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = sps.bootstrap((x,), _mean, n_resamples=int(n_boot), rng=rng,
                            method="BCa" if scipy_bca else "percentile", **kw)
        boot = np.asarray(res.bootstrap_distribution, dtype=np.float64)
        if scipy_bca:
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        else:
            lo, hi = _bca_mean_closed_form(x, boot, alpha)
        if np.isfinite(lo) and np.isfinite(hi):
            return lo, hi, boot, "BCa"
        # BCa degenerate: the percentile interval of the same resamples (no new draws)
        pct = sps.bootstrap((x,), _mean, n_resamples=0, bootstrap_result=res, method="percentile",
                            rng=rng, **kw)
    return float(pct.confidence_interval.low), float(pct.confidence_interval.high), boot, "percentile"


def bootstrap_mean_ci(
    values,
    n_boot: int = MIN_N_BOOT,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    *,
    allow_few: bool = False,
) -> MeanCI:
    """Mean of the finite ``values`` and its ``1-alpha`` BCa bootstrap interval.

    Returns a :class:`MeanCI` (unpacks as ``mean, lo, hi``; ``.n_excluded`` counts dropped inf/NaN,
    ``.method`` the interval actually computed). No finite value -> all NaN; one -> the value with
    NaN bounds. ``n_boot < MIN_N_BOOT`` is an :class:`InputError` unless ``allow_few``.
    """
    _check_args(n_boot, alpha, 1 if allow_few else MIN_N_BOOT)
    arr = _as_1d(values, "values")
    x = arr[np.isfinite(arr)]
    n, excl = int(x.size), int(arr.size - x.size)
    nan = float("nan")
    if n < 2:
        mean = float(x[0]) if n == 1 else nan
        return MeanCI(mean, nan, nan, n, excl, int(n_boot), float(alpha), "none")
    lo, hi, _, method = _bootstrap_mean(x, int(n_boot), float(alpha), seed)
    return MeanCI(float(x.mean()), lo, hi, n, excl, int(n_boot), float(alpha), method)


def paired_bootstrap_diff_ci(
    a, b, n_boot: int = MIN_N_BOOT, alpha: float = 0.05, seed: int | np.random.Generator = 0
) -> DiffCI:
    """Mean of ``a - b`` over the pairs where both are finite, with a paired BCa bootstrap.

    Use it to compare two models on the same images (e.g. PSNR of model A minus model B). The
    per-image differences are bootstrapped (the paired design), which removes the image-difficulty
    variance a two-sample test would carry. Any ``n_boot >= 1`` is accepted here: the CI and the
    p-value (floored at ``1/(n_boot+1)``) record how many resamples they rest on, and callers such
    as ``inpaintbench compare`` choose it; publication defaults stay at :data:`MIN_N_BOOT`.
    """
    _check_args(n_boot, alpha, 1)
    xa = _as_1d(a, "a")
    xb = _as_1d(b, "b")
    if xa.shape != xb.shape:
        raise InputError(f"paired values differ in length: {xa.size} vs {xb.size}",
                         "pass the two models' values for the same images, in the same order")
    both = np.isfinite(xa) & np.isfinite(xb)
    d = xa[both] - xb[both]
    n, excl = int(d.size), int(xa.size - d.size)
    nan = float("nan")
    if n < 2:
        mean = float(d[0]) if n == 1 else nan
        return DiffCI(mean, nan, nan, nan, n, excl, int(n_boot), float(alpha), "none")
    lo, hi, boot, method = _bootstrap_mean(d, int(n_boot), float(alpha), seed)
    return DiffCI(float(d.mean()), lo, hi, bootstrap_p_value(boot), n, excl, int(n_boot), float(alpha),
                  method)
