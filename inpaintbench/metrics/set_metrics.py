"""Set-level metrics from feature arrays: FID, FID∞, KID, P-/U-IDS, PRDC, FD-DINOv2 and CMMD.

Pure functions of the features and the settings that shape each metric (seed, bootstrap counts,
KID subsets, IDS backend). :class:`~inpaintbench.metrics.suite.MetricSuite` accumulates the
features over its one batched pass and calls these; nothing here holds state between calls, so a
number computed here from saved features equals the one in the run's ``summary.json``.

A metric that cannot be computed (too few images, a degenerate covariance, FID∞ on a small run) is
returned as a :class:`SetMetricResult` with ``status="unavailable"`` and the reason, never raised.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.metrics.fid import FID_N_BOOT
from inpaintbench.metrics.info import METRICS, SET_METRICS
from inpaintbench.metrics.set_resampling import prdc_base_name

if TYPE_CHECKING:
    from inpaintbench.metrics.feature_cache import CachedFeatures

#: FID bootstrap resamples when N >= d (each is a d×d eigendecomposition; see ``fid_n_boot``)
FID_N_BOOT_LARGE = 50


@dataclass
class SetMetricResult:
    """A set-level metric: value with an optional CI, the N it was computed on, and why not if not."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    status: str = "ok"
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SetMetricSettings:
    """What the set metrics depend on besides the features (the suite's constructor arguments).

    ``metrics`` is the full selection: PRDC's bootstrap resamples every PRDC metric of a feature
    space together, so it needs to know which of them were asked for. ``device`` is where the
    torch IDS backend runs.
    """

    metrics: Sequence[str]
    seed: int = 0
    fid_n_boot: int | None = None
    set_n_boot: int | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    ids_backend: str | None = None
    device: Any = "cpu"


def unavailable(e: Exception) -> str:
    """The ``"unavailable: <reason> (fix: ...)"`` status text of an error."""
    msg = getattr(e, "message", None) or str(e)
    fix = getattr(e, "fix", None)
    return f"unavailable: {msg}" + (f" (fix: {fix})" if fix else "")


def reals_for(fake: np.ndarray, real: np.ndarray | None, ids: Sequence[str] | None,
              reference: CachedFeatures | None) -> tuple[np.ndarray | None, str | None]:
    """The real features matching the rows of ``fake``: ``real`` itself, or the cached reference
    set's rows for ``ids``; ``(None, reason)`` when there are none."""
    if real is not None:
        if real.shape != fake.shape:
            return None, f"real features {real.shape} do not match fake {fake.shape}"
        return np.asarray(real, dtype=np.float32), None
    if reference is None:
        return None, "no real-image features (neither extracted nor cached)"
    if ids is None:
        return None, "cached reference features need the image ids of the fakes"
    try:
        return reference.rows_for(ids), None
    except KeyError as e:
        return None, str(e.args[0])


def inception_set_metrics(names: Sequence[str], real: np.ndarray, fake: np.ndarray, settings: SetMetricSettings,
                          extractor_name: str) -> dict[str, SetMetricResult]:
    """The Inception-feature metrics ``names`` of one run (the rows of ``real`` and ``fake`` are the
    same images); a metric that fails is reported unavailable with the error."""
    n = int(len(fake))
    out: dict[str, SetMetricResult] = {}
    memo: dict[str, Any] = {}  # P-IDS and U-IDS share one SVM fit
    for name in names:
        try:
            out[name] = inception_set_metric(name, real, fake, memo, settings, extractor_name)
        except InputError as e:  # e.g. FID∞ needs more images than the run has
            out[name] = SetMetricResult(None, n=n, status="unavailable", reason=unavailable(e))
        except (ValueError, np.linalg.LinAlgError) as e:
            out[name] = SetMetricResult(None, n=n, status="unavailable",
                                        reason=f"unavailable: {type(e).__name__}: {e}")
    return out


def inception_set_metric(name: str, real: np.ndarray, fake: np.ndarray, memo: dict[str, Any],
                         settings: SetMetricSettings, extractor_name: str) -> SetMetricResult:
    """One Inception-feature metric; ``memo`` shares work between metrics of the same call (IDS, PRDC)."""
    from inpaintbench.metrics import fid as fidm

    n = int(len(fake))
    extra: dict[str, Any] = {"extractor": extractor_name}
    warning = fidm.small_sample_warning(n, dim=int(real.shape[1]))
    if warning:
        extra["warning"] = warning
    if name == "fid":
        # All features are kept anyway (KID, IDS, bootstrap): centred float64 moments from the
        # arrays are more accurate than raw running sums (Σxxᵀ/N − μμᵀ cancels).
        value = float(fidm.frechet_distance(real, fake))
        lo = hi = None
        n_boot = settings.fid_n_boot
        if n_boot is None:
            n_boot = FID_N_BOOT if n < int(real.shape[1]) else FID_N_BOOT_LARGE
        if n_boot > 0:
            ci = fidm.fid_bootstrap_ci(real, fake, n_boot=n_boot, seed=settings.seed)
            lo, hi = float(ci.lo), float(ci.hi)
            extra.update(n_boot=ci.n_boot, boot_std=float(ci.boot_std), ci_method=ci.method,
                         paired=bool(ci.paired))
        return SetMetricResult(value, lo, hi, n, extra=extra)
    if name == "fid_inf":
        res = fidm.fid_infinity(real, fake, seed=settings.seed)
        extra.update(slope=float(res.slope), ns=list(res.ns), fids=list(res.fids), r2=float(res.r2),
                     subsample=res.subsample)
        if min(res.ns) <= int(real.shape[1]):
            extra["warning"] = (f"FID∞ extrapolated from subsets of {min(res.ns)}..{max(res.ns)} images, at or "
                                f"below the {int(real.shape[1])} feature dimensions, where FID does not follow "
                                "a + b/N closely: treat it as indicative only")
        return SetMetricResult(float(res.fid_inf), n=n, extra=extra)
    if name == "kid":
        from inpaintbench.metrics.kid import kernel_inception_distance

        size = min(settings.kid_subset_size, n)
        mean, std = kernel_inception_distance(real, fake, subsets=settings.kid_subsets, subset_size=size,
                                              seed=settings.seed)
        extra.update(std=float(std), subsets=settings.kid_subsets, subset_size=size)
        return SetMetricResult(float(mean), n=n, extra=extra)
    if name in ("p_ids", "u_ids"):
        if "ids" not in memo:
            memo["ids"] = ids_scores(real, fake, settings.ids_backend, settings.device)
        p_ids, u_ids = memo["ids"]
        return SetMetricResult(float(p_ids if name == "p_ids" else u_ids), n=n, extra=extra)
    if prdc_base_name(name):
        return prdc_result(name, real, fake, memo, extra, settings)
    raise AssertionError(name)


def prdc_result(name: str, real: np.ndarray, fake: np.ndarray, memo: dict[str, Any],
                extra: dict[str, Any], settings: SetMetricSettings) -> SetMetricResult:
    """PRDC (k = 5) with FID's kind of CI; the four metrics of a space share one computation."""
    from inpaintbench.metrics.prdc import prdc
    from inpaintbench.metrics.set_resampling import normal_bootstrap_cis

    space = METRICS[name].features
    key = f"prdc:{space}"
    extra = {k: v for k, v in extra.items() if k != "warning"}  # the FID-specific small-N note
    extra["k"] = 5
    if settings.set_n_boot == 0:
        if key not in memo:
            memo[key] = prdc(real, fake)
        return SetMetricResult(memo[key][prdc_base_name(name)], n=int(len(fake)), extra=extra)
    if key not in memo:
        wanted = [m for m in settings.metrics if prdc_base_name(m) and METRICS[m].features == space]
        memo[key] = normal_bootstrap_cis(wanted, real, fake, n_boot=settings.set_n_boot, seed=settings.seed)
    ci = memo[key][name]
    extra.update(n_boot=ci.n_boot, boot_std=ci.boot_std, ci_method=ci.method, paired=True)
    return SetMetricResult(ci.value, ci.lo, ci.hi, int(len(fake)), extra=extra)


def embedding_metrics(embeddings: Mapping[str, tuple[np.ndarray, np.ndarray]], settings: SetMetricSettings,
                      status: Mapping[str, str], embedders: Mapping[str, Any]) -> dict[str, SetMetricResult]:
    """FD-DINOv2, PRDC-DINOv2 and CMMD from the DINOv2/CLIP features ``{space: (fake, real)}``.

    ``status`` is the suite's per-metric status (a metric not ``"ok"`` is reported with it);
    ``embedders`` maps each feature space to its extractor, whose ``name`` is recorded.
    """
    from inpaintbench.metrics import fid as fidm
    from inpaintbench.metrics.set_resampling import normal_bootstrap_cis

    out: dict[str, SetMetricResult] = {}
    memo: dict[str, Any] = {}
    set_n_boot = settings.set_n_boot
    for name in (m for m in settings.metrics if m in SET_METRICS and METRICS[m].features != "inception"):
        space = METRICS[name].features
        if status.get(name, "ok") != "ok":
            out[name] = SetMetricResult(None, status="unavailable", reason=status[name])
            continue
        fake, real = embeddings.get(space, (None, None))
        n = 0 if fake is None else int(len(fake))
        need = 6 if prdc_base_name(name) else 2  # PRDC: more than k = 5 images per side
        if fake is None or real is None or n < need:
            out[name] = SetMetricResult(None, n=n, status="unavailable",
                                        reason=f"unavailable: needs at least {need} images with {space} "
                                               f"features, got {n}")
            continue
        extra: dict[str, Any] = {"extractor": embedders[space].name}
        try:
            if name == "fd_dinov2":
                d = int(real.shape[1])
                warning = fidm.small_sample_warning(n, dim=d)
                if warning:
                    extra["warning"] = warning
                n_boot = set_n_boot
                if n_boot is None:  # FID's rule: cheap N×N resamples below d, d×d ones above
                    n_boot = FID_N_BOOT if n < d else FID_N_BOOT_LARGE
                if n_boot == 0:
                    out[name] = SetMetricResult(float(fidm.frechet_distance(real, fake)), n=n, extra=extra)
                    continue
                ci = fidm.fid_bootstrap_ci(real, fake, n_boot=n_boot, seed=settings.seed)
                extra.update(n_boot=ci.n_boot, boot_std=float(ci.boot_std), ci_method=ci.method,
                             paired=bool(ci.paired))
                out[name] = SetMetricResult(float(ci.fid), float(ci.lo), float(ci.hi), n, extra=extra)
            elif name == "cmmd" and set_n_boot == 0:
                from inpaintbench.metrics.mmd import cmmd

                extra.update(sigma=10.0, scale=1000.0, estimator="biased (V-statistic)")
                out[name] = SetMetricResult(cmmd(real, fake), n=n, extra=extra)
            elif name == "cmmd":
                ci = normal_bootstrap_cis(["cmmd"], real, fake, n_boot=set_n_boot, seed=settings.seed)["cmmd"]
                extra.update(sigma=10.0, scale=1000.0, estimator="biased (V-statistic)", n_boot=ci.n_boot,
                             boot_std=ci.boot_std, ci_method=ci.method, paired=True)
                out[name] = SetMetricResult(ci.value, ci.lo, ci.hi, n, extra=extra)
            else:
                out[name] = prdc_result(name, real, fake, memo, extra, settings)
        except (InputError, ValueError, np.linalg.LinAlgError) as e:
            out[name] = SetMetricResult(None, n=n, status="unavailable", reason=unavailable(e))
    return out


def ids_scores(real: np.ndarray, fake: np.ndarray, backend: str | None = None,
               device: Any = "cpu") -> tuple[float, float]:
    """(P-IDS, U-IDS) with MAT's linear SVM; ``backend="torch"`` runs the solver on ``device``."""
    from inpaintbench.metrics.ids import inception_discriminative_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear ConvergenceWarning at large N, as in MAT
        kwargs: dict[str, Any] = {}
        if backend is not None:
            kwargs["backend"] = backend
        if backend == "torch":
            kwargs["device"] = device
        scores = inception_discriminative_scores(real, fake, **kwargs)
    return float(scores[0]), float(scores[1])
