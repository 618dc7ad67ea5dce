"""The per-image metrics of one batch: PSNR/SSIM/L1 (whole and hole-only), LPIPS and DISTS.

Functions of the batch's uint8 tensors and the networks that
:func:`~inpaintbench.metrics.suite_networks.build_networks` built once;
:class:`~inpaintbench.metrics.suite.MetricSuite` calls them in its one pass, so the pixel metrics
and every perceptual net read the same tensor on the same device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from inpaintbench.errors import InputError
from inpaintbench.metrics.inputs import as_uint8_tensor
from inpaintbench.metrics.lpips import LPIPSMetric

#: the pixel metrics :func:`inpaintbench.metrics.pixel.pixel_metrics` computes in one call
PIXEL_METRICS = ("psnr", "ssim", "l1", "psnr_hole", "l1_hole")
def batch_tensors(pred: Any, gt: Any, holes: Any, device: torch.device,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check one batch (uint8 pred/gt ``[B,H,W,3]``, bool holes ``[B,H,W]``) and put it on ``device``."""
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
    return p.to(device), g.to(device), h.to(device)


@torch.no_grad()
def per_image_values(p: torch.Tensor, g: torch.Tensor, h: torch.Tensor, metrics: Sequence[str],
                     lpips: Mapping[str, LPIPSMetric], lpips_for: Mapping[str, str],
                     dists: Any = None) -> dict[str, np.ndarray]:
    """Float64 ``[B]`` values of the selected per-image metrics of a non-empty batch.

    ``lpips`` holds one network per trunk; ``lpips_for`` maps each LPIPS column to its trunk (only
    the columns whose trunk is in ``lpips`` are returned). ``dists``: the DISTS network or None.
    """
    per_image: dict[str, np.ndarray] = {}
    pix = [m for m in metrics if m in PIXEL_METRICS]
    if pix:
        from inpaintbench.metrics.pixel import pixel_metrics

        values = pixel_metrics(p, g, h)
        for m in pix:
            per_image[m] = values[m].detach().to("cpu", torch.float64).numpy()
    if "ssim_lama" in metrics:
        from inpaintbench.metrics.pixel import ssim_lama

        per_image["ssim_lama"] = ssim_lama(p, g).to("cpu", torch.float64).numpy()

    if lpips:
        x = p.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        y = g.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        by_net: dict[str, np.ndarray] = {}
        for net, model in lpips.items():
            if net == "alex" and "lpips_hole" in lpips_for:  # one trunk pass for both
                whole, hole = model.forward_nchw_with_hole(x, y, h)
                by_net[net], by_net["alex_hole"] = whole.numpy(), hole.numpy()
            else:
                by_net[net] = model.forward_nchw(x, y).numpy()
        for name, net in lpips_for.items():
            key = "alex_hole" if name == "lpips_hole" else net
            if key in by_net:
                per_image[name] = by_net[key]
    if dists is not None:
        per_image["dists"] = dists.forward_nchw_u8(p.permute(0, 3, 1, 2), g.permute(0, 3, 1, 2))
    return per_image
