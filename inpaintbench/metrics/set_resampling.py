"""Paired resampling of the new set metrics (CMMD, PRDC), shared by their CIs in the run and by
``compare``'s bootstrap of a difference (:func:`inpaintbench.analysis.stats.set_metric_bootstrap`).

A resample draws image indices with replacement, the same ones for the fakes and their ground truths
(which keeps each inpainted image with its original). The value of a resample is the metric of the
resampled rows, computed without materialising them where that is exact:

* CMMD from the multiplicities (:class:`~inpaintbench.metrics.mmd.WeightedMMD`);
* PRDC from the full distance matrices indexed by the resample (``d[idx][:, idx]`` *is* the distance
  matrix of the resampled sets; duplicated rows sit at distance 0 from each other, exactly as if the
  rows had been copied). Above :data:`DISTANCE_CACHE_MAX_N` rows the matrices would not fit, and
  each resample recomputes :func:`~inpaintbench.metrics.prdc.prdc` on the resampled rows.

The interval is FID's (:func:`~inpaintbench.metrics.fid.fid_bootstrap_ci`): value ± z·SE with SE the
standard deviation of the resampled values. As for FID, a percentile interval would be misplaced:
a resample repeats ~37 % of the images, which shrinks the k-NN radii of PRDC (a repeat is its own
nearest neighbour) and shifts CMMD's V-statistic, so the resampled values are not centred on the
point estimate; their spread is still a usable standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.metrics.mmd import WeightedMMD, cmmd
from inpaintbench.metrics.prdc import PRDC_K, PRDC_NAMES, pairwise_distances, prdc, prdc_from_distances

#: above this many rows PRDC resamples recompute distances instead of indexing cached matrices
DISTANCE_CACHE_MAX_N = 4096
#: default resamples of the CI: 200 (SE within ≈ ±5 %); 50 above the caches' N, where each costs O(N²D)
N_BOOT = 200
N_BOOT_LARGE = 50

__all__ = ["prdc_base_name", "resampler", "NormalCI", "normal_bootstrap_cis", "default_n_boot"]


def prdc_base_name(metric: str) -> str | None:
    """``precision_dinov2`` -> ``precision``; None for a non-PRDC name."""
    base = metric.split("_", 1)[0]
    return base if base in PRDC_NAMES and metric in (base, f"{base}_dinov2") else None


def default_n_boot(n: int) -> int:
    return N_BOOT if n <= DISTANCE_CACHE_MAX_N else N_BOOT_LARGE


class _PRDCResampler:
    def __init__(self, real: np.ndarray, fake: np.ndarray, k: int = PRDC_K):
        self.real, self.fake, self.k = real, fake, k
        self._d = None
        if len(real) <= DISTANCE_CACHE_MAX_N:
            d_rr = pairwise_distances(real, real)
            d_ff = pairwise_distances(fake, fake)
            np.fill_diagonal(d_rr, 0.0)
            np.fill_diagonal(d_ff, 0.0)
            self._d = (d_rr, d_ff, pairwise_distances(real, fake))

    def __call__(self, idx: np.ndarray) -> dict[str, float]:
        if self._d is None:
            return prdc(self.real[idx], self.fake[idx], self.k)
        ix = np.ix_(idx, idx)
        d_rr, d_ff, d_rf = self._d
        return prdc_from_distances(d_rr[ix], d_ff[ix], d_rf[ix], self.k)


def resampler(metric: str, real: Any, fake: Any) -> tuple[Callable[[], float], Callable[[np.ndarray], float]]:
    """(point value, value of the resample with indices ``idx``) for ``cmmd`` or a PRDC metric on
    index-aligned ``real``/``fake`` features. The point value is exactly the runner's."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.shape != fake.shape:
        raise InputError(f"paired resampling needs index-aligned features, got {real.shape} and {fake.shape}",
                         "pass the features of the same images")
    n = len(real)
    if metric == "cmmd":
        weighted = WeightedMMD(real, fake)
        return (lambda: cmmd(real, fake)), (lambda idx: weighted(np.bincount(idx, minlength=n)))
    base = prdc_base_name(metric)
    if base is None:
        raise ValueError(f"no resampler for metric {metric!r}")
    res = _PRDCResampler(real, fake)
    return (lambda: prdc(real, fake)[base]), (lambda idx: res(idx)[base])


@dataclass(frozen=True)
class NormalCI:
    value: float
    lo: float
    hi: float
    boot_std: float
    boot_mean: float
    n_boot: int
    method: str


def normal_bootstrap_cis(metrics: list[str], real: Any, fake: Any, n_boot: int | None = None,
                         alpha: float = 0.05, seed: int = 0) -> dict[str, NormalCI]:
    """Value ± Φ⁻¹(1 − α/2)·SE over ``n_boot`` paired resamples (see the module docstring), for
    ``["cmmd"]`` or any PRDC names of one feature space (they share each resample's distances)."""
    from scipy.stats import norm

    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    n = len(real)
    n_boot = default_n_boot(n) if n_boot is None else int(n_boot)
    if n_boot < 2:
        raise InputError(f"n_boot must be >= 2, got {n_boot}", f"use e.g. n_boot={N_BOOT}")
    rng = np.random.default_rng(seed)
    bases = {m: prdc_base_name(m) for m in metrics}
    if all(b is not None for b in bases.values()):
        if real.shape != fake.shape:
            raise InputError(f"paired resampling needs index-aligned features, got {real.shape} and "
                             f"{fake.shape}", "pass the features of the same images")
        res = _PRDCResampler(real, fake)
        point = prdc(real, fake)
        values = {m: point[b] for m, b in bases.items()}
        draws = [res(rng.integers(0, n, n)) for _ in range(n_boot)]
        boots = {m: np.array([d[b] for d in draws]) for m, b in bases.items()}
    elif list(metrics) == ["cmmd"]:
        point_fn, resampled = resampler("cmmd", real, fake)
        values = {"cmmd": float(point_fn())}
        boots = {"cmmd": np.array([resampled(rng.integers(0, n, n)) for _ in range(n_boot)])}
    else:
        raise ValueError(f"normal_bootstrap_cis: pass ['cmmd'] or PRDC names, got {metrics}")
    z = float(norm.ppf(1.0 - alpha / 2.0))
    out = {}
    for m in metrics:
        se = float(boots[m].std(ddof=1))
        out[m] = NormalCI(float(values[m]), float(values[m]) - z * se, float(values[m]) + z * se, se,
                          float(boots[m].mean()), n_boot,
                          f"normal interval with bootstrap SE ({n_boot} paired resamples)")
    return out
