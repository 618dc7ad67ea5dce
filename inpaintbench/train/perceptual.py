"""MAT's perceptual loss: L1 between VGG19 features of the output and of the real image.

Conventions (MAT ``losses/pcp.py`` and ``losses/vggNet.py``): torchvision VGG19 with ImageNet weights;
inputs mapped from [-1, 1] to [0, 1] then normalised with the ImageNet mean/std; features taken
**before** the ReLU of ``conv4_4`` (weight 1/4) and ``conv5_4`` (weight 1/2); criterion mean L1 per
layer; the target's features are detached. Weights come from the registry id ``torchvision-vgg19``
(never downloaded behind the user's back: see :mod:`inpaintbench.weights`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

VGG19_WEIGHTS_ID = "torchvision-vgg19"
# Index of each conv layer's output (pre-ReLU) in torchvision's ``vgg19().features``.
VGG19_LAYERS = {"conv1_1": 0, "conv2_1": 5, "conv3_1": 10, "conv4_4": 25, "conv5_4": 34}
MAT_LAYER_WEIGHTS = {"conv4_4": 0.25, "conv5_4": 0.5}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGPerceptualLoss(nn.Module):
    """``loss(x, y) = sum_l w_l * mean|phi_l(x) - phi_l(y)|`` with MAT's layers and weights."""

    def __init__(self, state_dict: dict[str, torch.Tensor], layer_weights: dict[str, float] | None = None):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.layer_weights = dict(layer_weights or MAT_LAYER_WEIGHTS)
        last = max(VGG19_LAYERS[k] for k in self.layer_weights)
        with torch.device("meta"):  # torchvision's VGG19 "E" layer list, without a throw-away random init
            features = make_layers(cfgs["E"], batch_norm=False)[: last + 1]
        sd = {k[len("features."):]: v for k, v in state_dict.items() if k.startswith("features.")}
        wanted = features.state_dict()
        missing = [k for k in wanted if k not in sd]
        if missing:
            raise ValueError(f"VGG19 state dict lacks {missing[:3]}...")
        features.load_state_dict({k: sd[k].float() for k in wanted}, assign=True)
        # torchvision's ReLUs are in-place: the ReLU after conv4_4 would overwrite the tapped tensor, so
        # the loss would see post-ReLU features. MAT (losses/pcp.py) uses the pre-ReLU outputs.
        for layer in features:
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
        self.features = features.eval().requires_grad_(False)
        self.taps = {VGG19_LAYERS[k]: k for k in self.layer_weights}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGPerceptualLoss:  # the extractor always stays in eval mode
        return self

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = ((x + 1) * 0.5 - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out[self.taps[i]] = x
        return out

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fx = self.extract(x)
        with torch.no_grad():
            fy = self.extract(target.detach())
        loss = x.new_zeros(())
        for name, w in self.layer_weights.items():
            loss = loss + w * F.l1_loss(fx[name], fy[name])
        return loss


def load_perceptual(weights_dir: str | None = None, offline: bool | None = None, allow_unverified: bool = False
                    ) -> tuple[VGGPerceptualLoss, dict[str, Any]]:
    """Build the loss from the registered VGG19 file; returns it and the weights' manifest record."""
    from inpaintbench.weights import resolve_weights

    resolved = resolve_weights(VGG19_WEIGHTS_ID, weights_dir=weights_dir, offline=offline,
                               allow_unverified=allow_unverified)
    state = torch.load(resolved.path, map_location="cpu", weights_only=True)
    return VGGPerceptualLoss(state), resolved.to_manifest()
