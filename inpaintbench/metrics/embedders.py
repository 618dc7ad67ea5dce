"""Base of the set-metric feature extractors other than Inception (DINOv2, CLIP).

Each reference implementation prepares images with PIL (dgm-eval: ``Image.resize`` bicubic;
google-research/cmmd: centre crop + ``Image.resize`` bicubic), which antialiases and rounds back to
uint8. Bit-exact agreement with their features needs the same resampler, so preprocessing runs here
through PIL on the CPU, per image, and the network sees the batch on the suite's device. Networks
run in float32 with autocast off.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from inpaintbench.errors import InputError
from inpaintbench.weights import ResolvedWeights


def pil_resize_u8(image_u8: np.ndarray, size: int, centre_crop: bool = False) -> np.ndarray:
    """uint8 [H,W,3] -> uint8 [size,size,3] by PIL bicubic (optionally after a centre square crop
    of side min(H, W), top/left offsets floor((H−l)/2), floor((W−l)/2) as cmmd's io_util)."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image_u8), mode="RGB")
    if centre_crop:
        w, h = im.size
        side = min(w, h)
        top, left = (h - side) // 2, (w - side) // 2
        im = im.crop((left, top, left + side, top + side))
    return np.asarray(im.resize((size, size), resample=Image.BICUBIC))


class Embedder:
    """uint8 NHWC batches in, float32 [B, feature_dim] out (``space`` names the feature space)."""

    space = ""
    name = ""
    description = ""
    input_size = 224
    centre_crop = False
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __init__(self, net: torch.nn.Module, weights: ResolvedWeights | None, device: str | torch.device = "cpu",
                 max_batch: int = 32, feature_dim: int = 0):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.weights = weights
        self.max_batch = int(max_batch)
        self.feature_dim = int(feature_dim)
        self._mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def preprocess(self, images_u8: np.ndarray) -> torch.Tensor:
        """uint8 [B,H,W,3] -> normalised float32 [B,3,S,S] on the device."""
        resized = np.stack([pil_resize_u8(im, self.input_size, self.centre_crop) for im in images_u8])
        x = torch.from_numpy(resized).to(self.device).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return (x - self._mean) / self._std

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def __call__(self, images_u8: Any) -> np.ndarray:
        """Features of uint8 [B,H,W,3] images (numpy or tensor, any device) as float32 numpy [B, D]."""
        if isinstance(images_u8, torch.Tensor):
            images_u8 = images_u8.detach().cpu().numpy()
        arr = np.asarray(images_u8)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
            raise InputError(f"{self.name}: expected uint8 [B,H,W,3] images, got {arr.dtype} {arr.shape}",
                             "pass quantised RGB batches")
        out = []
        with torch.autocast(device_type=self.device.type, enabled=False):
            for i in range(0, len(arr), self.max_batch):
                out.append(self._forward(self.preprocess(arr[i:i + self.max_batch])).float().cpu())
        if not out:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32, copy=False)

    def describe(self) -> dict[str, Any]:
        return {"extractor": self.name, "space": self.space, "description": self.description,
                "feature_dim": self.feature_dim, "input_size": self.input_size,
                "weights": self.weights.to_manifest() if self.weights is not None else None}
