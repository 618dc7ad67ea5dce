"""LaMa as an :class:`~inpaintbench.models.base.Inpainter`, with the official predict.py conventions.

Conventions (advimman/lama ``bin/predict.py``, ``saicinpainting/evaluation/data.py`` and
``DefaultInpaintingTrainingModule.forward``; all recorded by :meth:`LamaInpainter.describe`):

* **Range and polarity**: image ``u8 / 255`` in [0, 1], RGB, no mean/std; mask 1 = hole (the harness's
  ``holes`` as they are).
* **Network input**: ``cat([image * (1 - mask), mask], dim=1)``, 4 channels, holes zeroed in the RGB part.
* **Padding**: bottom and right only, up to the next multiple of 8, numpy ``mode='symmetric'`` (the
  edge pixel is repeated), image and mask alike; cropped back after the network. Sides below 16 px
  (where the official network fails) are padded the same way up to 16.
* **Composite**: ``mask * output + (1 - mask) * image``, clipped to [0, 1]; returned as the prediction
  (the harness composites and quantises again, which changes nothing).
* **Determinism**: the network draws nothing random, so the seed is unused (recorded anyway). On CPU
  samples go through the network one at a time by default (``micro_batch=1``), so results are
  bit-identical whatever the batch; on GPU the batch runs together and agrees to float rounding.
* **Precision**: ``fp32`` (default), ``bf16`` or ``fp16`` autocast; the Fourier units stay float32.
  On CUDA, TF32 is switched off during the forward unless ``tf32=True``, so fp32 means fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.models.base import check_inpaint_batch
from inpaintbench.models.lama.checkpoint import load_lama_generator
from inpaintbench.models.lama.network import IMPLS

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PAD_RULE = "bottom/right to a multiple of 8 (min 16), numpy mode='symmetric' for image and mask; cropped back"
DETERMINISM = "deterministic network (no random draws): the seed is recorded but unused"


def symmetric_index(n: int, m: int) -> torch.Tensor:
    """Indices that extend a length-``n`` axis to ``m`` like ``np.pad(..., (0, m - n), mode='symmetric')``."""
    j = torch.arange(m) % (2 * n)
    return torch.where(j < n, j, 2 * n - 1 - j)


def pad_symmetric(x: torch.Tensor, multiple: int = 8, min_size: int = 16) -> torch.Tensor:
    """Pad [B, C, H, W] at the bottom/right to a multiple of ``multiple`` (and >= ``min_size``), edge repeated."""
    h, w = x.shape[-2:]
    th = max(min_size, -(-h // multiple) * multiple)
    tw = max(min_size, -(-w // multiple) * multiple)
    if th != h:
        x = x.index_select(-2, symmetric_index(h, th).to(x.device))
    if tw != w:
        x = x.index_select(-1, symmetric_index(w, tw).to(x.device))
    return x


def build_network_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The official 4-channel input: ``cat([image * (1 - mask), mask])`` (image in [0, 1], mask 1 = hole)."""
    return torch.cat([image * (1 - mask), mask], dim=1)


def composite(raw: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask * raw + (1 - mask) * image`` (predict.py's ``inpainted``)."""
    return mask * raw + (1 - mask) * image


@contextlib.contextmanager
def _no_tf32(device: torch.device, allow: bool) -> Iterator[None]:
    if device.type != "cuda" or allow:
        yield
        return
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _check_batch(images: np.ndarray, holes: np.ndarray, ids: list[str] | None) -> None:
    check_inpaint_batch("LaMa", images, holes, ids, "convert masks to bool at the edge (LaMa mask files: hole = 255)")


class LamaInpainter:
    """Inference wrapper around our big-lama generator (see the module docstring for every convention)."""

    value_range = (0.0, 1.0)
    pad_multiple = 1  # padding is done here, with the official symmetric mode (the harness reflects)
    #: LaMa was trained on 256 crops but is fully convolutional and is evaluated at any size (the paper's
    #: 512 results): no native resolution, so the runner does not warn at 512.
    native_resolution = None
    trained_resolution = 256

    def __init__(self, weights: str | Path, *, name: str = "lama", device: str | torch.device | None = None,
                 precision: str = "fp32", impl: str = "fast", seed: int = 0, micro_batch: int | None = None,
                 tf32: bool = False, weights_id: str | None = None, weights_verified: bool | str | None = None):
        if not isinstance(tf32, bool):
            raise InputError(f"LaMa: tf32 must be true or false, got {tf32!r}", "pass -O tf32=true or leave it unset")
        if precision not in PRECISIONS:
            raise InputError(f"LaMa: unknown precision {precision!r}", f"use one of {sorted(PRECISIONS)}")
        if impl not in IMPLS:
            raise InputError(f"LaMa: unknown impl {impl!r}", f"use one of {IMPLS}")
        if micro_batch is not None and int(micro_batch) < 1:
            raise InputError("LaMa: micro_batch must be >= 1", "pass a positive integer or leave it unset")
        dev = torch.device(device) if device not in (None, "auto") else \
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if precision == "fp16" and dev.type == "cpu":
            raise InputError("LaMa: fp16 autocast is for GPUs", "use --precision bf16 on CPU, or fp32")
        self.device = dev
        self.G, self.checkpoint = load_lama_generator(weights, device=dev, impl=impl)
        self.G = self.G.to(memory_format=torch.channels_last)
        self.name = name
        self.precision = precision
        self.impl = impl
        self.seed = int(seed)
        self.micro_batch = int(micro_batch) if micro_batch is not None else (1 if dev.type == "cpu" else None)
        self.tf32 = bool(tf32)
        self.weights_id = weights_id
        self.weights_verified = weights_verified

    # ------------------------------------------------------------------ inference

    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float tensors in, (raw generator output, composite) out, both [B, 3, H, W] on the CPU.

        ``image`` [B, 3, H, W] in [0, 1]; ``mask`` [B, 1, H, W], 1 = hole. Pads, runs, crops (any size).
        """
        h, w = image.shape[-2:]
        dev = self.device
        image, mask = image.to(dev, torch.float32), mask.to(dev, torch.float32)
        img_p = pad_symmetric(image, self.G.size_multiple, self.G.min_size)
        mask_p = pad_symmetric(mask, self.G.size_multiple, self.G.min_size)
        x = build_network_input(img_p, mask_p)
        dtype = PRECISIONS[self.precision]
        step = self.micro_batch or x.shape[0]
        outs = []
        with torch.inference_mode(), _no_tf32(dev, self.tf32), \
                torch.autocast(device_type=dev.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            for s in range(0, x.shape[0], step):
                outs.append(self.G(x[s:s + step]).float())
        raw = torch.cat(outs)[..., :h, :w]
        return raw.cpu(), composite(raw, image, mask).clamp_(0.0, 1.0).cpu()

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        _check_batch(images, holes, ids)
        image = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        mask = torch.from_numpy(np.ascontiguousarray(holes))[:, None].float()
        _, out = self.predict(image, mask)
        return out.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32, copy=False)

    # ------------------------------------------------------------------ provenance

    def describe(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {
            "name": self.name,
            "weights": {**ck.describe(), "id": self.weights_id, "verified": self.weights_verified},
            "config": dict(ck.config),
            "trained_resolution": self.trained_resolution,
            "impl": self.impl,
            "precision": self.precision,
            "tf32": self.tf32,
            "device": str(self.device),
            "micro_batch": self.micro_batch,
            "seed": self.seed,
            "determinism": DETERMINISM,
            "padding": PAD_RULE,
            "network_input": "cat([image * (1 - mask), mask]); image u8/255 RGB, mask 1 = hole",
            "composite": "mask * output + (1 - mask) * image, clipped to [0, 1]",
            "mask_convention": "harness holes True=missing -> LaMa mask 1=hole",
            "value_range": list(self.value_range),
        }


def build_lama(weights: str | Path | None = None, *, weights_id: str | None = None,
               weights_dir: str | None = None, offline: bool | None = None, allow_unverified: bool = False,
               **kwargs: Any) -> LamaInpainter:
    """Factory behind the registry id: a local ``weights`` file, or the registered ``weights_id``."""
    verified: bool | str | None = None
    if weights is None:
        if weights_id is None:
            raise WeightsError("LaMa needs weights=PATH (big-lama.zip, best.ckpt, a state-dict .pth or our "
                               ".safetensors)", "pass --weights /path/to/file (Python: weights=PATH)")
        from inpaintbench.weights import resolve_weights

        resolved = resolve_weights(weights_id, weights_dir=weights_dir, offline=offline,
                                   allow_unverified=allow_unverified)
        weights, verified = resolved.path, resolved.verified
    return LamaInpainter(weights, weights_id=weights_id, weights_verified=verified, **kwargs)
