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

This module holds the pass and its state (accumulated features, reference cache); the work is in
:mod:`.suite_networks` (building the networks), :mod:`.per_image` (one batch's per-image values)
and :mod:`.set_metrics` (set-level metrics from feature arrays).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# gather_features is re-exported for callers of its old location (it lives with the collectives).
from inpaintbench.distributed import gather_features  # noqa: F401
from inpaintbench.errors import InputError, WeightsError
from inpaintbench.metrics.feature_cache import CachedFeatures, FeatureCache, reference_key
from inpaintbench.metrics.fid import FID_N_BOOT
from inpaintbench.metrics.inception import FEATURE_DIM, InceptionExtractor, create_extractor  # noqa: F401
from inpaintbench.metrics.info import (  # the one registry of metric names; re-exported here
    DEFAULT_METRICS,
    KNOWN_METRICS,  # noqa: F401
    LPIPS_METRICS,  # noqa: F401
    METRICS,
    SET_METRICS,
    check_metric_names,
    feature_files,
    select_lpips_net,
)
from inpaintbench.metrics.lpips import HOLE_MARGIN, LPIPSMetric  # noqa: F401  (re-exported)

# The per-image metrics of a batch live in per_image, the network construction in suite_networks;
# PIXEL_METRICS, LPIPS_NET and as_uint8_tensor are re-exported for callers of their old location.
from inpaintbench.metrics.per_image import PIXEL_METRICS, as_uint8_tensor, batch_tensors, per_image_values  # noqa: F401

# The set-metric computation lives in set_metrics; SetMetricResult and FID_N_BOOT_LARGE are
# re-exported here for callers of their old location.
from inpaintbench.metrics.set_metrics import (
    FID_N_BOOT_LARGE,
    SetMetricResult,
    SetMetricSettings,
    embedding_metrics,
    inception_set_metrics,
    reals_for,
)
from inpaintbench.metrics.set_metrics import unavailable as _unavailable  # noqa: F401
from inpaintbench.metrics.set_resampling import prdc_base_name  # noqa: F401
from inpaintbench.metrics.suite_networks import LPIPS_NET, build_networks  # noqa: F401

#: every per-image pixel metric of the registry
PER_IMAGE_PIXEL_METRICS = tuple(m.name for m in METRICS.values() if m.family == "pixel")
#: per-image pixel metrics computed only when asked for (other papers' conventions)
EXTRA_PIXEL_METRICS = tuple(m for m in PER_IMAGE_PIXEL_METRICS if m not in PIXEL_METRICS)
VARIANTS = {name: info.variant for name, info in METRICS.items() if info.variant}


@dataclass
class SuiteUpdate:
    """What one :meth:`MetricSuite.update` returns."""

    per_image: dict[str, np.ndarray]
    features: dict[str, np.ndarray]


def _create_embedder(space: str, device: torch.device, max_batch: int, wkw: dict[str, Any]) -> Any:
    if space == "dinov2":
        from inpaintbench.metrics.dinov2 import create_dinov2

        return create_dinov2(device, max_batch=max_batch, **wkw)
    from inpaintbench.metrics.clip_features import create_clip

    return create_clip(device, max_batch=max_batch, **wkw)


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

        nets = build_networks(self.metrics, PER_IMAGE_PIXEL_METRICS, feature_extractor, self.device, max_batch, wkw,
                              self._status, _create_embedder)  # the module global: tests swap it
        self._lpips, self._lpips_for, self._dists = nets.lpips, nets.lpips_for, nets.dists
        self.embedders: dict[str, Any] = nets.embedders
        self.extractor: InceptionExtractor | None = nets.extractor

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

    @torch.no_grad()
    def update(self, pred_u8: Any, gt_u8: Any, holes: Any, ids: Sequence[str] | None = None) -> SuiteUpdate:
        """Score one batch. Returns per-image values (float64 [B]) and the batch's features
        (``fake`` and, unless the reals come from the cache, ``real``; float32 [B, 2048])."""
        p, g, h = batch_tensors(pred_u8, gt_u8, holes, self.device)
        b = p.shape[0]
        if ids is not None and len(ids) != b:
            raise InputError(f"{len(ids)} ids for a batch of {b}", "pass one id per image")
        per_image: dict[str, np.ndarray] = {}
        if b == 0:
            return SuiteUpdate(per_image, {})
        per_image = per_image_values(p, g, h, self.metrics, self._lpips, self._lpips_for, self._dists)

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
        out = embedding_metrics(embeddings or {}, self._set_settings(), self._status, self.embedders)
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
            real_f, reason = reals_for(fake, real, ids, self._ref)
        if real_f is None or fake is None:
            for name in pending:
                out[name] = SetMetricResult(None, n=n, status="unavailable", reason=f"unavailable: {reason}")
            return out
        if real is not None and self._ref is None:
            self._maybe_save_reference(real_f, ids)
        out.update(inception_set_metrics(pending, real_f, fake, self._set_settings(), self.feature_extractor_name))
        return out

    def _set_settings(self) -> SetMetricSettings:
        """The suite's current settings of the set metrics (read at compute time, as attributes may change)."""
        return SetMetricSettings(metrics=self.metrics, seed=self.seed, fid_n_boot=self.fid_n_boot,
                                 set_n_boot=self.set_n_boot, kid_subsets=self.kid_subsets,
                                 kid_subset_size=self.kid_subset_size, ids_backend=self.ids_backend,
                                 device=self.device)

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
