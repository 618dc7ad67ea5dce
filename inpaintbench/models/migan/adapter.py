"""MI-GAN as an :class:`~inpaintbench.models.base.Inpainter`: polarity, input layout, sizes, precision.

Conventions (all recorded by :meth:`MIGANInpainter.describe`), from the official scripts (MI-GAN notes §4):

* **Input**: image ``u8 * 2 / 255 - 1`` in [-1, 1] (the demo's exact expression, so the network input is
  bit-identical to the official one); mask ``1 - holes`` (1 = known, 0 = hole); network input
  ``cat([mask - 0.5, image * mask])`` [N, 4, R, R].
* **Output**: ``(raw * 0.5 + 0.5).clamp(0, 1)`` as float32 (NaN stays NaN, so the harness fails the row).
  The harness composites the known pixels back and rounds to uint8; the official demo truncates instead
  (``.to(uint8)``), which is at most one level lower in the hole.
* **Deterministic**: the inference generator has no latent input and uses its stored noise maps, so no
  seed is involved and results do not depend on batch composition (up to float rounding of batched
  kernels).
* **Sizes**: the network takes exactly ``R x R``. ``resize_policy``:

  - ``"error"`` (default): other sizes are refused with an :class:`~inpaintbench.errors.InputError`;
  - ``"resize"``: what ``scripts/demo.py`` does: stretch the image to R x R with bicubic interpolation
    (antialiased when shrinking, as PIL's ``BICUBIC`` resize the demo calls), run, and resize the output
    back with bicubic interpolation (the demo's ``cv2.INTER_CUBIC``). The demo shrinks the long side to R
    first and then stretches; that is one resize here, to the same R x R grid. Two deliberate
    differences keep the benchmark honest: a pixel at R is a hole if any part of it was a hole (the demo
    resizes the mask with nearest, which can drop thin strokes and would show undefined pixels as known),
    and hole pixels are set to mid-grey before resizing so that no undefined pixel bleeds into the
    known context. The output is at the input size, where the harness composites;
  - ``"pad"``: IOPaint's approach for smaller images: mirror-pad to R x R at the bottom/right (holes are
    mirrored too, so no undefined pixel is used as context), run, crop back. Reused from MAT's adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.models.base import check_inpaint_batch
from inpaintbench.models.mat.adapter import PRECISIONS, RESIZE_POLICIES, MATInpainter
from inpaintbench.models.migan.checkpoint import load_migan
from inpaintbench.models.migan.network import IMPLS

NOISE_POLICY = ("deterministic: no latent input; the fixed noise_const maps stored in the checkpoint are "
                "added (official inference generator), nothing is drawn at random, so no seed is used")
INPUT_LAYOUT = "cat([mask - 0.5, image * mask]); image = u8 * 2 / 255 - 1; mask = 1 - holes (1 = known)"
OUTPUT_RULE = "clamp(raw * 0.5 + 0.5, 0, 1) float32; the harness composites known pixels and rounds to uint8"
GREY = 127.5  # u8 value that maps to 0.0 in [-1, 1]


def check_batch(images: np.ndarray, holes: np.ndarray, ids: list[str] | None, who: str = "MI-GAN") -> None:
    """Refuse inputs that break the Inpainter contract with a message that says what to pass."""
    check_inpaint_batch(who, images, holes, ids,
                        "convert masks to bool at the edge (MI-GAN mask files: white = known, hole = 0)")


def network_input(x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Official layout from u8-valued float images [N,3,R,R] (0..255) and holes [N,1,R,R] (1 = hole)."""
    image = x * 2 / 255 - 1
    mask = 1.0 - hole
    return torch.cat([mask - 0.5, image * mask], dim=1)


class MIGANInpainter:
    """Inference wrapper around our MI-GAN generator (see the module docstring for every convention)."""

    value_range = (-1.0, 1.0)
    pad_multiple = 1  # sizes are handled here, by resize_policy

    def __init__(self, weights: str | Path, *, resolution: int | None = None, name: str | None = None,
                 device: str | torch.device | None = None, precision: str = "fp32", resize_policy: str = "error",
                 impl: str = "fast", micro_batch: int | None = None, weights_id: str | None = None,
                 weights_verified: bool | str | None = None):
        if resize_policy not in RESIZE_POLICIES:
            raise InputError(f"MI-GAN: unknown resize_policy {resize_policy!r}", f"use one of {RESIZE_POLICIES}")
        if precision not in PRECISIONS:
            raise InputError(f"MI-GAN: unknown precision {precision!r}", f"use one of {sorted(PRECISIONS)}")
        if impl not in IMPLS:
            raise InputError(f"MI-GAN: unknown impl {impl!r}", f"use one of {IMPLS}")
        if micro_batch is not None and (not isinstance(micro_batch, int) or micro_batch < 1):
            raise InputError("MI-GAN: micro_batch must be a positive integer",
                             "pass e.g. micro_batch=4 or leave it unset")
        dev = torch.device(device) if device not in (None, "auto") else \
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.device = dev
        self.G, self.checkpoint = load_migan(weights, resolution=resolution, device=dev, impl=impl)
        self.native_resolution = self.checkpoint.resolution
        self.name = name or f"migan-{self.native_resolution}"
        self.precision = precision
        self.resize_policy = resize_policy
        self.impl = impl
        self.micro_batch = micro_batch
        self.weights_id = weights_id
        self.weights_verified = weights_verified

    # ------------------------------------------------------------------ sizes

    def to_native(self, images: np.ndarray, holes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """uint8/bool arrays -> u8-valued float images [N,3,R,R], holes [N,1,R,R], and how to undo it."""
        r = self.native_resolution
        _, h, w = holes.shape
        if (h, w) == (r, r):
            x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
            return x, torch.from_numpy(np.ascontiguousarray(holes)).float()[:, None], None
        if self.resize_policy == "error":
            raise InputError(f"MI-GAN ({self.name}) takes {r}x{r} images, got {w}x{h}",
                             "evaluate at the model's native resolution, or pass -O resize_policy=resize (the "
                             "official demo's stretch to RxR) or -O resize_policy=pad")
        if self.resize_policy == "pad":
            if h > r or w > r:
                raise InputError(f"MI-GAN ({self.name}): resize_policy=pad needs images no larger than {r}x{r}, "
                                 f"got {w}x{h}", "use -O resize_policy=resize")
            return MATInpainter._to_native(self, images, holes)  # type: ignore[arg-type]  # same padding rule
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
        hole = torch.from_numpy(np.ascontiguousarray(holes)).float()[:, None]
        x = torch.where(hole > 0, torch.tensor(GREY), x)  # undefined pixels never reach the known context
        x = F.interpolate(x, size=(r, r), mode="bicubic", align_corners=False, antialias=h > r or w > r)
        hole = F.adaptive_max_pool2d(hole, (r, r))  # never shrink a hole
        return x.clamp_(0, 255), hole, ("resize", h, w)

    @staticmethod
    def from_native(out: torch.Tensor, undo: Any) -> torch.Tensor:
        if undo is None:
            return out
        kind, h, w = undo
        if kind == "pad":
            return MATInpainter._from_native(out, undo)
        y = F.interpolate(out, size=(h, w), mode="bicubic", align_corners=False,
                          antialias=out.shape[-2] > h or out.shape[-1] > w)
        return y.clamp_(0.0, 1.0)

    # ------------------------------------------------------------------ inference

    def build_input(self, images: np.ndarray, holes: np.ndarray) -> torch.Tensor:
        """The exact network input for a native-size batch (what :meth:`inpaint` feeds the generator)."""
        check_batch(images, holes, None)
        x, hole, _ = self.to_native(images, holes)
        return network_input(x, hole)

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        check_batch(images, holes, ids)
        x, hole, undo = self.to_native(images, holes)
        step = self.micro_batch or x.shape[0]
        outs = []
        with torch.inference_mode():
            for s in range(0, x.shape[0], step):
                outs.append(self._forward(network_input(x[s:s + step], hole[s:s + step])))
            out = self.from_native(torch.cat(outs) if len(outs) > 1 else outs[0], undo)
            # NCHW channels-last is NHWC in memory: this permute is a view, and numpy() copies nothing
            return out.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32, copy=False)

    def _forward(self, inp: torch.Tensor) -> torch.Tensor:
        dev = self.device
        dtype = PRECISIONS[self.precision]
        with torch.autocast(device_type=dev.type, dtype=dtype, enabled=dtype is not None):
            raw = self.G(inp.to(dev, non_blocking=True))
        return raw.float().mul_(0.5).add_(0.5).clamp_(0.0, 1.0).cpu()

    # ------------------------------------------------------------------ provenance

    def describe(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {
            "name": self.name,
            "family": "migan",
            "weights": {"path": str(ck.path), "sha256": ck.sha256, "format": ck.format, "id": self.weights_id,
                        "verified": self.weights_verified, "prefix_stripped": ck.prefix_stripped},
            "native_resolution": self.native_resolution,
            "resize_policy": self.resize_policy,
            "precision": self.precision,
            "impl": self.impl,
            "device": str(self.device),
            "micro_batch": self.micro_batch,
            "stochastic": False,
            "noise_policy": NOISE_POLICY,
            "input_layout": INPUT_LAYOUT,
            "output": OUTPUT_RULE,
            "mask_convention": "harness holes True=missing -> MI-GAN mask 1=known/0=hole",
            "value_range": list(self.value_range),
        }


def build_migan(weights: str | Path | None = None, *, resolution: int, weights_id: str | None = None,
                weights_dir: str | None = None, offline: bool | None = None, allow_unverified: bool = False,
                **kwargs: Any) -> MIGANInpainter:
    """Factory behind ``migan-256``/``migan-512``: a local ``weights`` file (``--weights``), else the
    registered file found by :func:`~inpaintbench.weights.resolve_weights` (sha256 checked, offline rules)."""
    verified: bool | str | None = None
    if weights is None:
        if weights_id is None:
            raise WeightsError("MI-GAN needs weights=PATH or a registered weights id",
                               "pass --weights /path/to/migan_256_places2.pt")
        from inpaintbench.weights import resolve_weights

        resolved = resolve_weights(weights_id, weights_dir=weights_dir, offline=offline,
                                   allow_unverified=allow_unverified)
        weights, verified = resolved.path, resolved.verified
    return MIGANInpainter(weights, resolution=resolution, weights_id=weights_id if verified is not None else None,
                          weights_verified=verified, **kwargs)
