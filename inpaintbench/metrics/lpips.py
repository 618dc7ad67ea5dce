"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric") through the ``lpips`` package, batched, with no hidden download.

MAT's ``cal_lpips.py`` calls ``lpips.LPIPS(net='alex')`` on one pair per forward with inputs
``uint8/127.5 - 1``; LaMa uses the VGG trunk. Values here are the package's, computed on whole
batches (``tests/test_lpips.py``: batched and per-pair agree to ~1e-9).

``lpips.LPIPS(pretrained=True)`` would let torchvision download the ImageNet trunk into the
torch.hub cache. We build it with ``pnet_rand=True`` (random trunk, nothing fetched), load the
trunk's conv weights from our weights registry (:mod:`inpaintbench.weights`, hash-checked), and
the linear heads from the files bundled inside the lpips wheel (``lpips/weights/v0.1/<net>.pth``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.metrics.inputs import as_uint8_tensor
from inpaintbench.weights import ResolvedWeights, resolve_weights, sha256_file

TRUNK_WEIGHTS = {"alex": "torchvision-alexnet", "vgg": "torchvision-vgg16"}
LPIPS_VERSION = "0.1"


#: Dilation of the hole for ``lpips_hole``, in pixels (a (2·8+1)² square). Why 8: the composite
#: equals the ground truth outside the hole, but the seam — where inpainting most often fails
#: (colour steps, blending halos) — lies at the hole's edge and is seen by features whose receptive
#: field straddles it; AlexNet's coarsest LPIPS layer (conv5) has stride 16, and its bilinearly
#: upsampled map spreads a seam's error over about ±8 px (half a cell). A wider margin would bring
#: back the untouched area that ``lpips_hole`` exists to exclude.
HOLE_MARGIN = 8


def dilate_holes(holes: torch.Tensor, margin: int = HOLE_MARGIN) -> torch.Tensor:
    """bool [B,H,W] holes dilated by ``margin`` px with a (2·margin+1)² square (Chebyshev distance)."""
    if margin <= 0:
        return holes.bool()
    h = holes.float()[:, None]
    return torch.nn.functional.max_pool2d(h, 2 * margin + 1, stride=1, padding=margin)[:, 0] > 0.5


def lin_weights_path(net: str) -> Path:
    """The linear-head file bundled in the lpips package (no download needed)."""
    import lpips as _lp

    return Path(_lp.__file__).resolve().parent / "weights" / f"v{LPIPS_VERSION}" / f"{net}.pth"


def to_nchw_float(images: Any, device: torch.device | str) -> torch.Tensor:
    """uint8 [B,H,W,3] (numpy or tensor) → float32 [B,3,H,W] in [-1, 1] (``x/127.5 - 1``)."""
    t = as_uint8_tensor(images, "images").to(device)
    return t.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0


def load_trunk_state(model: torch.nn.Module, state: dict[str, torch.Tensor], net: str) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into the lpips trunk's ``slice<k>.<i>.*``.

    Only the conv part of the torchvision file is used; the classifier keys are ignored, so a file
    holding just ``features.*`` (as the tests write) works too.
    """
    if not isinstance(state, dict):
        raise WeightsError(f"the {net} trunk file holds a {type(state).__name__}, not a state dict",
                           f"re-fetch it with `inpaintbench weights fetch {TRUNK_WEIGHTS[net]}`")
    targets = dict(model.net.named_parameters())
    missing = []
    with torch.no_grad():
        for name, param in targets.items():
            m = re.fullmatch(r"slice\d+\.(\d+)\.(weight|bias)", name)
            if m is None:
                raise RuntimeError(f"unexpected lpips trunk parameter {name}")
            src = state.get(f"features.{m.group(1)}.{m.group(2)}")
            if src is None or tuple(src.shape) != tuple(param.shape):
                missing.append(f"features.{m.group(1)}.{m.group(2)}")
                continue
            param.copy_(src.to(param.dtype))
    if missing:
        raise WeightsError(f"{net} trunk file lacks or mis-shapes {len(missing)} tensors (e.g. {missing[0]})",
                           f"re-fetch it with `inpaintbench weights fetch {TRUNK_WEIGHTS[net]}`")


def build_lpips(net: str, trunk_state: dict[str, torch.Tensor] | None) -> torch.nn.Module:
    """An ``lpips.LPIPS`` without any download: random trunk replaced by ``trunk_state``."""
    import lpips as _lp

    # The package prints a banner, and torchvision warns about the deprecated `pretrained=` the
    # package passes (False here: nothing is downloaded).
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = _lp.LPIPS(pretrained=True, net=net, version=LPIPS_VERSION, pnet_rand=True,
                          model_path=str(lin_weights_path(net)), verbose=False)
    if trunk_state is not None:
        load_trunk_state(model, trunk_state, net)
    return model.eval().requires_grad_(False)


class LPIPSMetric:
    """Batched LPIPS on uint8 images. ``net`` is ``"alex"`` (MAT) or ``"vgg"`` (LaMa).

    The forward always runs in float32 with autocast disabled, whatever the model ran in.
    """

    def __init__(self, net: str = "alex", device: str | torch.device = "cpu",
                 weights_dir: str | os.PathLike[str] | None = None, offline: bool | None = None,
                 allow_unverified: bool = False, max_batch: int = 64,
                 resolved: ResolvedWeights | None = None):
        if net not in TRUNK_WEIGHTS:
            raise InputError(f"unknown LPIPS net {net!r}", "use 'alex' (MAT) or 'vgg' (LaMa)")
        self.net = net
        self.device = torch.device(device)
        self.max_batch = max_batch
        self.trunk = resolved or resolve_weights(TRUNK_WEIGHTS[net], weights_dir, offline=offline,
                                                 allow_unverified=allow_unverified)
        try:
            state = torch.load(self.trunk.path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - unreadable or not a plain state dict
            raise WeightsError(f"{self.trunk.path} is not a readable PyTorch state dict ({type(e).__name__})",
                               f"re-fetch it with `inpaintbench weights fetch {TRUNK_WEIGHTS[net]}`") from None
        self.model = build_lpips(net, state).to(self.device)

    @torch.no_grad()
    def __call__(self, pred_u8: Any, gt_u8: Any) -> torch.Tensor:
        """LPIPS per pair, float64 [B] on CPU."""
        a = as_uint8_tensor(pred_u8, "pred")
        b = as_uint8_tensor(gt_u8, "gt")
        if a.shape != b.shape:
            raise InputError(f"pred {tuple(a.shape)} and gt {tuple(b.shape)} differ in shape",
                             "score images of the same size")
        return self.forward_nchw(to_nchw_float(a, self.device), to_nchw_float(b, self.device))

    @torch.no_grad()
    def forward_nchw(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS for float [-1,1] NCHW batches already on the device (shared with the suite)."""
        out = []
        with torch.autocast(device_type=self.device.type, enabled=False):
            for i in range(0, x.shape[0], self.max_batch):
                xi = x[i:i + self.max_batch].float()
                yi = y[i:i + self.max_batch].float()
                out.append(self.model(xi, yi).reshape(-1))
        return torch.cat(out).double().cpu() if out else torch.zeros(0, dtype=torch.float64)

    @torch.no_grad()
    def forward_nchw_with_hole(self, x: torch.Tensor, y: torch.Tensor, holes: torch.Tensor,
                               margin: int = HOLE_MARGIN) -> tuple[torch.Tensor, torch.Tensor]:
        """(whole-image LPIPS, hole LPIPS) per pair, float64 [B] each, from one trunk pass.

        The whole-image value repeats the package's arithmetic exactly (per-layer spatial means,
        summed in layer order). The hole value averages the package's ``spatial=True`` map (each
        layer's map bilinearly upsampled to the input size, then summed) over the hole dilated by
        ``margin`` pixels (:func:`dilate_holes`); NaN for an image without hole pixels.
        """
        import lpips as _lp

        whole, hole = [], []
        with torch.autocast(device_type=self.device.type, enabled=False):
            for i in range(0, x.shape[0], self.max_batch):
                xi, yi = x[i:i + self.max_batch].float(), y[i:i + self.max_batch].float()
                m = self.model
                o0, o1 = m.net.forward(m.scaling_layer(xi)), m.net.forward(m.scaling_layer(yi))
                val: Any = 0
                spatial: Any = 0
                for kk in range(m.L):
                    diff = (_lp.normalize_tensor(o0[kk]) - _lp.normalize_tensor(o1[kk])) ** 2
                    layer = m.lins[kk](diff)
                    val += _lp.spatial_average(layer, keepdim=True)
                    spatial += _lp.upsample(layer, out_HW=xi.shape[2:])
                mask = dilate_holes(holes[i:i + self.max_batch], margin).to(spatial.dtype)[:, None]
                count = mask.sum(dim=(1, 2, 3))
                total = (spatial.double() * mask.double()).sum(dim=(1, 2, 3))
                whole.append(val.reshape(-1).double().cpu())
                hole.append(torch.where(count > 0, total / count.double().clamp(min=1), torch.nan).cpu())
        if not whole:
            empty = torch.zeros(0, dtype=torch.float64)
            return empty, empty
        return torch.cat(whole), torch.cat(hole)

    def describe(self) -> dict[str, Any]:
        lin = lin_weights_path(self.net)
        return {
            "metric": f"lpips-{self.net}", "lpips_version": LPIPS_VERSION, "input": "uint8/127.5-1",
            "trunk": self.trunk.to_manifest(),
            "lin_heads": {"path": str(lin), "sha256": _sha256_or_none(lin), "source": "lpips package"},
        }


def _sha256_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None
