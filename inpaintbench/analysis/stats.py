"""Statistics for comparing runs: bootstrap CIs, paired tests, Holm correction, correlations with CIs,
and a paired bootstrap over images of FID/KID/IDS from saved features, computed by the same
functions as the runner (``inpaintbench.metrics``), with the project's one bootstrap p-value
(:func:`inpaintbench.metrics.bootstrap.bootstrap_p_value`).

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


# --- means and paired differences -----------------------------------------------------------------
def mean_with_ci(
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
            # scipy's own Fisher-z interval (equal to our fisher_z_ci, tested); undefined for n <= 3
            ci = res.confidence_interval(confidence_level=1 - alpha) if n > 3 else None
            lo, hi = (float(ci.low), float(ci.high)) if ci is not None else (nan, nan)
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
# Every value here, point and resample, comes from inpaintbench.metrics (fid.py, kid.py, ids.py), the
# code behind summary.json, so compare's values are the leaderboard's. Argument order: this module
# takes (fake, real) like the rest of analysis; inpaintbench.metrics takes (real, fake).
@dataclass(frozen=True)
class KIDSettings:
    """How a run computed KID: torch-fidelity subsets (``subsets`` × ``subset_size`` rows) and the
    seed of their draws. The runner records ``subsets``/``subset_size`` in summary
    ``set_metrics.kid.extra`` and the seed in the manifest (``metrics/suite.py``)."""

    subsets: int = 100
    subset_size: int = 1000
    seed: int = 0


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
    ci_method: str = "percentile"


def _kid_point(fake: np.ndarray, real: np.ndarray, k: KIDSettings) -> float:
    from inpaintbench.metrics.kid import kernel_inception_distance

    size = min(k.subset_size, fake.shape[0])  # as the runner: subset_size=min(1000, n)
    return kernel_inception_distance(real, fake, subsets=k.subsets, subset_size=size, seed=k.seed)[0]


def _ids(fake: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning

    from inpaintbench.metrics.ids import inception_discriminative_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)  # liblinear at large N, as MAT
        return inception_discriminative_scores(real, fake)


def set_metric_bootstrap(
    metric: str,
    fake_a: np.ndarray,
    real_a: np.ndarray,
    fake_b: np.ndarray,
    real_b: np.ndarray,
    n_boot: int = 200,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    kid_a: KIDSettings | None = None,
    kid_b: KIDSettings | None = None,
    features: str = "inception",
) -> SetDiff:
    """Paired bootstrap over images of ``metric(A) - metric(B)`` for fid, kid, p_ids, u_ids and the
    issue-12 set metrics (fd_dinov2, cmmd, precision/recall/density/coverage and their ``_dinov2``
    twins). Pass the features of the metric's space (``inpaintbench.metrics.info.feature_space``:
    Inception for fid/kid/ids/prdc, DINOv2 for fd_dinov2 and ``*_dinov2``, CLIP for cmmd).

    fd_dinov2 is FID's computation on DINOv2 features; cmmd and PRDC resample through
    :func:`inpaintbench.metrics.set_resampling.resampler` (the code behind their CIs in the run).
    ``features`` names the space of the arrays passed; a metric of another space is refused rather
    than computed on the wrong features (callers that only load Inception features stay safe).

    Point values are exactly what the runner writes to summary.json for these features:
    ``frechet_distance(real, fake)``, ``kernel_inception_distance(real, fake, subsets,
    min(subset_size, n), seed)`` with each run's :class:`KIDSettings` (``kid_a``/``kid_b``; default:
    the runner's defaults, seed 0), ``inception_discriminative_scores(real, fake)`` (sklearn, MAT's
    LinearSVC). Each resample draws the same image indices for both runs and their ground truths
    and recomputes the metric of the resampled set with the same code: FID from the resampling
    multiplicities (:func:`~inpaintbench.metrics.fid.frechet_distance_weighted`), KID with the same
    subset estimator on the resampled rows (:class:`~inpaintbench.metrics.kid.ResampledKID`; the
    subset draws are fresh per resample, common to A and B when their settings are equal), IDS by
    refitting the SVM on the resampled rows (slow at large N: keep ``n_boot`` small there).

    The interval is the percentile interval of the resampled differences and the p-value
    :func:`inpaintbench.metrics.bootstrap.bootstrap_p_value`, the project's one convention. Resampling
    inflates each run's FID/KID by a duplicate-image bias (see ``fid_bootstrap_ci``), but both runs
    get the same resample, so it is shared and largely cancels in the difference; the percentile
    interval of the difference is therefore kept (it is consistent with that p-value, which reads
    the same distribution at zero).
    """
    from inpaintbench.metrics.fid import frechet_distance, frechet_distance_weighted
    from inpaintbench.metrics.info import feature_files, feature_space
    from inpaintbench.metrics.kid import ResampledKID
    from inpaintbench.metrics.set_resampling import prdc_base_name, resampler

    space = feature_space(metric)
    if space is not None and space != features:
        kf, kr = feature_files(space)
        raise ValueError(f"{metric} is computed on {space} features (features/{kf}.npy, {kr}.npy), "
                         f"not on the {features} features passed")
    fake_a, real_a, fake_b, real_b = (np.asarray(x, np.float64) for x in (fake_a, real_a, fake_b, real_b))
    n = fake_a.shape[0]
    if not all(x.shape[0] == n for x in (real_a, fake_b, real_b)):
        raise ValueError("set_metric_bootstrap needs four index-aligned feature arrays of equal length")
    rng = np.random.default_rng(seed)
    point: Callable[[], tuple[float, float]]
    resampled: Callable[[np.ndarray, int], tuple[float, float]]
    if metric in ("fid", "fd_dinov2"):

        def point() -> tuple[float, float]:
            return frechet_distance(real_a, fake_a), frechet_distance(real_b, fake_b)

        def resampled(idx: np.ndarray, _: int) -> tuple[float, float]:
            w = np.bincount(idx, minlength=n)
            return frechet_distance_weighted(real_a, fake_a, w), frechet_distance_weighted(real_b, fake_b, w)
    elif metric == "kid":
        ka, kb = kid_a or KIDSettings(), kid_b or KIDSettings()
        ra = ResampledKID(real_a, fake_a, ka.subsets, min(ka.subset_size, n))
        rb = ResampledKID(real_b, fake_b, kb.subsets, min(kb.subset_size, n))

        def point() -> tuple[float, float]:
            return _kid_point(fake_a, real_a, ka), _kid_point(fake_b, real_b, kb)

        def resampled(idx: np.ndarray, subset_seed: int) -> tuple[float, float]:
            # Same settings: common subset draws for A and B (as their point values share them), so
            # the subset noise cancels in both. Different seeds or sizes: independent draws, so the
            # resampled difference carries the subset noise the point difference carries.
            seed_b = subset_seed if ka == kb else (subset_seed + 1) % 2**32
            return ra(idx, subset_seed)[0], rb(idx, seed_b)[0]
    elif metric in ("p_ids", "u_ids"):
        which = 0 if metric == "p_ids" else 1

        def point() -> tuple[float, float]:
            return _ids(fake_a, real_a)[which], _ids(fake_b, real_b)[which]

        def resampled(idx: np.ndarray, _: int) -> tuple[float, float]:
            return _ids(fake_a[idx], real_a[idx])[which], _ids(fake_b[idx], real_b[idx])[which]
    elif metric == "cmmd" or prdc_base_name(metric):
        # fake and real swap roles freely here (CMMD is symmetric; PRDC takes (real, fake))
        pa, ra_ = resampler(metric, real_a, fake_a)
        pb, rb_ = resampler(metric, real_b, fake_b)

        def point() -> tuple[float, float]:
            return pa(), pb()

        def resampled(idx: np.ndarray, _: int) -> tuple[float, float]:
            return ra_(idx), rb_(idx)
    else:
        raise ValueError(f"no feature bootstrap for metric {metric!r}")
    va, vb = point()
    boot = np.empty(n_boot)
    for k in range(n_boot):
        idx = rng.integers(0, n, size=n)
        subset_seed = int(rng.integers(0, 2**32))  # KID subset draws of this resample (RandomState seed)
        a, b = resampled(idx, subset_seed)
        boot[k] = a - b
    lo, hi = _percentile_ci(boot, alpha)
    return SetDiff(metric, va, vb, va - vb, lo, hi, _mb.bootstrap_p_value(boot), n, n_boot,
                   f"percentile ({n_boot} paired resamples)")


#: Set-level metrics the feature bootstrap supports on Inception features (features/fake.npy, real.npy).
BOOTSTRAP_SET_METRICS: tuple[str, ...] = ("fid", "kid", "p_ids", "u_ids", "precision", "recall", "density",
                                          "coverage")
#: ... and on the DINOv2 / CLIP features (features/<space>_fake.npy, <space>_real.npy; pass
#: ``features=inpaintbench.metrics.info.feature_space(metric)``).
EMBEDDING_BOOTSTRAP_SET_METRICS: tuple[str, ...] = ("fd_dinov2", "cmmd", "precision_dinov2", "recall_dinov2",
                                                    "density_dinov2", "coverage_dinov2")
