"""Statistics for comparing runs: bootstrap CIs, paired tests, Holm correction, correlations with CIs,
and FID/KID/IDS recomputed from saved features so that they too can be bootstrapped over images.

Everything is seeded; everything takes the finite values only and reports how many it excluded,
because a perfect prediction has PSNR = +inf and a failed sample has NaN metrics.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from inpaintbench.metrics import bootstrap as _mb

DEFAULT_ALPHA = 0.05
_CHUNK_ELEMENTS = 2_000_000  # elements per block of the O(n^2) Kendall bootstrap


# --- helpers --------------------------------------------------------------------------------------
def finite(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(finite values as float64, number of non-finite values excluded)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(v)
    return v[keep], int(v.size - keep.sum())


def finite_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs where both values are finite, and how many pairs were excluded."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {a.size} vs {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep], int(a.size - keep.sum())


def _percentile_ci(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided bootstrap p-value for 'difference = 0': twice the smaller tail mass at zero."""
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return math.nan
    p = 2 * min(np.mean(boot <= 0), np.mean(boot >= 0))
    return float(min(1.0, p))


# --- means and paired differences -----------------------------------------------------------------
def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 1000, alpha: float = DEFAULT_ALPHA, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap CI of the finite values (NaN triple when there are none).

    Delegates to :mod:`inpaintbench.metrics.bootstrap`, the implementation behind ``summary.json``,
    so a recomputed mean/CI equals the runner's for the same seed.
    """
    r = _mb.bootstrap_mean_ci(np.asarray(values, np.float64).ravel(), n_boot=n_boot, alpha=alpha, seed=seed)
    return r.mean, r.lo, r.hi


def paired_bootstrap_diff_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, alpha: float = DEFAULT_ALPHA, seed: int = 0
) -> tuple[float, float, float, float]:
    """Mean of ``a - b`` over finite pairs, its percentile-bootstrap CI, and a bootstrap p-value.

    Resampling pairs (not the two arrays independently) keeps the per-image pairing, which is what
    makes small differences between two models on the same images detectable. Delegates to
    :func:`inpaintbench.metrics.bootstrap.paired_bootstrap_diff_ci`.
    """
    r = _mb.paired_bootstrap_diff_ci(
        np.asarray(a, np.float64).ravel(),
        np.asarray(b, np.float64).ravel(),
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
    )
    return r.mean, r.lo, r.hi, r.p_value


def wilcoxon_signed_rank(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Wilcoxon signed-rank test of ``a - b`` over finite pairs: (statistic, two-sided p).

    All-zero differences give p = 1 (scipy refuses them); fewer than one pair gives NaN.
    """
    a, b, _ = finite_pairs(a, b)
    d = a - b
    if d.size == 0:
        return math.nan, math.nan
    if np.all(d == 0):
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # small-n / ties notes
        res = sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; NaN entries stay NaN and do not count as tests."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# --- correlations ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Correlation:
    method: str
    r: float
    ci_low: float
    ci_high: float
    p: float
    n: int
    n_excluded: int
    ci_method: str


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r of two (k, n) arrays (NaN for constant rows)."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=1) / den


def _kendall_tau_b_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of two (k, n) arrays, by the O(n^2) sign-matrix definition.

    tau_b = sum(sx * sy) / sqrt(sum|sx| * sum|sy|) with sx = sign(x_i - x_j) over all i != j
    (counting each pair twice leaves the ratio unchanged); ties contribute 0 as in scipy.
    """
    sx = np.sign(x[:, :, None] - x[:, None, :])
    sy = np.sign(y[:, :, None] - y[:, None, :])
    num = (sx * sy).sum(axis=(1, 2))
    den = np.sqrt(np.abs(sx).sum(axis=(1, 2)) * np.abs(sy).sum(axis=(1, 2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _kendall_bootstrap(x: np.ndarray, y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Kendall tau-b of ``n_boot`` paired resamples: vectorised for small n, scipy's O(n log n) beyond."""
    n = x.size
    if n <= 150:  # measured crossover with scipy's per-call cost (~0.5 ms)
        per = max(1, _CHUNK_ELEMENTS // (n * n))
        out = []
        done = 0
        while done < n_boot:
            k = min(per, n_boot - done)
            idx = rng.integers(0, n, size=(k, n))
            out.append(_kendall_tau_b_rows(x[idx], y[idx]))
            done += k
        return np.concatenate(out)
    boot = np.empty(n_boot)
    for k in range(n_boot):
        idx = rng.integers(0, n, size=n)
        boot[k] = sps.kendalltau(x[idx], y[idx]).statistic
    return boot


def fisher_z_ci(r: float, n: int, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """CI of a Pearson r by Fisher's z transform, se = 1/sqrt(n-3) (Fisher 1921)."""
    if n <= 3 or not math.isfinite(r):
        return math.nan, math.nan
    if abs(r) >= 1:
        return r, r
    z = math.atanh(r)
    half = sps.norm.ppf(1 - alpha / 2) / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def correlation(
    x: np.ndarray,
    y: np.ndarray,
    method: str,
    n_boot: int = 1000,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Correlation:
    """Pearson (Fisher-z CI), Spearman or Kendall tau-b (percentile-bootstrap CIs) over finite pairs."""
    x, y, excluded = finite_pairs(x, y)
    n = int(x.size)
    nan = math.nan
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(method, nan, nan, nan, nan, n, excluded, "none (too few or constant values)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "pearson":
            res = sps.pearsonr(x, y)
            r, p = float(res.statistic), float(res.pvalue)
            lo, hi = fisher_z_ci(r, n, alpha)
            return Correlation(method, r, lo, hi, p, n, excluded, "Fisher z")
        rng = np.random.default_rng(seed)
        if method == "spearman":
            res = sps.spearmanr(x, y)
            r, p = float(res.statistic), float(res.pvalue)
            boot = np.concatenate(
                [
                    _pearson_rows(sps.rankdata(x[idx], axis=1), sps.rankdata(y[idx], axis=1))
                    for idx in _mb.bootstrap_indices(n, n_boot, rng)
                ]
            )
        elif method == "kendall":
            res = sps.kendalltau(x, y)
            r, p = float(res.statistic), float(res.pvalue)
            boot = _kendall_bootstrap(x, y, n_boot, rng)
        else:
            raise ValueError(f"unknown correlation method {method!r}")
    lo, hi = _percentile_ci(np.asarray(boot, dtype=np.float64), alpha)
    return Correlation(method, r, lo, hi, p, n, excluded, f"bootstrap ({n_boot})")


# --- set-level metrics from features ----------------------------------------------------------------
def _weighted_factor(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, A, W) with A^T A / W the weighted population covariance of the rows of x."""
    if w is None:
        mu = x.mean(axis=0)
        return mu, x - mu, float(x.shape[0])
    keep = w > 0
    xk, wk = x[keep], w[keep].astype(np.float64)
    total = float(wk.sum())
    mu = (wk[:, None] * xk).sum(axis=0) / total
    return mu, np.sqrt(wk)[:, None] * (xk - mu), total


def _nuclear_norm_of_product(a: np.ndarray, b: np.ndarray) -> float:
    """||a b^T||_* without forming d x d matrices: reduce each factor by QR when it is tall."""
    if a.shape[0] > a.shape[1]:
        a = np.linalg.qr(a, mode="r")
    if b.shape[0] > b.shape[1]:
        b = np.linalg.qr(b, mode="r")
    return float(np.linalg.svd(a @ b.T, compute_uv=False).sum())


def fid_from_features(fake: np.ndarray, real: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Frechet distance with population covariances (the MAT/StyleGAN2-ADA convention).

    tr((S1 S2)^1/2) is computed as ||A1 A2^T||_* / sqrt(W1 W2) where S = A^T A / W: the non-zero
    eigenvalues of S1 S2 are the squared singular values of that product, so no matrix square root
    of a singular 2048 x 2048 matrix is needed (exact in float64, and fast when N < D).
    ``weights`` are bootstrap multiplicities shared by both sets.
    """
    mu1, a1, w1 = _weighted_factor(np.asarray(fake, np.float64), weights)
    mu2, a2, w2 = _weighted_factor(np.asarray(real, np.float64), weights)
    tr1 = float((a1 * a1).sum()) / w1
    tr2 = float((a2 * a2).sum()) / w2
    tr_sqrt = _nuclear_norm_of_product(a1, a2) / math.sqrt(w1 * w2)
    return float(((mu1 - mu2) ** 2).sum() + tr1 + tr2 - 2 * tr_sqrt)


def poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cubic polynomial kernel (x.y/d + 1)^3 of KID (Binkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_from_kernels(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, w: np.ndarray) -> float:
    """Unbiased MMD^2 of a resample with multiplicities w (w = 1 gives the usual estimator)."""
    m = float(w.sum())
    sxx = w @ kxx @ w - (w * np.diag(kxx)).sum()
    syy = w @ kyy @ w - (w * np.diag(kyy)).sum()
    sxy = w @ kxy @ w
    return float(sxx / (m * (m - 1)) + syy / (m * (m - 1)) - 2 * sxy / (m * m))


def kid_from_features(fake: np.ndarray, real: np.ndarray) -> float:
    """KID as the unbiased MMD^2 over all pairs (the expectation of torch-fidelity's subset mean)."""
    fake = np.asarray(fake, np.float64)
    real = np.asarray(real, np.float64)
    w = np.ones(fake.shape[0])
    return _mmd2_from_kernels(poly_kernel(fake, fake), poly_kernel(real, real), poly_kernel(fake, real), w)


def ids_from_features(fake: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """(P-IDS, U-IDS) as CoModGAN/MAT define them: a linear SVM real-vs-fake on all features.

    U-IDS is the SVM's misclassification rate on its own training data; P-IDS the share of aligned
    pairs where the fake scores as more real than its ground truth (Zhao et al. 2021, CoModGAN).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    fake = np.asarray(fake, np.float64)
    real = np.asarray(real, np.float64)
    x = np.concatenate([real, fake])
    y = np.concatenate([np.ones(len(real)), np.zeros(len(fake))])
    svm = LinearSVC(dual=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        svm.fit(x, y)
    u_ids = 1.0 - float(svm.score(x, y))
    p_ids = float(np.mean(svm.decision_function(fake) > svm.decision_function(real)))
    return p_ids, u_ids


class _GramFid:
    """FID of many bootstrap resamples of (fake, real) pairs, fast when N <= D.

    With the cross Gram matrix G = X1 X2^T computed once, each resample needs only an N' x N'
    matrix (N' = distinct images drawn), never a D x D one:
    A1 A2^T = D_w (X1 - mu1)(X2 - mu2)^T D_w, expanded through G and two mat-vec products.
    """

    def __init__(self, fake: np.ndarray, real: np.ndarray):
        self.x1 = np.asarray(fake, np.float64)
        self.x2 = np.asarray(real, np.float64)
        self.g12 = self.x1 @ self.x2.T
        self.n1 = np.einsum("ij,ij->i", self.x1, self.x1)
        self.n2 = np.einsum("ij,ij->i", self.x2, self.x2)

    def __call__(self, w: np.ndarray | None = None) -> float:
        n = self.x1.shape[0]
        w = np.ones(n) if w is None else np.asarray(w, np.float64)
        keep = np.flatnonzero(w > 0)
        wk = w[keep]
        total = float(wk.sum())
        mu1 = wk @ self.x1[keep] / total
        mu2 = wk @ self.x2[keep] / total
        tr1 = float(wk @ self.n1[keep]) / total - float(mu1 @ mu1)
        tr2 = float(wk @ self.n2[keep]) / total - float(mu2 @ mu2)
        c = (
            self.g12[np.ix_(keep, keep)]
            - (self.x1[keep] @ mu2)[:, None]
            - (self.x2[keep] @ mu1)[None, :]
            + float(mu1 @ mu2)
        )
        sw = np.sqrt(wk)
        m = sw[:, None] * c * sw[None, :]
        eig = np.linalg.eigvalsh(m @ m.T)
        tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum()) / total
        return float(((mu1 - mu2) ** 2).sum() + tr1 + tr2 - 2 * tr_sqrt)


def _fid_evaluator(fake: np.ndarray, real: np.ndarray) -> Callable[[np.ndarray | None], float]:
    if fake.shape[0] <= fake.shape[1]:
        return _GramFid(fake, real)
    return lambda w: fid_from_features(fake, real, w)


@dataclass(frozen=True)
class SetDiff:
    """A set-level metric of two runs on the same samples and the bootstrap of their difference."""

    metric: str
    value_a: float
    value_b: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    n: int
    n_boot: int


def set_metric_bootstrap(
    metric: str,
    fake_a: np.ndarray,
    real_a: np.ndarray,
    fake_b: np.ndarray,
    real_b: np.ndarray,
    n_boot: int = 200,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    kid_max_samples: int = 2000,
) -> SetDiff:
    """Paired bootstrap over images of ``metric(A) - metric(B)`` for fid, kid, p_ids or u_ids.

    Each resample draws the same image indices for both runs (and their ground truths), so the CI
    is for the difference on this image set. KID uses precomputed kernel matrices and is limited
    to a seeded random subset of ``kid_max_samples`` images (memory is quadratic in N). IDS refits
    a linear SVM per resample, which is slow for large N: keep ``n_boot`` small there.
    """
    n = fake_a.shape[0]
    rng = np.random.default_rng(seed)
    value: Callable[[np.ndarray | None], tuple[float, float]]
    if metric == "fid":
        fa, fb = _fid_evaluator(fake_a, real_a), _fid_evaluator(fake_b, real_b)

        def value(w: np.ndarray | None) -> tuple[float, float]:
            return fa(w), fb(w)
    elif metric == "kid":
        if n > kid_max_samples:
            keep = np.sort(rng.choice(n, size=kid_max_samples, replace=False))
            fake_a, real_a, fake_b, real_b = fake_a[keep], real_a[keep], fake_b[keep], real_b[keep]
            n = kid_max_samples
        ka = (poly_kernel(fake_a, fake_a), poly_kernel(real_a, real_a), poly_kernel(fake_a, real_a))
        kb = (poly_kernel(fake_b, fake_b), poly_kernel(real_b, real_b), poly_kernel(fake_b, real_b))

        def value(w: np.ndarray | None) -> tuple[float, float]:
            w = np.ones(n) if w is None else w.astype(np.float64)
            return _mmd2_from_kernels(*ka, w), _mmd2_from_kernels(*kb, w)
    elif metric in ("p_ids", "u_ids"):
        which = 0 if metric == "p_ids" else 1

        def value(w: np.ndarray | None) -> tuple[float, float]:
            idx = np.arange(n) if w is None else np.repeat(np.arange(n), w)
            return (
                ids_from_features(fake_a[idx], real_a[idx])[which],
                ids_from_features(fake_b[idx], real_b[idx])[which],
            )
    else:
        raise ValueError(f"no feature bootstrap for metric {metric!r}")
    va, vb = value(None)
    boot = np.empty(n_boot)
    for k in range(n_boot):
        w = np.bincount(rng.integers(0, n, size=n), minlength=n)
        a, b = value(w)
        boot[k] = a - b
    lo, hi = _percentile_ci(boot, alpha)
    return SetDiff(metric, va, vb, va - vb, lo, hi, _bootstrap_p(boot), n, n_boot)


#: Set-level metrics the feature bootstrap supports.
BOOTSTRAP_SET_METRICS: tuple[str, ...] = ("fid", "kid", "p_ids", "u_ids")
