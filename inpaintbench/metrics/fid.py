"""FID: the one place to import the Fréchet distance, its bootstrap interval and FID∞ from.

The work is in three modules below this one: :mod:`.frechet` (the float64 algebra on feature
arrays and moments, and the conventions: MAT's population covariance, the trace of the matrix root
from a pivoted Cholesky factor or, when N < d, a nuclear norm), :mod:`.feature_stats` (streaming
:class:`FeatureStats`) and :mod:`.fid_resampling` (bootstrap CI, FID∞). This module re-exports
them and owns the small-N caveat (:func:`small_sample_warning`).

Small N: FID is biased upward roughly ∝ 1/N and values at different N are not comparable;
:func:`small_sample_warning` gives the caveat, :func:`fid_infinity` (Chong & Forsyth, "Effectively
Unbiased FID and Inception Score and where to find them", CVPR 2020) extrapolates to N → ∞.
"""

from __future__ import annotations

# Re-exported: callers import every FID name (and tests some private helpers) from here.
from inpaintbench.metrics.feature_stats import FeatureStats, frechet_distance_from_stats  # noqa: F401
from inpaintbench.metrics.fid_resampling import (  # noqa: F401
    FID_N_BOOT,
    FIDBootstrapCI,
    FIDInfinity,
    _check_weights,
    _weighted_fid,
    fid_bootstrap_ci,
    fid_infinity,
    frechet_distance_weighted,
)
from inpaintbench.metrics.frechet import (  # noqa: F401
    _BLAS_CONTROLLER,
    _ROW_CHUNK,
    _as_features,
    _fid_from_rows,
    _mean_trace_cov,
    _moments,
    _row_chunks,
    _scaled_centred_rows,
    _sqrt_factor,
    _sum_sqrt_eigvals,
    _trace_sqrt_product,
    _use_rows,
    frechet_distance,
    frechet_distance_from_moments,
    single_threaded_lapack,
)

SMALL_N = 2048  # below this, 2048-d covariances are rank-deficient and FID strongly biased

__all__ = [
    "FeatureStats",
    "frechet_distance_from_stats",
    "frechet_distance",
    "frechet_distance_weighted",
    "fid_bootstrap_ci",
    "FIDBootstrapCI",
    "FID_N_BOOT",
    "fid_infinity",
    "FIDInfinity",
    "small_sample_warning",
    "single_threaded_lapack",
    "SMALL_N",
]


def small_sample_warning(n: int, dim: int = 2048) -> str | None:
    """The caveat to print next to an FID/IDS computed from ``n`` < 2048 images, else None."""
    if n >= SMALL_N and n > dim:
        return None
    return (f"FID from N={n} images is biased upward (roughly ∝ 1/N) and not comparable with FIDs at "
            f"other N; with N <= {dim} the {dim}-d covariance is rank-deficient. Papers use N = 2,993 "
            "(CelebA-HQ) to 36,500 (Places); report N, prefer KID or FID∞ at small N, and read "
            "P-IDS/U-IDS as 0 when 2N <= ~2048 (the SVM separates anything).")
