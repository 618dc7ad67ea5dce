"""The Fréchet-distance algebra: FID from feature arrays or from float64 means and covariances.

Conventions (MAT / StyleGAN2-ADA ``metrics/metric_utils.py``):

* statistics in **float64**; the covariance is the *population* covariance ``ΣxxᵀN⁻¹ − μμᵀ``
  (divides by N, as MAT; pytorch-fid / torch-fidelity use N−1: a tiny shift, 23.458 vs 23.480 at
  N = 1000). :class:`~inpaintbench.metrics.feature_stats.FeatureStats` keeps MAT's running sums
  ``Σx``, ``Σxxᵀ``; from feature arrays (:func:`frechet_distance`) the rows are centred on their
  mean first, which avoids the cancellation in ``Σxxᵀ/N − μμᵀ``;
* FID = ‖μ₁−μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^{1/2}.

Only the trace of the matrix root is needed: for any factor Σ₁ = UUᵀ (U: d×r), the nonzero
eigenvalues of Σ₁Σ₂ are those of the symmetric PSD r×r matrix UᵀΣ₂U (the usual
Σ₁^{1/2}Σ₂Σ₁^{1/2} is the case U = Σ₁^{1/2}). We take U from a pivoted Cholesky factorisation
(LAPACK ``dpstrf``), which also gives the numerical rank r (N−1 when N ≤ d), and sum √λ of
UᵀΣ₂U from a symmetric eigensolver (round-off negatives clipped to 0). Exact in exact arithmetic,
real by construction (no complex ``sqrtm`` output to discard), fine with rank-deficient
covariances, and several times faster than ``scipy.linalg.sqrtm`` at d = 2048
(``benchmarks/bench_fid.py``). It must run in float64: in float32 the same algebra was off by
0.1–1 % on rank-deficient statistics in our trials (``tests/test_fid.py``; e.g.
−3.7 % for float32 ``eigvals`` at N = 1000). LAPACK runs single-threaded here (see
:func:`single_threaded_lapack`).

When both sets have fewer rows than dimensions (N < d: every test set under 2,048 images) the same
trace comes from the rows themselves: with Σ₁ = AᵀA, Σ₂ = BᵀB (A, B: the centred rows scaled by
N^{-1/2}), the eigenvalues of Σ₁Σ₂ are the squared singular values of the N₁×N₂ matrix ABᵀ, so
tr (Σ₁Σ₂)^{1/2} is its nuclear norm. That costs O(N²d + N³) instead of O(d³), which makes the
bootstrap interval cheap at the sizes where it matters most (:func:`frechet_distance`,
:func:`frechet_distance_weighted` and :func:`fid_bootstrap_ci` pick the route; both agree to
round-off, ``tests/test_fid.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.linalg
import torch

from inpaintbench.errors import InputError

_ROW_CHUNK = 4096  # rows converted to float64 at a time


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _as_features(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    """[N, D] float array (numpy or torch, any device) -> numpy, dtype kept (float32 stays float32)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected features of shape [N, D], got {arr.shape}",
                         "pass one feature row per image (e.g. 2048-d Inception pool features)")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if dim is not None and arr.shape[1] != dim:
        raise InputError(f"{name}: feature dimension {arr.shape[1]} does not match {dim}",
                         "use the same feature extractor for both sets")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: features contain NaN or inf", "check the images and the extractor")
    return arr


def _row_chunks(x: np.ndarray, chunk: int = _ROW_CHUNK) -> Iterator[np.ndarray]:
    for i in range(0, len(x), chunk):
        yield np.asarray(x[i:i + chunk], dtype=np.float64)


def _moments(x: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 mean and population covariance of the rows of ``x`` (optionally with integer
    resampling weights, total weight = N). Centred on the plain mean first to limit cancellation."""
    n, d = x.shape
    centre = np.zeros(d)
    for c in _row_chunks(x):
        centre += c.sum(axis=0)
    centre /= n
    total = float(n if weights is None else weights.sum())
    s1 = np.zeros(d)
    s2 = np.zeros((d, d))
    for i, c in zip(range(0, n, _ROW_CHUNK), _row_chunks(x), strict=True):
        c = c - centre
        if weights is not None:
            w = weights[i:i + len(c)].astype(np.float64)
            keep = w > 0
            c, w = c[keep], w[keep]
            s1 += w @ c
            c = c * np.sqrt(w)[:, None]
        else:
            s1 += c.sum(axis=0)
        s2 += c.T @ c  # NumPy uses a symmetric rank-k update for a.T @ a
    m = s1 / total
    cov = s2 / total - np.outer(m, m)
    cov = 0.5 * (cov + cov.T)
    return centre + m, cov


def _scaled_centred_rows(x: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 mean μ and rows A = √(wᵢ/W)(xᵢ − μ) with AᵀA the (weighted) population covariance;
    rows of weight 0 are dropped. Only used when N < d, so the copy is smaller than a d×d matrix."""
    x = np.asarray(x, dtype=np.float64)
    if weights is None:
        mu = x.mean(axis=0)
        return mu, (x - mu) / np.sqrt(len(x))
    w = weights.astype(np.float64)
    keep = w > 0
    x, w = x[keep], w[keep]
    total = w.sum()
    mu = (w @ x) / total
    return mu, (x - mu) * np.sqrt(w / total)[:, None]


def _fid_from_rows(mu1: np.ndarray, a: np.ndarray, mu2: np.ndarray, b: np.ndarray) -> float:
    """FID from scaled centred rows (see the module docstring): tr (Σ₁Σ₂)^{1/2} = ‖ABᵀ‖_* (nuclear norm)."""
    diff = mu1 - mu2
    with single_threaded_lapack():
        sv = scipy.linalg.svd(a @ b.T, compute_uv=False, check_finite=False, lapack_driver="gesdd")
    return float(diff @ diff + np.einsum("ij,ij->", a, a) + np.einsum("ij,ij->", b, b) - 2.0 * sv.sum())


def _use_rows(n1: int, n2: int, d: int) -> bool:
    """The N×N route pays off while both sets have fewer rows than dimensions."""
    return max(n1, n2) < d


def _mean_trace_cov(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Float64 mean and trace of the population covariance (sum of per-dimension variances)."""
    mu = np.zeros(x.shape[1])
    for c in _row_chunks(x):
        mu += c.sum(axis=0)
    mu /= len(x)
    ss = sum(float(((c - mu) ** 2).sum()) for c in _row_chunks(x))
    return mu, ss / len(x)


_BLAS_CONTROLLER = None


def single_threaded_lapack():
    """Context running BLAS/LAPACK on one thread (threadpoolctl). OpenBLAS' threaded symmetric
    eigensolver degrades badly when the cores are shared: on a loaded 2-core machine ``eigh`` of a
    2048² matrix took 10 s with 2 threads and 1 s with one (idle: ~0.6 s vs ~1 s)."""
    global _BLAS_CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _sqrt_factor(sigma: np.ndarray) -> np.ndarray:
    """U (d×r) with UUᵀ = sigma, r its numerical rank: pivoted Cholesky (LAPACK ``dpstrf``, stops
    at the default tolerance d·eps·max diag). Cheaper than an eigendecomposition, and it drops the
    round-off directions of a rank-deficient covariance (rank N−1 when N ≤ d) instead of keeping
    them as tiny eigenvalues."""
    d = sigma.shape[0]
    sym = np.asfortranarray(0.5 * (sigma + sigma.T))
    with single_threaded_lapack():
        c, piv, rank, info = scipy.linalg.lapack.dpstrf(sym, tol=-1.0, lower=1)
    if info < 0:  # pragma: no cover - only for invalid arguments
        raise np.linalg.LinAlgError(f"dpstrf failed (info={info})")
    rank = int(rank) if info > 0 else d
    low = np.tril(c[:, :rank])
    u = np.empty_like(low)
    u[np.asarray(piv) - 1] = low  # undo the pivoting: sigma = P L Lᵀ Pᵀ
    return u


def _trace_sqrt_product(u1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (Σ₁Σ₂)^{1/2} = Σ √λ(UᵀΣ₂U) with Σ₁ = UUᵀ: UᵀΣ₂U (r×r, symmetric PSD) has the nonzero
    eigenvalues of Σ₂UUᵀ = Σ₂Σ₁, which are those of Σ₁Σ₂."""
    if u1.shape[1] == 0:
        return 0.0
    m = u1.T @ (sigma2 @ u1)
    return _sum_sqrt_eigvals(m)


def _sum_sqrt_eigvals(m: np.ndarray) -> float:
    """Σ √max(λ, 0) over the eigenvalues of a symmetric PSD matrix (round-off negatives clipped)."""
    m = 0.5 * (m + m.T)
    with single_threaded_lapack():
        lam = scipy.linalg.eigh(m, eigvals_only=True, driver="evd", check_finite=False)
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


# ----------------------------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------------------------
def frechet_distance_from_moments(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """FID from float64 means and covariances (validated); tr(Σ₁Σ₂)^{1/2} as in the module docstring.
    The distance is returned as computed (a value within round-off of 0 can come out slightly negative)."""
    mu1, sigma1, mu2, sigma2 = (np.asarray(a, dtype=np.float64) for a in (mu1, sigma1, mu2, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise InputError(f"inconsistent statistics shapes: mu {mu1.shape}/{mu2.shape}, "
                         f"sigma {sigma1.shape}/{sigma2.shape}", "use the same feature extractor for both")
    for a in (mu1, sigma1, mu2, sigma2):
        if not np.isfinite(a).all():
            raise InputError("feature statistics contain NaN or inf", "recompute them from finite features")
    diff = mu1 - mu2
    tr_root = _trace_sqrt_product(_sqrt_factor(sigma1), sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_root)


def frechet_distance(feats_a: Any, feats_b: Any) -> float:
    """FID between two feature sets [N, D] (numpy or torch): float64 moments, population covariance."""
    a = _as_features(feats_a, "feats_a")
    b = _as_features(feats_b, "feats_b", a.shape[1])
    for x, name in ((a, "feats_a"), (b, "feats_b")):
        if len(x) < 2:
            raise InputError(f"{name}: FID needs at least 2 feature rows, got {len(x)}",
                             "evaluate more images")
    if _use_rows(len(a), len(b), a.shape[1]):
        return _fid_from_rows(*_scaled_centred_rows(a), *_scaled_centred_rows(b))
    mu1, s1 = _moments(a)
    mu2, s2 = _moments(b)
    return frechet_distance_from_moments(mu1, s1, mu2, s2)
