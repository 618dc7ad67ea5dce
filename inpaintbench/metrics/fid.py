"""Fréchet distance between feature sets (FID), its bootstrap interval and FID∞.

Conventions (MAT / StyleGAN2-ADA ``metrics/metric_utils.py``):

* statistics in **float64**; the covariance is the *population* covariance ``ΣxxᵀN⁻¹ − μμᵀ``
  (divides by N, as MAT; pytorch-fid / torch-fidelity use N−1: a tiny shift, 23.458 vs 23.480 at
  N = 1000). :class:`FeatureStats` keeps MAT's running sums ``Σx``, ``Σxxᵀ``; from feature arrays
  (:func:`frechet_distance`) the rows are centred on their mean first, which avoids the
  cancellation in ``Σxxᵀ/N − μμᵀ``;
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

Small N: FID is biased upward roughly ∝ 1/N and values at different N are not comparable;
:func:`small_sample_warning` gives the caveat, :func:`fid_infinity` (Chong & Forsyth, "Effectively
Unbiased FID and Inception Score and where to find them", CVPR 2020) extrapolates to N → ∞.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.linalg
import torch

from inpaintbench.errors import InputError

SMALL_N = 2048  # below this, 2048-d covariances are rank-deficient and FID strongly biased
_ROW_CHUNK = 4096  # rows converted to float64 at a time

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
# streaming statistics
# ----------------------------------------------------------------------------------------------
class FeatureStats:
    """Float64 streaming accumulator of N, Σx and Σxxᵀ; mergeable and serialisable.

    ``update`` takes [n, d] numpy arrays or torch tensors (on any device: the outer-product sum is
    formed there in float64, then added on the CPU). ``cov()`` is the population covariance (/N),
    as MAT computes it. A reference-set cache can store :meth:`state_dict` (three arrays) instead
    of the features; note that raw moments lose the centring trick of :func:`frechet_distance`
    (irrelevant in float64 for Inception features, whose mean is of the order of their spread).
    """

    def __init__(self, dim: int | None = None):
        self.dim = None if dim is None else int(dim)
        self.n = 0
        self._sum: np.ndarray | None = None
        self._sum_outer: np.ndarray | None = None
        if self.dim is not None:
            self._alloc(self.dim)

    def _alloc(self, d: int) -> None:
        self.dim = d
        self._sum = np.zeros(d, dtype=np.float64)
        self._sum_outer = np.zeros((d, d), dtype=np.float64)

    def update(self, feats: Any) -> FeatureStats:
        """Add a batch of feature rows [n, d] (numpy array or torch tensor on any device)."""
        if isinstance(feats, torch.Tensor) and feats.device.type != "cpu":
            return self._update_torch(feats)
        x = _as_features(feats, "feats", self.dim)
        if self.dim is None:
            self._alloc(x.shape[1])
        for c in _row_chunks(x):
            self._sum += c.sum(axis=0)
            self._sum_outer += c.T @ c
        self.n += int(x.shape[0])
        return self

    def _update_torch(self, feats: torch.Tensor) -> FeatureStats:
        """Sums formed on the tensor's device in float64 (a GPU), then added on the CPU."""
        f = feats.detach()
        if f.dim() != 2 or (self.dim is not None and f.shape[1] != self.dim) or \
                not bool(torch.isfinite(f).all()):
            _as_features(f.cpu().numpy(), "feats", self.dim)  # raises the matching InputError
        f = f.to(torch.float64)
        if self.dim is None:
            self._alloc(int(f.shape[1]))
        self._sum += f.sum(dim=0).cpu().numpy()
        self._sum_outer += (f.T @ f).cpu().numpy()
        self.n += int(f.shape[0])
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add another accumulator's counts (e.g. from another rank or shard) into this one."""
        if other.n == 0:
            return self
        if self.dim is None:
            self._alloc(int(other.dim))
        if other.dim != self.dim:
            raise InputError(f"cannot merge feature stats of dimension {other.dim} into {self.dim}",
                             "use the same feature extractor for every shard")
        self._sum += other._sum
        self._sum_outer += other._sum_outer
        self.n += other.n
        return self

    def mean(self) -> np.ndarray:
        self._require(1)
        return self._sum / self.n

    def cov(self) -> np.ndarray:
        """Population covariance ΣxxᵀN⁻¹ − μμᵀ (MAT's convention), symmetrised."""
        self._require(2)
        mu = self.mean()
        c = self._sum_outer / self.n - np.outer(mu, mu)
        return 0.5 * (c + c.T)

    def _require(self, k: int) -> None:
        if self.n < k:
            raise InputError(f"feature statistics need at least {k} feature rows, have {self.n}",
                             "evaluate more images")

    def state_dict(self) -> dict[str, np.ndarray]:
        if self.dim is None:
            raise InputError("empty FeatureStats has no dimension to save", "update() it first")
        return {"n": np.asarray(self.n, dtype=np.int64), "sum": self._sum.copy(),
                "sum_outer": self._sum_outer.copy()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FeatureStats:
        def arr(v: Any) -> np.ndarray:
            if hasattr(v, "detach"):
                v = v.detach().cpu().numpy()
            return np.asarray(v)

        s = arr(state["sum"]).astype(np.float64)
        so = arr(state["sum_outer"]).astype(np.float64)
        if s.ndim != 1 or so.shape != (s.size, s.size):
            raise InputError(f"corrupt feature statistics: sum {s.shape}, sum_outer {so.shape}",
                             "delete the cached statistics and recompute them")
        out = cls(s.size)
        out._sum[:] = s
        out._sum_outer[:] = so
        out.n = int(arr(state["n"]))
        return out

    def __repr__(self) -> str:
        return f"FeatureStats(dim={self.dim}, n={self.n})"


# ----------------------------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------------------------
def frechet_distance_from_stats(*args: Any) -> float:
    """FID from moments: ``(mu1, sigma1, mu2, sigma2)`` arrays, or two :class:`FeatureStats`.

    Float64 throughout; tr(Σ₁Σ₂)^{1/2} as in the module docstring. The distance is returned as
    computed (a value within round-off of 0 can come out slightly negative).
    """
    if len(args) == 2 and all(isinstance(a, FeatureStats) for a in args):
        mu1, sigma1, mu2, sigma2 = args[0].mean(), args[0].cov(), args[1].mean(), args[1].cov()
    elif len(args) == 4:
        mu1, sigma1, mu2, sigma2 = (np.asarray(a, dtype=np.float64) for a in args)
    else:
        raise TypeError("frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) or (stats1, stats2)")
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
    return frechet_distance_from_stats(mu1, s1, mu2, s2)


def small_sample_warning(n: int, dim: int = 2048) -> str | None:
    """The caveat to print next to an FID/IDS computed from ``n`` < 2048 images, else None."""
    if n >= SMALL_N and n > dim:
        return None
    return (f"FID from N={n} images is biased upward (roughly ∝ 1/N) and not comparable with FIDs at "
            f"other N; with N <= {dim} the {dim}-d covariance is rank-deficient. Papers use N = 2,993 "
            "(CelebA-HQ) to 36,500 (Places); report N, prefer KID or FID∞ at small N, and read "
            "P-IDS/U-IDS as 0 when 2N <= ~2048 (the SVM separates anything).")


# ----------------------------------------------------------------------------------------------
# resampled FID and the bootstrap interval
# ----------------------------------------------------------------------------------------------
def _check_weights(w: Any, n: int, name: str) -> np.ndarray:
    w = np.asarray(w)
    if w.shape != (n,) or not np.issubdtype(w.dtype, np.integer) or (w < 0).any():
        raise InputError(f"{name}: expected {n} non-negative integer multiplicities, got shape {w.shape}, "
                         f"dtype {w.dtype}", "pass np.bincount(indices, minlength=N) of a resample")
    if int((w > 0).sum()) < 2:
        raise InputError(f"{name}: a resample needs at least 2 distinct rows", "draw a larger resample")
    return w


def _weighted_fid(real: np.ndarray, fake: np.ndarray, wr: np.ndarray, wf: np.ndarray, rows: bool) -> float:
    """FID of the resample with multiplicities ``wr``/``wf``, by the route chosen by the caller
    (``rows``: the N×N nuclear norm; else the d×d weighted moments). No validation (hot loop)."""
    if rows:
        return _fid_from_rows(*_scaled_centred_rows(real, wr), *_scaled_centred_rows(fake, wf))
    mu1, s1 = _moments(real, wr)
    mu2, s2 = _moments(fake, wf)
    return frechet_distance_from_stats(mu1, s1, mu2, s2)


def frechet_distance_weighted(real_feats: Any, fake_feats: Any, weights_real: Any,
                              weights_fake: Any | None = None) -> float:
    """FID of a bootstrap resample given as multiplicities (``np.bincount`` of the drawn indices).

    Equal (to round-off) to ``frechet_distance(real[idx], fake[idx])`` for the drawn ``idx``, without
    materialising the resample: the rows route weights the centred rows by √(wᵢ/W), the moments route
    accumulates weighted moments (module docstring). ``weights_fake=None`` reuses ``weights_real``
    (a paired resample: an inpainted image stays with its ground truth). This is the entry point
    :func:`fid_bootstrap_ci` and ``inpaintbench.analysis.stats.set_metric_bootstrap`` resample through.
    """
    real = _as_features(real_feats, "real_feats")
    fake = _as_features(fake_feats, "fake_feats", real.shape[1])
    wr = _check_weights(weights_real, len(real), "weights_real")
    wf = wr if weights_fake is None else _check_weights(weights_fake, len(fake), "weights_fake")
    if weights_fake is None and len(real) != len(fake):
        raise InputError(f"shared weights need index-matched sets, got {len(real)} real vs {len(fake)} fake",
                         "pass weights_fake for unrelated sets")
    return _weighted_fid(real, fake, wr, wf, _use_rows(len(real), len(fake), real.shape[1]))


class FIDBootstrapCI(NamedTuple):
    """``lo, hi`` first (``ci[0], ci[1]``); ``fid`` is the point estimate on the full sets."""

    lo: float
    hi: float
    fid: float
    boot_mean: float  # mean FID over resamples: > fid, the resampling bias (duplicated images)
    boot_std: float  # the bootstrap standard error the interval is built from
    n_boot: int
    alpha: float
    paired: bool
    method: str
    boot_below: float = float("nan")  # share of resamples <= fid: BC's Φ(z0), 0 in practice (see below)


#: Default resamples: enough for a standard error (coefficient of variation ≈ 1/√(2B) ≈ 5 %,
#: Efron & Tibshirani 1993, §6.4), which is all the normal interval needs.
FID_N_BOOT = 200


def fid_bootstrap_ci(real_feats: Any, fake_feats: Any, n_boot: int = FID_N_BOOT, alpha: float = 0.05,
                     seed: int = 0, paired: bool | None = None) -> FIDBootstrapCI:
    """Normal-approximation bootstrap interval for FID over images: ``fid ± z₁₋α/₂ · se_boot``.

    Method ("standard" interval, Efron & Tibshirani 1993, *An Introduction to the Bootstrap*, §12.2
    and §13.2, with the bootstrap estimate of the standard error, §6): draw ``n_boot`` resamples of
    the images with replacement (``paired=True``: the same indices for real and fake, which keeps an
    inpainted image with its ground truth; default: paired when both sets have the same length),
    compute FID_b of each through :func:`frechet_distance_weighted`, take se_boot = sd(FID_b)
    (ddof = 1), report ``fid ± Φ⁻¹(1 − alpha/2) · se_boot``.

    Why not a percentile-type interval (percentile, BC, or BCa of Efron 1987)? They all read the
    interval off the quantiles of FID_b, and FID_b is not centred anywhere near ``fid``: a resample
    repeats ~37 % of the images, fewer distinct images mean a larger finite-N bias, and that bias
    (∝ d/N) exceeds FID's sampling spread (∝ 1/√N). In our trials (``tests/test_fid.py``; ReLU
    features with N/d from 0.02 to 60, N = 48..4000) *no* resample out of 200-300 fell at or below
    the point estimate, so BC's bias correction z₀ = Φ⁻¹(#{FID_b ≤ fid}/B) is −∞ and BC/BCa are
    undefined; plain percentiles would sit entirely above ``fid``. The spread of FID_b is still
    informative, so we use it as a standard error, not its location. Measured against the spread of
    FID over independent samples, se_boot was ~0.9× the truth for N ≫ d and 1.5-3× it (a
    conservative, wider interval) for N ≲ d. ``boot_below`` reports the share of resamples at or
    below ``fid`` so this can be checked on real features. The interval describes the variation of
    FID at this N; it does not correct FID's own small-N bias (use :func:`fid_infinity` for that).

    Resamples: ``n_boot = 200`` (default) gives se_boot within ≈ ±5 % (CV ≈ 1/√(2B) for a normal
    statistic); 50 gives ±10 %. Cost per resample at d = 2048: with N < d one N×N product and SVD
    (milliseconds at N in the hundreds, ~0.1 s at N = 1000); with N ≥ d two weighted d×d
    covariances (≈ N·d² multiply-adds each) plus one FID from moments (a pivoted Cholesky, two d×d products
    and a symmetric eigensolve, ≈ 1-2 s), i.e. tens of seconds per resample at N = 36,500 on a
    2-core CPU (``benchmarks/bench_fid.py``).
    """
    from scipy.stats import norm

    if int(n_boot) < 2:
        raise InputError(f"n_boot must be >= 2, got {n_boot}", f"use e.g. n_boot={FID_N_BOOT}")
    if not 0.0 < float(alpha) < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha}", "use alpha=0.05 for a 95% interval")
    real = _as_features(real_feats, "real_feats")
    fake = _as_features(fake_feats, "fake_feats", real.shape[1])
    nr, nf = len(real), len(fake)
    if min(nr, nf) < 2:
        raise InputError(f"FID bootstrap needs at least 2 images per side, got {nr}/{nf}",
                         "evaluate more images")
    if paired is None:
        paired = nr == nf
    if paired and nr != nf:
        raise InputError(f"paired bootstrap needs index-matched sets, got {nr} real vs {nf} fake",
                         "pass paired=False for unrelated sets")
    point = frechet_distance(real, fake)
    rows_route = _use_rows(nr, nf, real.shape[1])
    if rows_route:  # small (N < d): convert once rather than in every resample
        real, fake = real.astype(np.float64), fake.astype(np.float64)
    rng = np.random.default_rng(seed)
    boots = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        wr = np.bincount(rng.integers(0, nr, nr), minlength=nr)
        wf = wr if paired else np.bincount(rng.integers(0, nf, nf), minlength=nf)
        boots[b] = _weighted_fid(real, fake, wr, wf, rows_route)
    se = float(boots.std(ddof=1))
    half = float(norm.ppf(1.0 - float(alpha) / 2.0)) * se
    kind = "paired" if paired else "independent"
    return FIDBootstrapCI(float(point - half), float(point + half), float(point), float(boots.mean()), se,
                          int(n_boot), float(alpha), bool(paired),
                          f"normal interval with bootstrap SE ({int(n_boot)} {kind} resamples)",
                          float(np.mean(boots <= point)))


# ----------------------------------------------------------------------------------------------
# FID∞ (Chong & Forsyth 2020)
# ----------------------------------------------------------------------------------------------
class FIDInfinity(NamedTuple):
    """``fid_inf`` first (``res[0]``); the fitted line is ``FID(N) ≈ fid_inf + slope / N``."""

    fid_inf: float
    slope: float
    ns: list[int]
    fids: list[float]
    r2: float
    subsample: str


def fid_infinity(real_feats: Any, fake_feats: Any, num_points: int = 15, min_n: int | None = None,
                 seed: int = 0, subsample: Literal["auto", "fake", "both"] = "auto") -> FIDInfinity:
    """FID∞: FID at ``num_points`` subset sizes N (evenly spaced from ``min_n`` to all images),
    least-squares line FID = a + b/N, FID∞ = a (Chong & Forsyth, CVPR 2020, §3).

    ``subsample="fake"`` is the paper's protocol: fake subsets drawn without replacement, the real
    statistics from the whole (there: large) reference set; the real side's own finite-N bias stays
    in the intercept. ``"both"`` draws the same indices from both sets (index-matched inpainting
    sets of equal size, where the real set is just as finite) and extrapolates both; on Gaussian
    features with a known distance it recovered the true value where ``"fake"`` stayed ~10 % high.
    ``"auto"``: ``"both"`` when the sets have equal length, else ``"fake"``.

    ``min_n`` defaults to ``max(N // 5, min(D, N // 2))``: the paper spans 5k..50k (a factor 10)
    with D = 2048 features, i.e. always N > D; below D the covariance is rank-deficient and FID
    no longer follows a/N + b closely (extrapolations from N < D were badly off in our trials).
    One seeded subset per N, as in the paper. Cost: one FID per point (``"fake"`` projects the
    fakes once and then costs n·r² per point).
    """
    real = _as_features(real_feats, "real_feats")
    fake = _as_features(fake_feats, "fake_feats", real.shape[1])
    nr, nf = len(real), len(fake)
    if subsample == "auto":
        subsample = "both" if nr == nf else "fake"
    if subsample not in ("fake", "both"):
        raise InputError(f"unknown subsample mode {subsample!r}", "use 'auto', 'fake' or 'both'")
    if subsample == "both" and nr != nf:
        raise InputError(f"subsample='both' needs index-matched sets, got {nr} real vs {nf} fake",
                         "use subsample='fake'")
    if int(num_points) < 2:
        raise InputError(f"num_points must be >= 2, got {num_points}", "use e.g. num_points=15")
    lo = max(nf // 5, min(real.shape[1], nf // 2), 2) if min_n is None else int(min_n)
    if not 2 <= lo < nf:
        raise InputError(f"FID∞ needs 2 <= min_n < N, got min_n={lo}, N={nf}",
                         "evaluate more images or lower min_n")
    ns = sorted({int(round(v)) for v in np.linspace(lo, nf, int(num_points))})
    if len(ns) < 2:
        raise InputError(f"only {len(ns)} distinct subset size(s) between {lo} and {nf}",
                         "lower min_n or num_points")
    rng = np.random.default_rng(seed)
    fids: list[float] = []
    if subsample == "fake":
        mu_r, s_r = _moments(real)
        u = _sqrt_factor(s_r)  # Σ_r = UUᵀ, d×r
        tr_r = float(np.trace(s_r))
        # UᵀΣ_fU is the covariance of the projected rows z = xU: project once (N·d·r flops), then
        # each subset costs n·r² instead of n·d² + 2d³.
        z = np.concatenate([c @ u for c in _row_chunks(fake)]) if u.shape[1] else np.zeros((nf, 0))
        for n in ns:
            idx = np.sort(rng.choice(nf, n, replace=False))
            mu_f, tr_f = _mean_trace_cov(fake[idx])
            diff = mu_r - mu_f
            tr_root = _sum_sqrt_eigvals(_moments(z[idx])[1]) if u.shape[1] else 0.0
            fids.append(float(diff @ diff + tr_r + tr_f - 2.0 * tr_root))
    else:
        for n in ns:
            idx = np.sort(rng.choice(nf, n, replace=False))
            fids.append(frechet_distance(real[idx], fake[idx]))
    x = 1.0 / np.asarray(ns, dtype=np.float64)
    y = np.asarray(fids)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return FIDInfinity(float(intercept), float(slope), ns, fids, r2, subsample)

