"""DISTS (Ding, Ma, Wang & Simoncelli 2020, "Image Quality Assessment: Unifying Structure and Texture
Similarity", TPAMI), per image, as the authors' ``DISTS_pytorch`` package computes it.

* Input: RGB in [0, 1] (uint8/255), no resize (the package's default ``prepare_image(resize=False)``),
  ImageNet mean/std.
* Trunk: torchvision VGG16 ``features`` up to relu5_3, each max-pool replaced by an "L2 pooling"
  √(h ∗ x² + 1e-12), h = the normalised outer product of ``hanning(5)[1:-1]``, stride 2, padding 1,
  per channel. Stages are taken after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, plus the input.
* Per channel j of stage k: structure S₁ = (2μₓμᵧ + c₁)/(μₓ² + μᵧ² + c₁) and texture
  S₂ = (2σₓᵧ + c₂)/(σₓ² + σᵧ² + c₂) (population moments over the spatial map), c₁ = c₂ = 1e-6;
  DISTS = 1 − Σ (αₖⱼ S₁ + βₖⱼ S₂) with α, β divided by Σα + Σβ.

Weights: the VGG16 trunk through the registry (``torchvision-vgg16``, hash-checked, the file LPIPS-VGG
uses) and α, β from the file bundled in the ``DISTS_pytorch`` wheel (``weights.pt``, read with
``weights_only=True``; its sha256 goes into the manifest), so nothing is downloaded (the package
itself would call ``torchvision.models.vgg16(pretrained=True)``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaintbench.errors import WeightsError
from inpaintbench.weights import ResolvedWeights, resolve_weights, sha256_file

TRUNK_WEIGHTS = "torchvision-vgg16"
CHANNELS = (3, 64, 128, 256, 512, 512)
#: torchvision VGG16 ``features`` indices of the max-pools DISTS replaces, and the stage ends
_POOLS = (4, 9, 16, 23)
_STAGE_ENDS = (4, 9, 16, 23, 30)
_C1 = _C2 = 1e-6


def alpha_beta_path() -> Path:
    """``weights.pt`` inside the installed DISTS_pytorch package (α, β of the authors' release)."""
    spec = importlib.util.find_spec("DISTS_pytorch")
    if spec is None or spec.origin is None:
        raise WeightsError("DISTS α/β weights not found: the DISTS_pytorch package is not installed",
                           "pip install dists-pytorch (its wheel ships weights.pt; nothing is downloaded)")
    path = Path(spec.origin).parent / "weights.pt"
    if not path.is_file():
        raise WeightsError(f"DISTS α/β weights not found at {path}", "reinstall dists-pytorch")
    return path


class L2Pool(torch.nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        a = np.hanning(5)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        g = g / g.sum()
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.conv2d(x**2, self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTSNet(torch.nn.Module):
    """VGG16 stages with L2 pooling and the α/β heads; ``forward(x, y)`` -> DISTS [B] (inputs in [0, 1])."""

    def __init__(self, trunk_state: dict[str, torch.Tensor] | None, alpha: torch.Tensor, beta: torch.Tensor):
        super().__init__()
        import torchvision

        features = torchvision.models.vgg16(weights=None).features
        if trunk_state is not None:
            own = {k[len("features."):]: v for k, v in trunk_state.items() if k.startswith("features.")}
            try:
                features.load_state_dict(own, strict=True)
            except RuntimeError as e:
                raise WeightsError(f"VGG16 trunk file does not fit: {str(e).splitlines()[0]}",
                                   f"re-fetch it with `inpaintbench weights fetch {TRUNK_WEIGHTS}`") from None
        layers = list(features[:_STAGE_ENDS[-1]])
        for i in _POOLS:  # max-pool -> L2 pooling over the channels of the conv before it
            layers[i] = L2Pool(next(m.out_channels for m in reversed(layers[:i]) if hasattr(m, "out_channels")))
        self.stages = torch.nn.ModuleList()
        start = 0
        for end in _STAGE_ENDS:
            self.stages.append(torch.nn.Sequential(*layers[start:end]))
            start = end
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))
        total = alpha.sum() + beta.sum()
        self.register_buffer("alpha", (alpha / total).reshape(1, -1, 1, 1).float())
        self.register_buffer("beta", (beta / total).reshape(1, -1, 1, 1).float())

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [x]
        h = (x - self.mean) / self.std
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self._stages(x), self._stages(y)
        alphas = torch.split(self.alpha, list(CHANNELS), dim=1)
        betas = torch.split(self.beta, list(CHANNELS), dim=1)
        structure = texture = 0
        for a, b, u, v in zip(alphas, betas, fx, fy, strict=True):
            mu_u, mu_v = u.mean([2, 3], keepdim=True), v.mean([2, 3], keepdim=True)
            s1 = (2 * mu_u * mu_v + _C1) / (mu_u**2 + mu_v**2 + _C1)
            structure = structure + (a * s1).sum(1, keepdim=True)
            var_u = ((u - mu_u) ** 2).mean([2, 3], keepdim=True)
            var_v = ((v - mu_v) ** 2).mean([2, 3], keepdim=True)
            cov = (u * v).mean([2, 3], keepdim=True) - mu_u * mu_v
            s2 = (2 * cov + _C2) / (var_u + var_v + _C2)
            texture = texture + (b * s2).sum(1, keepdim=True)
        return (1 - (structure + texture)).reshape(-1)


class DISTSMetric:
    """Batched DISTS on uint8 images already on the device (float32, autocast off)."""

    def __init__(self, device: str | torch.device = "cpu", weights_dir: str | os.PathLike[str] | None = None,
                 offline: bool | None = None, allow_unverified: bool = False, max_batch: int = 16,
                 resolved: ResolvedWeights | None = None):
        self.device = torch.device(device)
        self.max_batch = int(max_batch)
        self.trunk = resolved or resolve_weights(TRUNK_WEIGHTS, weights_dir, offline=offline,
                                                 allow_unverified=allow_unverified)
        self.alpha_beta = alpha_beta_path()
        try:
            state = torch.load(self.trunk.path, map_location="cpu", weights_only=True)
            ab = torch.load(self.alpha_beta, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - unreadable or not a plain state dict
            raise WeightsError(f"cannot read DISTS weights ({type(e).__name__}: {e})",
                               f"re-fetch with `inpaintbench weights fetch {TRUNK_WEIGHTS}`") from None
        self.model = DISTSNet(state, ab["alpha"], ab["beta"]).to(self.device).eval().requires_grad_(False)

    @torch.no_grad()
    def forward_nchw_u8(self, p: torch.Tensor, g: torch.Tensor) -> np.ndarray:
        """DISTS of uint8 NCHW pairs, float64 [B] numpy."""
        out = []
        with torch.autocast(device_type=self.device.type, enabled=False):
            for i in range(0, p.shape[0], self.max_batch):
                x = p[i:i + self.max_batch].float() / 255.0
                y = g[i:i + self.max_batch].float() / 255.0
                out.append(self.model(x, y).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)

    def describe(self) -> dict[str, Any]:
        return {"metric": "dists", "trunk": self.trunk.to_manifest(),
                "alpha_beta": {"path": str(self.alpha_beta), "sha256": sha256_file(self.alpha_beta),
                               "source": "DISTS_pytorch package"}}
