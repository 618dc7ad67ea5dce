"""DINOv2 ViT-L/14 CLS features for FD-DINOv2 and PRDC-DINOv2, following Stein et al. 2023
("Exposing flaws of generative model evaluation metrics and their unfair treatment of diffusion
models", NeurIPS) and their code, layer6ai-labs/dgm-eval (``dgm_eval/models/dinov2.py``):

* image: PIL ``Resize((224, 224), BICUBIC)`` of the RGB image (no crop, aspect not kept), ``ToTensor``
  (/255), ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225);
* network: torch.hub ``dinov2_vitl14`` (Meta's ``dinov2_vitl14_pretrain.pth``), whose forward returns
  the CLS token after the final LayerNorm (``x_norm_clstoken``, identity head): 1024-d;
* the hub model is built for 518 px (37×37 patch grid) and interpolates its position embedding at
  run time for 224 px input (16×16): bicubic, no antialias, with DINO's ``interpolate_offset`` of
  0.1 — ``scale_factor = (16 + 0.1) / 37`` rather than a target size (dinov2
  ``models/vision_transformer.py``, ``interpolate_pos_encoding``).

Here the network is timm's ``vit_large_patch14_dinov2`` built for ``img_size=224`` (no torch.hub
code). Meta's file is converted the way timm's ``_convert_dinov2`` does (drop ``mask_token``; the
SwiGLU ``w12``/``w3`` names of ViT-g become ``fc1``/``fc2``), and its 37×37 position embedding is
resampled once at load with the hub's own rule above, so the 224-px forward is the hub model's
(timm's own loader would resample with ``size=`` and antialias, a slightly different grid). timm's
file of the same weights (timm key names, 37×37 embedding) loads through the same path.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import torch

from inpaintbench.errors import WeightsError
from inpaintbench.metrics.embedders import Embedder
from inpaintbench.metrics.netweights import DINOV2_WEIGHTS, read_state_dict
from inpaintbench.weights import ResolvedWeights, resolve_weights

ARCH = "vit_large_patch14_dinov2"
INPUT_SIZE = 224
PATCH = 14
#: DINO's historical offset added to the target grid before computing the scale factor
INTERPOLATE_OFFSET = 0.1


def build_network(arch: str = ARCH, **overrides: Any) -> torch.nn.Module:
    """timm ViT for 224-px input, no classifier (forward = CLS token after the final norm)."""
    import timm

    kwargs: dict[str, Any] = {"pretrained": False, "img_size": INPUT_SIZE, "num_classes": 0}
    kwargs.update(overrides)
    return timm.create_model(arch, **kwargs)


def resample_pos_embed_hub(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """[1, 1 + M², D] -> [1, 1 + grid², D] as DINOv2's hub model does at run time (module docstring).
    Computed in float32, as the hub does (``pos_embed.float()``)."""
    n = pos_embed.shape[1] - 1
    m = int(round(math.sqrt(n)))
    if m * m != n:
        raise WeightsError(f"DINOv2 position embedding has {n} patch positions, not a square grid",
                           "import Meta's dinov2_vitl14_pretrain.pth")
    if m == grid:
        return pos_embed
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:].float()
    dim = patch_pos.shape[-1]
    scale = (grid + INTERPOLATE_OFFSET) / m
    out = torch.nn.functional.interpolate(patch_pos.reshape(1, m, m, dim).permute(0, 3, 1, 2),
                                          scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if out.shape[-2:] != (grid, grid):  # pragma: no cover - floor((grid+0.1)/m·m) == grid always
        raise AssertionError(out.shape)
    out = out.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(pos_embed.dtype)
    return torch.cat([cls_pos, out], dim=1)


def convert_state_dict(state: dict[str, torch.Tensor], grid: int) -> dict[str, torch.Tensor]:
    """Meta's (or timm's) DINOv2 keys -> timm's, position embedding resampled to ``grid``×``grid``."""
    if "register_tokens" in state:
        raise WeightsError("this DINOv2 file has register tokens (a *_reg model), not dinov2_vitl14",
                           "import Meta's dinov2_vitl14_pretrain.pth")
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k == "mask_token":  # used only by DINOv2's masked-image training
            continue
        k = re.sub(r"^(blocks\.\d+\.mlp\.)w12\.", r"\1fc1.", k)
        k = re.sub(r"^(blocks\.\d+\.mlp\.)w3\.", r"\1fc2.", k)
        out[k] = v
    if "pos_embed" not in out:
        raise WeightsError("not a DINOv2 state dict (no pos_embed)", "import Meta's dinov2_vitl14_pretrain.pth")
    out["pos_embed"] = resample_pos_embed_hub(out["pos_embed"], grid)
    return out


def load_weights(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    grid = INPUT_SIZE // PATCH
    converted = convert_state_dict(state, grid)
    try:
        net.load_state_dict(converted, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"DINOv2 weights do not fit {ARCH}: {str(e).splitlines()[0]}",
                           f"import Meta's dinov2_vitl14_pretrain.pth with `inpaintbench weights import "
                           f"{DINOV2_WEIGHTS} PATH`") from None


class DINOv2Extractor(Embedder):
    space = "dinov2"
    name = "dinov2-vitl14"
    description = ("DINOv2 ViT-L/14 (timm vit_large_patch14_dinov2, img_size 224, hub pos-embed interpolation), "
                   "CLS token after final norm; PIL bicubic resize to 224×224, ImageNet mean/std (dgm-eval)")
    input_size = INPUT_SIZE
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)

    def __init__(self, weights: ResolvedWeights | None, device: str | torch.device = "cpu", max_batch: int = 32,
                 net: torch.nn.Module | None = None):
        if net is None:
            net = build_network()
            if weights is not None:
                load_weights(net, read_state_dict(weights.path, DINOV2_WEIGHTS))
        super().__init__(net, weights, device, max_batch, feature_dim=int(net.num_features))


def create_dinov2(device: str | torch.device = "cpu", weights_dir: str | os.PathLike[str] | None = None,
                  offline: bool | None = None, allow_unverified: bool = False, max_batch: int = 32) -> DINOv2Extractor:
    """Resolve ``dinov2-vitl14`` through the weights registry (no download when offline) and build."""
    weights = resolve_weights(DINOV2_WEIGHTS, weights_dir, offline=offline, allow_unverified=allow_unverified)
    return DINOv2Extractor(weights, device=device, max_batch=max_batch)
