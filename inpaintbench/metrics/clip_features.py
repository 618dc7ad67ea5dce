"""CLIP ViT-L/14@336 image embeddings for CMMD, following Jayasumana et al. 2024 ("Rethinking FID",
CVPR) and google-research ``cmmd``:

* image (``io_util._center_crop_and_resize``): centre square crop of side min(H, W), PIL
  ``resize((336, 336), BICUBIC)`` (antialiased), float /255;
* ``embedding._clip_preprocess``: a resize to 336 (the identity after the above) and CLIP's
  normalisation, mean (0.48145466, 0.4578275, 0.40821073), std (0.26862954, 0.26130258, 0.27577711);
* the image tower's projected embedding (768-d), L2-normalised (scenic's CLIP returns normalised
  embeddings; the paper: "normalized CLIP embeddings").

The network is open_clip's vision tower of ``ViT-L-14-336`` with QuickGELU (OpenAI's activation;
open_clip's ``openai`` tag sets ``quick_gelu``), built with no pretrained download and loaded from
the registry's file (open_clip's safetensors of the OpenAI weights; the text tower's tensors in
that file are not needed and are skipped).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from inpaintbench.errors import WeightsError
from inpaintbench.metrics.embedders import Embedder
from inpaintbench.metrics.netweights import CLIP_WEIGHTS, read_state_dict
from inpaintbench.weights import ResolvedWeights, resolve_weights

MODEL_NAME = "ViT-L-14-336"
INPUT_SIZE = 336


def build_vision_tower(embed_dim: int | None = None, vision_cfg: dict[str, Any] | None = None) -> torch.nn.Module:
    """open_clip's CLIP image tower (QuickGELU); default: the ViT-L-14-336 configuration."""
    import open_clip
    from open_clip.model import _build_vision_tower

    cfg = open_clip.get_model_config(MODEL_NAME)
    return _build_vision_tower(embed_dim or cfg["embed_dim"], vision_cfg or cfg["vision_cfg"], quick_gelu=True)


def load_weights(tower: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``visual.*`` tensors of a whole open_clip CLIP state dict (or a bare tower's) into ``tower``."""
    visual = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
    if not visual:
        visual = dict(state)
    try:
        tower.load_state_dict(visual, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"CLIP weights do not fit open_clip {MODEL_NAME}: {str(e).splitlines()[0]}",
                           f"import open_clip's ViT-L-14-336 openai safetensors with `inpaintbench weights "
                           f"import {CLIP_WEIGHTS} PATH`") from None


class CLIPExtractor(Embedder):
    space = "clip"
    name = "clip-vitl14-336"
    description = ("CLIP ViT-L/14@336 image embedding (open_clip ViT-L-14-336, QuickGELU, OpenAI weights), "
                   "L2-normalised; centre crop + PIL bicubic to 336, CLIP mean/std (google-research/cmmd)")
    input_size = INPUT_SIZE
    centre_crop = True
    mean = (0.48145466, 0.4578275, 0.40821073)
    std = (0.26862954, 0.26130258, 0.27577711)

    def __init__(self, weights: ResolvedWeights | None, device: str | torch.device = "cpu", max_batch: int = 32,
                 net: torch.nn.Module | None = None):
        if net is None:
            net = build_vision_tower()
            if weights is not None:
                load_weights(net, read_state_dict(weights.path, CLIP_WEIGHTS))
        super().__init__(net, weights, device, max_batch, feature_dim=int(net.output_dim))
        self.input_size = int(net.image_size[0]) if isinstance(net.image_size, tuple) else int(net.image_size)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.net(x), dim=-1)


def create_clip(device: str | torch.device = "cpu", weights_dir: str | os.PathLike[str] | None = None,
                offline: bool | None = None, allow_unverified: bool = False, max_batch: int = 32) -> CLIPExtractor:
    """Resolve ``clip-vitl14-336`` through the weights registry (no download when offline) and build."""
    weights = resolve_weights(CLIP_WEIGHTS, weights_dir, offline=offline, allow_unverified=allow_unverified)
    return CLIPExtractor(weights, device=device, max_batch=max_batch)
