"""Checking what a metric is handed: uint8 RGB batches, the one input form every metric network takes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from inpaintbench.errors import InputError


def as_uint8_tensor(images: Any, what: str) -> torch.Tensor:
    """Accept uint8 [B,H,W,3] numpy arrays or tensors; anything else is a clear InputError."""
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{what}: expected a uint8 array [B,H,W,3], got {type(images).__name__}",
                         "pass a numpy array or torch tensor")
    if t.dtype != torch.uint8:
        raise InputError(f"{what}: expected dtype uint8, got {t.dtype}",
                         "quantise model outputs to uint8 (round, clamp 0..255) before scoring")
    if t.ndim != 4 or t.shape[-1] != 3:
        raise InputError(f"{what}: expected shape [B,H,W,3], got {tuple(t.shape)}", "pass RGB batches (NHWC)")
    return t
