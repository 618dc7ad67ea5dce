"""MAT as an :class:`~inpaintbench.models.base.Inpainter`: polarity, sizes, seeding, precision.

Conventions (all recorded by :meth:`MATInpainter.describe`):

* **Polarity**: the harness gives ``holes`` (True = missing); the network gets MAT's mask
  ``1 - holes`` (1 = known, 0 = hole). Images go to [-1, 1] as ``u8 / 127.5 - 1``; the output comes back
  as ``(x + 1) / 2`` clipped to [0, 1] (NaN stays NaN, so the harness marks the row failed).
* **Sizes**: the network takes exactly ``R x R`` (R = 256 or 512). Other sizes follow ``resize_policy``:
  ``"error"`` (default) refuses with an :class:`~inpaintbench.errors.InputError`; ``"resize"`` resizes
  image and hole mask to R (a pixel is a hole if any part of it was), inpaints, and resizes the
  prediction back; ``"pad"`` reflect-pads images no larger than R at the bottom/right, mirroring the
  hole mask too (mirrored holes stay holes, so no undefined pixel is ever used as context), and crops
  back. Known pixels are composited back by the harness in every case.
* **Determinism**: each sample gets its own ``torch.Generator`` seeded from
  ``sha256("mat-v1|<seed>|<sample id>")``; it draws z (float64 normal, as the official script's numpy
  draw), then the two feature-mixing maps, then any random noise. Results therefore do not depend on
  batch composition or order. Without ids, the sha256 of the sample's pixels and hole mask is the id.
  On CPU the generator runs each sample with batch-1 kernels (faster there), so outputs are
  bit-identical whatever the batch; on GPU batches run together and agree to float rounding.
  ``micro_batch`` caps how many samples go through the network at once (memory).
* **Noise**: ``noise_mode=None`` follows the official ``generate_image.py``: ``"const"`` for 512 models
  and ``"random"`` (from the per-sample generator) otherwise, since the script forces random noise
  whenever the resolution is not 512.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.models.base import check_inpaint_batch
from inpaintbench.models.mat.checkpoint import MATCheckpoint, load_generator
from inpaintbench.models.mat.layers import IMPLS
from inpaintbench.models.seeding import content_id, sample_seed  # noqa: F401  (re-exported)

RESIZE_POLICIES = ("error", "resize", "pad")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
Z_POLICY = ("per-sample torch.Generator seeded with the first 8 bytes (little endian) of "
            "sha256('mat-v1|<seed>|<sample id>'); draws z ~ N(0,1) float64, then the two mixing maps "
            "(Bernoulli 0.5), then random noise; sample id = harness id, else sha256 of pixels+holes")


def _check_batch(images: np.ndarray, holes: np.ndarray, ids: list[str] | None) -> None:
    check_inpaint_batch("MAT", images, holes, ids, "convert masks to bool at the edge (MAT files: hole = 0; "
                        "LaMa files: hole = 255)")


class MATInpainter:
    """Inference wrapper around our MAT generator (see the module docstring for every convention)."""

    value_range = (-1.0, 1.0)
    pad_multiple = 1  # sizes are handled here, by resize_policy

    def __init__(self, weights: str | Path, *, name: str = "mat", network: str = "G_ema",
                 device: str | torch.device | None = None, truncation_psi: float = 1.0,
                 noise_mode: str | None = None, seed: int = 0, precision: str = "fp32",
                 resize_policy: str = "error", impl: str | None = None, micro_batch: int | None = None,
                 weights_id: str | None = None, weights_verified: bool | str | None = None):
        if resize_policy not in RESIZE_POLICIES:
            raise InputError(f"MAT: unknown resize_policy {resize_policy!r}", f"use one of {RESIZE_POLICIES}")
        if precision not in PRECISIONS:
            raise InputError(f"MAT: unknown precision {precision!r}", f"use one of {sorted(PRECISIONS)}")
        if noise_mode not in (None, "const", "random", "none"):
            raise InputError(f"MAT: unknown noise_mode {noise_mode!r}", "use const, random or none")
        if impl is not None and impl not in IMPLS:
            raise InputError(f"MAT: unknown impl {impl!r}", f"use one of {IMPLS}")
        if micro_batch is not None and micro_batch < 1:
            raise InputError("MAT: micro_batch must be >= 1", "pass a positive integer or leave it unset")
        dev = torch.device(device) if device not in (None, "auto") else \
            torch.device("cuda" if torch.cuda.is_available() else "cpu")
        impl = impl or "fast"
        self.device = dev
        self.impl = impl
        if isinstance(weights, _LiveGenerator):
            from inpaintbench.models.mat.layers import set_impl

            self.G, self.checkpoint = set_impl(weights.module, impl), weights.checkpoint
        else:
            self.G, self.checkpoint = load_generator(weights, which=network, device=dev, impl=impl)
        self.checkpoint.state_dict = {}  # the module holds the weights; do not keep a second copy
        self.native_resolution = int(self.G.img_resolution)
        self.name = name
        self.truncation_psi = float(truncation_psi)
        self.noise_mode = noise_mode or ("const" if self.native_resolution == 512 else "random")
        self.noise_mode_source = "explicit" if noise_mode else "official generate_image.py default"
        self.seed = int(seed)
        self.precision = precision
        self.resize_policy = resize_policy
        self.micro_batch = micro_batch
        self.weights_id = weights_id
        self.weights_verified = weights_verified

    @classmethod
    def from_generator(cls, G: torch.nn.Module, *, name: str, device: str | torch.device,
                       source: str = "in-memory generator", **options: Any) -> MATInpainter:
        """Wrap a live generator (training validation) with exactly the conventions of a loaded one,
        so that its numbers equal those of ``run`` on the snapshot it becomes. ``G`` is used as it
        is (no copy); ``options`` are the constructor's (seed, precision, noise_mode, ...)."""
        ck = MATCheckpoint(path=Path(source), format="module", network="G_ema", kind="generator",
                           state_dict={}, config=dict(G.init_kwargs()))
        return cls(_LiveGenerator(G, ck), name=name, device=device, **options)

    # ------------------------------------------------------------------ sizes

    def _to_native(self, images: np.ndarray, holes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """uint8/bool arrays -> network tensors at R x R, plus what is needed to undo the resizing."""
        r = self.native_resolution
        b, h, w = holes.shape
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
        hole = torch.from_numpy(np.ascontiguousarray(holes)).float()[:, None]
        if (h, w) == (r, r):
            return x, hole, None
        if self.resize_policy == "error":
            raise InputError(f"MAT ({self.name}) takes {r}x{r} images, got {w}x{h}",
                             "evaluate at the model's native resolution, or pass resize_policy='resize' or "
                             "'pad' (model kwarg)")
        if self.resize_policy == "pad":
            if h > r or w > r:
                raise InputError(f"MAT ({self.name}): resize_policy='pad' needs images no larger than {r}x{r}, "
                                 f"got {w}x{h}", "use resize_policy='resize'")
            pads = ((0, 0), (0, r - h), (0, r - w))
            img = np.pad(images, (*pads, (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
            hol = np.pad(holes, pads, mode="reflect" if min(h, w) > 1 else "edge")
            x = torch.from_numpy(img).permute(0, 3, 1, 2).float()
            hole = torch.from_numpy(hol).float()[:, None]
            return x, hole, ("pad", h, w)
        x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        # a native pixel is a hole if any source pixel under its footprint was (never shrink holes)
        hole = F.adaptive_max_pool2d(hole, (r, r))
        return x.clamp_(0, 255), hole, ("resize", h, w)

    @staticmethod
    def _from_native(out: torch.Tensor, undo: Any) -> torch.Tensor:
        if undo is None:
            return out
        kind, h, w = undo
        if kind == "pad":
            return out[:, :, :h, :w]
        return F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False,
                             antialias=out.shape[-1] > w or out.shape[-2] > h)

    # ------------------------------------------------------------------ inference

    def _generators(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None) -> list[torch.Generator]:
        gens = []
        for i in range(images.shape[0]):
            sid = ids[i] if ids is not None else content_id(images[i], holes[i])
            g = torch.Generator(device="cpu")
            g.manual_seed(sample_seed(self.seed, str(sid)))
            gens.append(g)
        return gens

    @torch.no_grad()
    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        _check_batch(images, holes, ids)
        gens = self._generators(images, holes, ids)
        x, hole, undo = self._to_native(images, holes)
        z = torch.stack([torch.randn(self.G.z_dim, generator=g, dtype=torch.float64) for g in gens])
        step = self.micro_batch or x.shape[0]
        outs = []
        for s in range(0, x.shape[0], step):
            outs.append(self._forward(x[s:s + step], hole[s:s + step], z[s:s + step], gens[s:s + step]))
        out = self._from_native(torch.cat(outs), undo)
        return out.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32, copy=False)

    def _forward(self, x: torch.Tensor, hole: torch.Tensor, z: torch.Tensor,
                 gens: list[torch.Generator]) -> torch.Tensor:
        dev = self.device
        img = (x.to(dev) / 127.5 - 1.0)
        mask = 1.0 - hole.to(dev)  # MAT: 1 = known, 0 = hole
        c = torch.zeros(x.shape[0], self.G.c_dim, device=dev)
        dtype = PRECISIONS[self.precision]
        with torch.autocast(device_type=dev.type, dtype=dtype, enabled=dtype is not None):
            out = self.G(img, mask, z.to(dev), c, truncation_psi=self.truncation_psi, noise_mode=self.noise_mode,
                         generator=gens)
        out = (out.float() + 1.0) / 2.0
        return out.clamp(0.0, 1.0).cpu()

    # ------------------------------------------------------------------ provenance

    def describe(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {
            "name": self.name,
            "weights": {"path": str(ck.path), "sha256": ck.sha256, "format": ck.format, "network": ck.network,
                        "id": self.weights_id, "verified": self.weights_verified},
            "config": dict(ck.config),
            "native_resolution": self.native_resolution,
            "truncation_psi": self.truncation_psi,
            "noise_mode": self.noise_mode,
            "noise_mode_source": self.noise_mode_source,
            "z_policy": Z_POLICY,
            "seed": self.seed,
            "precision": self.precision,
            "impl": self.impl,
            "device": str(self.device),
            "micro_batch": self.micro_batch,
            "resize_policy": self.resize_policy,
            "mask_convention": "harness holes True=missing -> MAT mask 1=known/0=hole",
            "value_range": list(self.value_range),
        }


class _LiveGenerator:
    """A generator module handed to :class:`MATInpainter` instead of a weights file."""

    def __init__(self, module: torch.nn.Module, checkpoint: MATCheckpoint):
        self.module, self.checkpoint = module, checkpoint


def build_mat(weights: str | Path | None = None, *, weights_id: str | None = None,
              weights_dir: str | None = None, offline: bool | None = None, allow_unverified: bool = False,
              **kwargs: Any) -> MATInpainter:
    """Factory behind the registry ids: a local ``weights`` file, or a registered ``weights_id``."""
    verified: bool | str | None = None
    if weights is None:
        if weights_id is None:
            raise WeightsError("model 'mat' needs weights=PATH (an official .pkl, a state-dict .pth or "
                               "our .safetensors)", "pass --weights /path/to/file (Python: weights=PATH)")
        from inpaintbench.weights import resolve_weights

        resolved = resolve_weights(weights_id, weights_dir=weights_dir, offline=offline,
                                   allow_unverified=allow_unverified)
        weights, verified = resolved.path, resolved.verified
    return MATInpainter(weights, weights_id=weights_id, weights_verified=verified, **kwargs)
