"""All metrics of an evaluation in one batched pass (torchmetrics-style ``update`` / ``compute``).

Per-image metrics (PSNR, SSIM, L1, hole-only PSNR/L1, LPIPS) stream out of :meth:`MetricSuite.update`
batch by batch; set-level metrics (FID, FID∞, KID, P-IDS, U-IDS) come from the Inception features
accumulated over the run (:meth:`compute`, or :meth:`compute_from_features` on features the runner
saved and gathered itself).

One pass: each batch is converted to a uint8 tensor on the device once; the pixel metrics, every
LPIPS net and the Inception extractor read that same tensor. Inception runs once on the fakes and
once on the reals — not at all on the reals when their features are in the reference cache
(:class:`~inpaintbench.metrics.feature_cache.FeatureCache`). Networks run in float32 with autocast
off and statistics are float64, whatever precision the model used.

Missing weights never crash an evaluation: pixel metrics are still computed, and each deep metric
whose weights cannot be resolved is reported as ``"unavailable: <reason> (fix: ...)"`` in
:attr:`MetricSuite.status` and in :meth:`compute`. ``require=("lpips", "fid")`` turns that into a
:class:`~inpaintbench.errors.WeightsError` at construction instead.

Memory (D = 2048 feature dims, N images; figures for MAT's Places protocol, N = 36,500):

* accumulated features, float32, kept for KID, IDS, the FID bootstrap and FID∞: N·D·4 bytes per
  side = 299 MB for the fakes + 299 MB for the reals (with cached reals, the same 299 MB is loaded
  from the cache instead);
* FID: centred float64 moments from those arrays (row chunks), two D×D float64 covariances and the
  eigendecomposition workspace: O(D²), about 100-150 MB, transient;
* P-/U-IDS: the SVM stacks the 2N×D features in float64 (+ float32 for the torch backend): about
  1.2-1.8 GB, transient (see :mod:`inpaintbench.metrics.ids`);
* KID: subsets of 1000 rows, negligible.

So about 0.6 GB resident during the pass and a peak of about 2.5 GB in :meth:`compute`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

# gather_features is re-exported for callers of its old location (it lives with the collectives).
from inpaintbench.distributed import gather_features  # noqa: F401
from inpaintbench.errors import InputError, WeightsError
from inpaintbench.metrics.feature_cache import CachedFeatures, FeatureCache, reference_key
from inpaintbench.metrics.fid import FID_N_BOOT
from inpaintbench.metrics.inception import FEATURE_DIM, InceptionExtractor, create_extractor
from inpaintbench.metrics.info import (  # the one registry of metric names; re-exported here
    DEFAULT_METRICS,
    KNOWN_METRICS,  # noqa: F401
    LPIPS_METRICS,
    METRICS,
    SET_METRICS,
    check_metric_names,
    feature_files,
    select_lpips_net,
)
from inpaintbench.metrics.lpips import HOLE_MARGIN, LPIPSMetric, as_uint8_tensor
from inpaintbench.metrics.set_resampling import prdc_base_name

#: FID bootstrap resamples when N >= d (each is a d×d eigendecomposition; see ``fid_n_boot``)
FID_N_BOOT_LARGE = 50
#: every per-image pixel metric of the registry
PER_IMAGE_PIXEL_METRICS = tuple(m.name for m in METRICS.values() if m.family == "pixel")
#: the pixel metrics :func:`inpaintbench.metrics.pixel.pixel_metrics` computes in one call
PIXEL_METRICS = ("psnr", "ssim", "l1", "psnr_hole", "l1_hole")
#: per-image pixel metrics computed only when asked for (other papers' conventions)
EXTRA_PIXEL_METRICS = tuple(m for m in PER_IMAGE_PIXEL_METRICS if m not in PIXEL_METRICS)
VARIANTS = {name: info.variant for name, info in METRICS.items() if info.variant}


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


@dataclass
class SuiteUpdate:
    """What one :meth:`MetricSuite.update` returns."""

    per_image: dict[str, np.ndarray]
    features: dict[str, np.ndarray]


#: the LPIPS trunk behind each LPIPS column
LPIPS_NET = {"lpips": "alex", "lpips_vgg": "vgg", "lpips_hole": "alex"}


def _create_embedder(space: str, device: torch.device, max_batch: int, wkw: dict[str, Any]) -> Any:
    if space == "dinov2":
        from inpaintbench.metrics.dinov2 import create_dinov2

        return create_dinov2(device, max_batch=max_batch, **wkw)
    from inpaintbench.metrics.clip_features import create_clip

    return create_clip(device, max_batch=max_batch, **wkw)


def _unavailable(e: Exception) -> str:
    msg = getattr(e, "message", None) or str(e)
    fix = getattr(e, "fix", None)
    return f"unavailable: {msg}" + (f" (fix: {fix})" if fix else "")


class MetricSuite:
    """Every requested metric over a stream of (prediction, ground truth, hole) batches.

    Args:
        metrics: names from :data:`KNOWN_METRICS`. ``lpips`` is always AlexNet (MAT) and
            ``lpips_vgg`` always VGG (LaMa); ``lpips_net="vgg"`` swaps ``lpips`` for ``lpips_vgg``.
        device: where the networks and pixel metrics run.
        feature_extractor: ``inception-tf`` (torch-fidelity) or ``inception-stylegan2`` (MAT).
        weights_dir, offline, allow_unverified: passed to :func:`inpaintbench.weights.resolve_weights`.
        require: metrics whose unavailability is an error at construction.
        seed: seeds the FID bootstrap, KID subsets and FID∞ subsampling.
        reference_cache: real-image feature cache; with ``reference_ids`` (the ordered image ids of
            the reference set) cached reals are loaded instead of extracted, and missing ones are
            saved after :meth:`compute` once the whole set has been seen.
        resolution_policy: how the images were brought to size (part of the cache key).
        fid_n_boot: bootstrap resamples for the FID CI (0 = no CI). ``None`` (default): 200 when
            N < d, where a resample is an N×N SVD (milliseconds), and 50 when N ≥ d, where each costs
            two d×d moments and an eigendecomposition (≈ 21 s at N = 36,500 on a 2-core CPU, so 50
            resamples ≈ 17 min). The CI is FID ± z·SE; 50 resamples give the SE to about ±10 %,
            200 to about ±5 % (relative SE of a standard deviation ≈ 1/√(2B)). The count is recorded.
        ids_backend: ``None``/``"sklearn"`` (MAT's LinearSVC, exact) or ``"torch"`` (same problem,
            faster at large N, runs on ``device``).
        set_n_boot: resamples of the CIs of FD-DINOv2, CMMD and PRDC (0 = no CI). ``None``: FD-DINOv2
            follows FID's rule; CMMD/PRDC take 200 up to 4096 images and 50 above
            (:mod:`inpaintbench.metrics.set_resampling`).
    """

    def __init__(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        device: str | torch.device = "cpu",
        feature_extractor: str = "inception-tf",
        lpips_net: str = "alex",
        weights_dir: str | os.PathLike[str] | None = None,
        offline: bool | None = None,
        allow_unverified: bool = False,
        require: Sequence[str] = (),
        seed: int = 0,
        reference_cache: FeatureCache | None = None,
        *,
        reference_ids: Sequence[str] | None = None,
        resolution_policy: str = "native",
        fid_n_boot: int | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        ids_backend: str | None = None,
        max_batch: int = 32,
        set_n_boot: int | None = None,
    ):
        # `lpips` is always AlexNet; lpips_net="vgg" selects the `lpips_vgg` column instead.
        self.metrics = select_lpips_net(check_metric_names(metrics), lpips_net)
        require = select_lpips_net(check_metric_names(require), lpips_net)
        for name in require:
            if name not in self.metrics:
                raise InputError(f"metric {name!r} is required but not selected",
                                 f"add {name} to the metrics or drop it from the required ones")
        self.device = torch.device(device)
        self.feature_extractor_name = feature_extractor
        self.lpips_net = lpips_net
        self.seed = int(seed)
        self.fid_n_boot = None if fid_n_boot is None else int(fid_n_boot)
        self.kid_subsets = int(kid_subsets)
        self.kid_subset_size = int(kid_subset_size)
        self.ids_backend = ids_backend
        self.set_n_boot = None if set_n_boot is None else int(set_n_boot)
        self.reference_cache = reference_cache
        self.resolution_policy = resolution_policy
        self._status: dict[str, str] = {}
        wkw = {"weights_dir": weights_dir, "offline": offline, "allow_unverified": allow_unverified}

        for name in self.metrics:
            if name in PER_IMAGE_PIXEL_METRICS:
                self._status[name] = "ok"

        # LPIPS nets: one model per distinct trunk.
        self._lpips: dict[str, LPIPSMetric] = {}
        self._lpips_for: dict[str, str] = {}
        for name in (m for m in self.metrics if m in LPIPS_METRICS):
            net = LPIPS_NET[name]
            self._lpips_for[name] = net
            if net not in self._lpips:
                try:
                    self._lpips[net] = LPIPSMetric(net, self.device, max_batch=max_batch, **wkw)
                except WeightsError as e:
                    self._status[name] = _unavailable(e)
                    continue
            self._status[name] = "ok"

        # DISTS (VGG16 trunk with L2 pooling).
        self._dists: Any = None
        if "dists" in self.metrics:
            from inpaintbench.metrics.dists import DISTSMetric

            try:
                self._dists = DISTSMetric(self.device, max_batch=max_batch, **wkw)
                self._status["dists"] = "ok"
            except WeightsError as e:
                self._status["dists"] = _unavailable(e)

        # Feature extractors of the set metrics, one per feature space: Inception (shared by FID,
        # KID, IDS, PRDC), DINOv2 (FD-DINOv2, PRDC-DINOv2), CLIP (CMMD).
        self.embedders: dict[str, Any] = {}
        for space in ("dinov2", "clip"):
            wanted = [m for m in self.metrics if m in SET_METRICS and METRICS[m].features == space]
            if not wanted:
                continue
            try:
                self.embedders[space] = _create_embedder(space, self.device, max_batch, wkw)
                status = "ok"
            except WeightsError as e:
                status = _unavailable(e)
            for name in wanted:
                self._status[name] = status
        self.extractor: InceptionExtractor | None = None
        set_requested = [m for m in self.metrics if m in SET_METRICS and METRICS[m].features == "inception"]
        if set_requested:
            try:
                self.extractor = create_extractor(feature_extractor, self.device, max_batch=max_batch, **wkw)
                for name in set_requested:
                    self._status[name] = "ok"
            except WeightsError as e:
                for name in set_requested:
                    self._status[name] = _unavailable(e)

        failed = [n for n in require if self._status.get(n, "ok") != "ok"]
        if failed:
            raise WeightsError(
                f"required metric(s) {', '.join(failed)} unavailable: "
                + "; ".join(f"{n}: {self._status[n][len('unavailable: '):]}" for n in failed),
                "fetch or import the weights listed (`inpaintbench weights list`), or drop --require",
            )

        self._ref: CachedFeatures | None = None
        self._ref_ids: list[str] | None = None
        self._ref_key: str | None = None
        if reference_ids is not None:
            self.set_reference(reference_ids, resolution_policy)
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget accumulated features (the constructed networks are kept)."""
        self._fake: list[np.ndarray] = []
        self._real: list[np.ndarray] = []
        self._ids: list[str] = []
        self._ids_known = True
        self._feature_dim: int | None = None
        self._emb: dict[str, list[np.ndarray]] = {}

    @property
    def status(self) -> dict[str, str]:
        """``{metric: "ok" | "unavailable: <reason> (fix: ...)"}`` for every selected metric."""
        return dict(self._status)

    @property
    def per_image_metrics(self) -> list[str]:
        """The per-image columns :meth:`update` returns (available ones only)."""
        return [m for m in self.metrics if METRICS[m].per_image and self._status[m] == "ok"]

    @property
    def needs_features(self) -> bool:
        return self.extractor is not None or bool(self.embedders)

    @property
    def feature_kinds(self) -> list[str]:
        """The keys of :attr:`SuiteUpdate.features` beyond Inception's ``fake``/``real``."""
        return [k for space in self.embedders for k in feature_files(space)]

    @property
    def reference_cached(self) -> bool:
        return self._ref is not None

    def set_reference(self, image_ids: Sequence[str], resolution_policy: str | None = None) -> bool:
        """Declare the reference set (ordered image ids); returns True when its features are cached."""
        if resolution_policy is not None:
            self.resolution_policy = resolution_policy
        self._ref_ids = [str(i) for i in image_ids]
        self._ref = None
        if self.reference_cache is None or self.extractor is None:
            return False
        self._ref_key = reference_key(self._ref_ids, self.extractor.name, self.extractor.weights.sha256,
                                      self.resolution_policy, FEATURE_DIM)
        self._ref = self.reference_cache.load(self._ref_key)
        return self._ref is not None

    # ------------------------------------------------------------------ streaming

    def _inputs(self, pred: Any, gt: Any, holes: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = as_uint8_tensor(pred, "pred")
        g = as_uint8_tensor(gt, "gt")
        h = torch.from_numpy(np.ascontiguousarray(holes)) if isinstance(holes, np.ndarray) else holes
        if not isinstance(h, torch.Tensor) or h.dtype != torch.bool:
            raise InputError("holes must be a bool array [B,H,W] (True = hole)",
                             "convert masks at the edge with the right polarity; never pass 0/255 images")
        if p.shape != g.shape or tuple(h.shape) != tuple(p.shape[:3]):
            raise InputError(f"shapes differ: pred {tuple(p.shape)}, gt {tuple(g.shape)}, "
                             f"holes {tuple(h.shape)}",
                             "pass pred/gt [B,H,W,3] and holes [B,H,W] of the same size")
        return p.to(self.device), g.to(self.device), h.to(self.device)

    @torch.no_grad()
    def update(self, pred_u8: Any, gt_u8: Any, holes: Any, ids: Sequence[str] | None = None) -> SuiteUpdate:
        """Score one batch. Returns per-image values (float64 [B]) and the batch's features
        (``fake`` and, unless the reals come from the cache, ``real``; float32 [B, 2048])."""
        p, g, h = self._inputs(pred_u8, gt_u8, holes)
        b = p.shape[0]
        if ids is not None and len(ids) != b:
            raise InputError(f"{len(ids)} ids for a batch of {b}", "pass one id per image")
        per_image: dict[str, np.ndarray] = {}
        if b == 0:
            return SuiteUpdate(per_image, {})

        pix = [m for m in self.metrics if m in PIXEL_METRICS]
        if pix:
            from inpaintbench.metrics.pixel import pixel_metrics

            values = pixel_metrics(p, g, h)
            for m in pix:
                per_image[m] = values[m].detach().to("cpu", torch.float64).numpy()
        if "ssim_lama" in self.metrics:
            from inpaintbench.metrics.pixel import ssim_lama

            per_image["ssim_lama"] = ssim_lama(p, g).to("cpu", torch.float64).numpy()

        if self._lpips:
            x = p.permute(0, 3, 1, 2).float() / 127.5 - 1.0
            y = g.permute(0, 3, 1, 2).float() / 127.5 - 1.0
            by_net: dict[str, np.ndarray] = {}
            for net, model in self._lpips.items():
                if net == "alex" and "lpips_hole" in self._lpips_for:  # one trunk pass for both
                    whole, hole = model.forward_nchw_with_hole(x, y, h)
                    by_net[net], by_net["alex_hole"] = whole.numpy(), hole.numpy()
                else:
                    by_net[net] = model.forward_nchw(x, y).numpy()
            for name, net in self._lpips_for.items():
                key = "alex_hole" if name == "lpips_hole" else net
                if key in by_net:
                    per_image[name] = by_net[key]
        if self._dists is not None:
            per_image["dists"] = self._dists.forward_nchw_u8(p.permute(0, 3, 1, 2), g.permute(0, 3, 1, 2))

        features: dict[str, np.ndarray] = {}
        if self.extractor is not None:
            use_cache = self._ref is not None
            if use_cache and ids is None:
                raise InputError("cached reference features need image ids", "pass ids= to update()")
            features["fake"] = self.extractor.forward_nchw_u8(p.permute(0, 3, 1, 2)).cpu().numpy()
            if not use_cache:
                features["real"] = self.extractor.forward_nchw_u8(g.permute(0, 3, 1, 2)).cpu().numpy()
            self.add_features(features["fake"], features.get("real"), ids)
        if self.embedders:
            # PIL preprocessing (the references' resampler) runs on host copies; the networks run on
            # the suite's device.
            p_host, g_host = p.cpu().numpy(), g.cpu().numpy()
            extra = {}
            for space, emb in self.embedders.items():
                kf, kr = feature_files(space)
                extra[kf], extra[kr] = emb(p_host), emb(g_host)
            self.add_embeddings(extra)
            features.update(extra)
        return SuiteUpdate(per_image, features)

    def add_embeddings(self, features: dict[str, np.ndarray]) -> None:
        """Add DINOv2/CLIP feature rows (keys ``<space>_fake``/``<space>_real``) extracted or saved earlier."""
        for kind, rows in features.items():
            self._emb.setdefault(kind, []).append(np.asarray(rows, dtype=np.float32))

    def embeddings(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Accumulated ``{space: (fake, real)}`` of the DINOv2/CLIP extractors."""
        out = {}
        for space in self.embedders:
            kf, kr = feature_files(space)
            if self._emb.get(kf) and self._emb.get(kr):
                out[space] = (np.concatenate(self._emb[kf]), np.concatenate(self._emb[kr]))
        return out

    def add_features(self, fake: np.ndarray, real: np.ndarray | None = None,
                     ids: Sequence[str] | None = None) -> None:
        """Re-add features saved earlier (resume), or add features extracted elsewhere."""
        fake = np.asarray(fake, dtype=np.float32)
        if fake.ndim != 2 or (self._feature_dim is not None and fake.shape[1] != self._feature_dim):
            raise InputError(f"feature rows of shape {fake.shape} do not match the {self._feature_dim}-d "
                             "features seen so far", "add features from the same extractor")
        self._feature_dim = int(fake.shape[1])
        if real is not None:
            real = np.asarray(real, dtype=np.float32)
            if real.shape != fake.shape:
                raise InputError(f"real features {real.shape} do not match fake {fake.shape}",
                                 "add the features of the same images")
        elif self._ref is None:
            raise InputError("real features missing and the reference set is not cached",
                             "pass real= or set a cached reference with set_reference()")
        self._fake.append(fake)
        if real is not None:
            self._real.append(real)
        if ids is None:
            self._ids_known = False
        else:
            if len(ids) != len(fake):
                raise InputError(f"{len(ids)} ids for {len(fake)} feature rows", "pass one id per row")
            self._ids.extend(str(i) for i in ids)

    # ------------------------------------------------------------------ set-level metrics

    def compute(self) -> dict[str, SetMetricResult]:
        """Set-level metrics from everything accumulated by :meth:`update` / :meth:`add_features`."""
        fake = np.concatenate(self._fake) if self._fake else None
        real = np.concatenate(self._real) if self._real and len(self._real) == len(self._fake) else None
        ids = self._ids if self._ids_known else None
        return self.compute_from_features(fake, real, ids, embeddings=self.embeddings())

    def _reals_for(self, fake: np.ndarray, real: np.ndarray | None,
                   ids: Sequence[str] | None) -> tuple[np.ndarray | None, str | None]:
        if real is not None:
            if real.shape != fake.shape:
                return None, f"real features {real.shape} do not match fake {fake.shape}"
            return np.asarray(real, dtype=np.float32), None
        if self._ref is None:
            return None, "no real-image features (neither extracted nor cached)"
        if ids is None:
            return None, "cached reference features need the image ids of the fakes"
        try:
            return self._ref.rows_for(ids), None
        except KeyError as e:
            return None, str(e.args[0])

    def _maybe_save_reference(self, real: np.ndarray, ids: Sequence[str] | None) -> bool:
        """Cache the reals once the whole declared reference set has been seen (all ids)."""
        if (self.reference_cache is None or self._ref is not None or self._ref_key is None
                or self._ref_ids is None or ids is None or self.extractor is None
                or real.ndim != 2 or real.shape[1] != (self._feature_dim or FEATURE_DIM)):
            return False
        row = {str(i): k for k, i in enumerate(ids)}
        if set(row) != set(self._ref_ids):
            return False
        ordered = np.ascontiguousarray(real[[row[i] for i in self._ref_ids]], dtype=np.float32)
        meta = {"extractor": self.extractor.describe(), "resolution_policy": self.resolution_policy}
        self.reference_cache.save(self._ref_key, self._ref_ids, ordered, meta)
        self._ref = CachedFeatures(list(self._ref_ids), ordered, meta)
        return True

    def save_reference(self) -> bool:
        """Write the accumulated real features to the reference cache if they cover the declared
        reference set (:meth:`compute` does this too). True when the set is now cached."""
        if self._ref is not None:
            return True
        if not self._real or len(self._real) != len(self._fake) or not self._ids_known:
            return False
        return self._maybe_save_reference(np.concatenate(self._real), self._ids)

    def reference_features(self, ids: Sequence[str]) -> np.ndarray | None:
        """Cached real features for ``ids`` (in that order), or None when the set is not cached."""
        return None if self._ref is None else self._ref.rows_for(ids)

    def compute_from_features(self, fake: np.ndarray | None, real: np.ndarray | None = None,
                              ids: Sequence[str] | None = None,
                              embeddings: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                              ) -> dict[str, SetMetricResult]:
        """Set-level metrics from given features (the runner's path after gathering ranks).
        ``real=None`` takes the reals from the cached reference set, by ``ids``. ``embeddings``:
        ``{space: (fake, real)}`` of the DINOv2/CLIP extractors (rows of the same images)."""
        out = self._embedding_metrics(embeddings or {})
        names = [m for m in self.metrics if m in SET_METRICS and METRICS[m].features == "inception"]
        pending = []
        for name in names:
            if self._status.get(name, "ok") != "ok":
                out[name] = SetMetricResult(None, status="unavailable", reason=self._status[name])
            else:
                pending.append(name)
        if not pending:
            return out
        n = 0 if fake is None else int(len(fake))
        reason = None
        if fake is None or n < 2:
            reason = f"needs at least 2 images with features, got {n}"
            real_f = None
        else:
            fake = np.asarray(fake, dtype=np.float32)
            real_f, reason = self._reals_for(fake, real, ids)
        if real_f is None or fake is None:
            for name in pending:
                out[name] = SetMetricResult(None, n=n, status="unavailable", reason=f"unavailable: {reason}")
            return out
        if real is not None and self._ref is None:
            self._maybe_save_reference(real_f, ids)
        memo: dict[str, Any] = {}  # P-IDS and U-IDS share one SVM fit
        for name in pending:
            try:
                out[name] = self._set_metric(name, real_f, fake, memo)
            except InputError as e:  # e.g. FID∞ needs more images than the run has
                out[name] = SetMetricResult(None, n=n, status="unavailable", reason=_unavailable(e))
            except (ValueError, np.linalg.LinAlgError) as e:
                out[name] = SetMetricResult(None, n=n, status="unavailable",
                                            reason=f"unavailable: {type(e).__name__}: {e}")
        return out

    def _set_metric(self, name: str, real: np.ndarray, fake: np.ndarray,
                    memo: dict[str, Any]) -> SetMetricResult:
        from inpaintbench.metrics import fid as fidm

        n = int(len(fake))
        extra: dict[str, Any] = {"extractor": self.feature_extractor_name}
        warning = fidm.small_sample_warning(n, dim=int(real.shape[1]))
        if warning:
            extra["warning"] = warning
        if name == "fid":
            # All features are kept anyway (KID, IDS, bootstrap): centred float64 moments from the
            # arrays are more accurate than raw running sums (Σxxᵀ/N − μμᵀ cancels).
            value = float(fidm.frechet_distance(real, fake))
            lo = hi = None
            n_boot = self.fid_n_boot
            if n_boot is None:
                n_boot = FID_N_BOOT if n < int(real.shape[1]) else FID_N_BOOT_LARGE
            if n_boot > 0:
                ci = fidm.fid_bootstrap_ci(real, fake, n_boot=n_boot, seed=self.seed)
                lo, hi = float(ci.lo), float(ci.hi)
                extra.update(n_boot=ci.n_boot, boot_std=float(ci.boot_std), ci_method=ci.method,
                             paired=bool(ci.paired))
            return SetMetricResult(value, lo, hi, n, extra=extra)
        if name == "fid_inf":
            res = fidm.fid_infinity(real, fake, seed=self.seed)
            extra.update(slope=float(res.slope), ns=list(res.ns), fids=list(res.fids), r2=float(res.r2),
                         subsample=res.subsample)
            if min(res.ns) <= int(real.shape[1]):
                extra["warning"] = (f"FID∞ extrapolated from subsets of {min(res.ns)}..{max(res.ns)} images, at or "
                                    f"below the {int(real.shape[1])} feature dimensions, where FID does not follow "
                                    "a + b/N closely: treat it as indicative only")
            return SetMetricResult(float(res.fid_inf), n=n, extra=extra)
        if name == "kid":
            from inpaintbench.metrics.kid import kernel_inception_distance

            size = min(self.kid_subset_size, n)
            mean, std = kernel_inception_distance(real, fake, subsets=self.kid_subsets, subset_size=size,
                                                  seed=self.seed)
            extra.update(std=float(std), subsets=self.kid_subsets, subset_size=size)
            return SetMetricResult(float(mean), n=n, extra=extra)
        if name in ("p_ids", "u_ids"):
            if "ids" not in memo:
                memo["ids"] = self._ids_scores(real, fake)
            p_ids, u_ids = memo["ids"]
            return SetMetricResult(float(p_ids if name == "p_ids" else u_ids), n=n, extra=extra)
        if prdc_base_name(name):
            return self._prdc_result(name, real, fake, memo, extra)
        raise AssertionError(name)

    def _prdc_result(self, name: str, real: np.ndarray, fake: np.ndarray, memo: dict[str, Any],
                     extra: dict[str, Any]) -> SetMetricResult:
        """PRDC (k = 5) with FID's kind of CI; the four metrics of a space share one computation."""
        from inpaintbench.metrics.prdc import prdc
        from inpaintbench.metrics.set_resampling import normal_bootstrap_cis

        space = METRICS[name].features
        key = f"prdc:{space}"
        extra = {k: v for k, v in extra.items() if k != "warning"}  # the FID-specific small-N note
        extra["k"] = 5
        if self.set_n_boot == 0:
            if key not in memo:
                memo[key] = prdc(real, fake)
            return SetMetricResult(memo[key][prdc_base_name(name)], n=int(len(fake)), extra=extra)
        if key not in memo:
            wanted = [m for m in self.metrics if prdc_base_name(m) and METRICS[m].features == space]
            memo[key] = normal_bootstrap_cis(wanted, real, fake, n_boot=self.set_n_boot, seed=self.seed)
        ci = memo[key][name]
        extra.update(n_boot=ci.n_boot, boot_std=ci.boot_std, ci_method=ci.method, paired=True)
        return SetMetricResult(ci.value, ci.lo, ci.hi, int(len(fake)), extra=extra)

    def _embedding_metrics(self, embeddings: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, SetMetricResult]:
        """FD-DINOv2, PRDC-DINOv2 and CMMD from the DINOv2/CLIP features."""
        from inpaintbench.metrics import fid as fidm
        from inpaintbench.metrics.set_resampling import normal_bootstrap_cis

        out: dict[str, SetMetricResult] = {}
        memo: dict[str, Any] = {}
        for name in (m for m in self.metrics if m in SET_METRICS and METRICS[m].features != "inception"):
            space = METRICS[name].features
            if self._status.get(name, "ok") != "ok":
                out[name] = SetMetricResult(None, status="unavailable", reason=self._status[name])
                continue
            fake, real = embeddings.get(space, (None, None))
            n = 0 if fake is None else int(len(fake))
            need = 6 if prdc_base_name(name) else 2  # PRDC: more than k = 5 images per side
            if fake is None or real is None or n < need:
                out[name] = SetMetricResult(None, n=n, status="unavailable",
                                            reason=f"unavailable: needs at least {need} images with {space} "
                                                   f"features, got {n}")
                continue
            extra: dict[str, Any] = {"extractor": self.embedders[space].name}
            try:
                if name == "fd_dinov2":
                    d = int(real.shape[1])
                    warning = fidm.small_sample_warning(n, dim=d)
                    if warning:
                        extra["warning"] = warning
                    n_boot = self.set_n_boot
                    if n_boot is None:  # FID's rule: cheap N×N resamples below d, d×d ones above
                        n_boot = FID_N_BOOT if n < d else FID_N_BOOT_LARGE
                    if n_boot == 0:
                        out[name] = SetMetricResult(float(fidm.frechet_distance(real, fake)), n=n, extra=extra)
                        continue
                    ci = fidm.fid_bootstrap_ci(real, fake, n_boot=n_boot, seed=self.seed)
                    extra.update(n_boot=ci.n_boot, boot_std=float(ci.boot_std), ci_method=ci.method,
                                 paired=bool(ci.paired))
                    out[name] = SetMetricResult(float(ci.fid), float(ci.lo), float(ci.hi), n, extra=extra)
                elif name == "cmmd" and self.set_n_boot == 0:
                    from inpaintbench.metrics.mmd import cmmd

                    extra.update(sigma=10.0, scale=1000.0, estimator="biased (V-statistic)")
                    out[name] = SetMetricResult(cmmd(real, fake), n=n, extra=extra)
                elif name == "cmmd":
                    ci = normal_bootstrap_cis(["cmmd"], real, fake, n_boot=self.set_n_boot, seed=self.seed)["cmmd"]
                    extra.update(sigma=10.0, scale=1000.0, estimator="biased (V-statistic)", n_boot=ci.n_boot,
                                 boot_std=ci.boot_std, ci_method=ci.method, paired=True)
                    out[name] = SetMetricResult(ci.value, ci.lo, ci.hi, n, extra=extra)
                else:
                    out[name] = self._prdc_result(name, real, fake, memo, extra)
            except (InputError, ValueError, np.linalg.LinAlgError) as e:
                out[name] = SetMetricResult(None, n=n, status="unavailable", reason=_unavailable(e))
        return out

    def _ids_scores(self, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        from inpaintbench.metrics.ids import inception_discriminative_scores

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # liblinear ConvergenceWarning at large N, as in MAT
            kwargs: dict[str, Any] = {}
            if self.ids_backend is not None:
                kwargs["backend"] = self.ids_backend
            if self.ids_backend == "torch":
                kwargs["device"] = self.device
            scores = inception_discriminative_scores(real, fake, **kwargs)
        return float(scores[0]), float(scores[1])

    # ------------------------------------------------------------------ manifest

    def describe(self) -> dict[str, Any]:
        """For the run manifest: metric variants, extractor, weight ids + hashes + verified flags."""
        variants = {m: VARIANTS[m] for m in self.metrics if m in VARIANTS}
        for name in SET_METRICS:
            if name in variants:
                variants[name] = f"{variants[name]} [{self.feature_extractor_name}]"
        return {
            "metrics": list(self.metrics),
            "status": self.status,
            "variants": variants,
            "device": str(self.device),
            "precision": "networks float32 (autocast off), statistics float64",
            "seed": self.seed,
            "feature_extractor": self.extractor.describe() if self.extractor else
            {"extractor": self.feature_extractor_name, "available": False},
            "lpips": {net: m.describe() for net, m in self._lpips.items()},
            **({"lpips_hole_margin_px": HOLE_MARGIN} if "lpips_hole" in self.metrics else {}),
            **({"dists": self._dists.describe()} if self._dists is not None else {}),
            "embedders": {space: emb.describe() for space, emb in self.embedders.items()},
            "set_n_boot": self.set_n_boot,
            "fid_n_boot": self.fid_n_boot if self.fid_n_boot is not None else
            f"auto: {FID_N_BOOT} below the feature dimension, {FID_N_BOOT_LARGE} at or above",
            "ids_backend": self.ids_backend or "sklearn",
            "kid": {"subsets": self.kid_subsets, "subset_size": self.kid_subset_size},
            "reference_cache": None if self.reference_cache is None else {
                "root": str(self.reference_cache.root), "key": self._ref_key,
                "hit": self._ref is not None, "resolution_policy": self.resolution_policy},
        }
