"""Builds the networks a :class:`~inpaintbench.metrics.suite.MetricSuite` needs, and each metric's status.

One model per distinct LPIPS trunk, DISTS, one DINOv2/CLIP extractor per feature space and one
Inception extractor shared by FID, KID, IDS and PRDC. Missing weights never raise here: the
metrics that need them get ``"unavailable: <reason> (fix: ...)"`` instead (the suite decides
whether that is an error, from its ``require=``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from inpaintbench.errors import WeightsError
from inpaintbench.metrics.inception import InceptionExtractor, create_extractor
from inpaintbench.metrics.info import LPIPS_METRICS, METRICS, SET_METRICS
from inpaintbench.metrics.lpips import LPIPSMetric
from inpaintbench.metrics.set_metrics import unavailable

#: the LPIPS trunk behind each LPIPS column
LPIPS_NET = {"lpips": "alex", "lpips_vgg": "vgg", "lpips_hole": "alex"}


class SuiteNetworks(NamedTuple):
    """What :func:`build_networks` returns (None / empty where not selected or unavailable)."""

    lpips: dict[str, LPIPSMetric]  # trunk -> model
    lpips_for: dict[str, str]  # LPIPS column -> trunk
    dists: Any
    embedders: dict[str, Any]  # feature space -> DINOv2/CLIP extractor
    extractor: InceptionExtractor | None


def build_networks(metrics: Sequence[str], per_image_pixel: Sequence[str], feature_extractor: str, device: Any,
                   max_batch: int, wkw: dict[str, Any], status: dict[str, str],
                   create_embedder: Callable[[str, Any, int, dict[str, Any]], Any]) -> SuiteNetworks:
    """The networks of the selected ``metrics``; each metric's ``"ok"`` or ``"unavailable: ..."`` goes
    into ``status`` (pixel metrics in ``per_image_pixel`` are always ok). ``wkw`` is passed to
    :func:`inpaintbench.weights.resolve_weights`; ``create_embedder(space, device, max_batch, wkw)``
    builds a DINOv2/CLIP extractor."""
    for name in metrics:
        if name in per_image_pixel:
            status[name] = "ok"

    # LPIPS nets: one model per distinct trunk.
    lpips: dict[str, LPIPSMetric] = {}
    lpips_for: dict[str, str] = {}
    for name in (m for m in metrics if m in LPIPS_METRICS):
        net = LPIPS_NET[name]
        lpips_for[name] = net
        if net not in lpips:
            try:
                lpips[net] = LPIPSMetric(net, device, max_batch=max_batch, **wkw)
            except WeightsError as e:
                status[name] = unavailable(e)
                continue
        status[name] = "ok"

    # DISTS (VGG16 trunk with L2 pooling).
    dists: Any = None
    if "dists" in metrics:
        from inpaintbench.metrics.dists import DISTSMetric

        try:
            dists = DISTSMetric(device, max_batch=max_batch, **wkw)
            status["dists"] = "ok"
        except WeightsError as e:
            status["dists"] = unavailable(e)

    # Feature extractors of the set metrics, one per feature space: Inception (shared by FID,
    # KID, IDS, PRDC), DINOv2 (FD-DINOv2, PRDC-DINOv2), CLIP (CMMD).
    embedders: dict[str, Any] = {}
    for space in ("dinov2", "clip"):
        wanted = [m for m in metrics if m in SET_METRICS and METRICS[m].features == space]
        if not wanted:
            continue
        try:
            embedders[space] = create_embedder(space, device, max_batch, wkw)
            space_status = "ok"
        except WeightsError as e:
            space_status = unavailable(e)
        for name in wanted:
            status[name] = space_status
    extractor: InceptionExtractor | None = None
    set_requested = [m for m in metrics if m in SET_METRICS and METRICS[m].features == "inception"]
    if set_requested:
        try:
            extractor = create_extractor(feature_extractor, device, max_batch=max_batch, **wkw)
            for name in set_requested:
                status[name] = "ok"
        except WeightsError as e:
            for name in set_requested:
                status[name] = unavailable(e)
    return SuiteNetworks(lpips, lpips_for, dists, embedders, extractor)
