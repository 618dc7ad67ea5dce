"""MAT's two-branch discriminator (full image and stage-1 image), with official parameter names."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from inpaintbench.models.mat.config import check_resolution, resolve_widths
from inpaintbench.models.mat.generator import MappingNet
from inpaintbench.models.mat.layers import Conv2dLayer, FullyConnectedLayer, MATModule, MinibatchStdLayer

_SQRT_HALF = float(np.sqrt(0.5))


class DisFromRGB(MATModule):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = Conv2dLayer(in_channels, out_channels, 1, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DisBlock(MATModule):
    """Residual block: ``sqrt(1/2) * (skip(x) + conv1(conv0(x)))`` with 2x FIR downsampling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x, gain=_SQRT_HALF)
        return skip + self.conv1(self.conv0(x), gain=_SQRT_HALF)


class Discriminator(MATModule):
    """``D(images, masks, images_stg1, c=None) -> (logits [B,1], logits_stg1 [B,1])``.

    Inputs are ``cat([mask - 0.5, image])`` with MAT's mask convention (1 = known). The stage-1 branch
    has half the channels. ``mbstd_group_size`` is a constructor argument (official checkpoints keep it in
    the pickled init kwargs, 4 by default, 8 in the official training configs).
    """

    def __init__(self, img_resolution: int = 256, c_dim: int = 0, img_channels: int = 3, *,
                 channel_base: int | None = None, channel_max: int | None = None, cmap_dim: int | None = None,
                 mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1, config: str | None = None):
        super().__init__()
        self.img_resolution = check_resolution(img_resolution)
        self.c_dim, self.img_channels = c_dim, img_channels
        self.mbstd_group_size, self.mbstd_num_channels = mbstd_group_size, mbstd_num_channels
        widths = resolve_widths(config, channel_base=channel_base, channel_max=channel_max)
        self.widths = widths
        nf = widths.nf
        res_log2 = int(math.log2(self.img_resolution))
        if cmap_dim is None:
            cmap_dim = nf(4)
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        if c_dim > 0:
            self.mapping = MappingNet(0, c_dim, cmap_dim, num_ws=None, w_avg_beta=None)

        def branch(div: int) -> nn.Sequential:
            layers: list[nn.Module] = [DisFromRGB(img_channels + 1, nf(2 ** res_log2) // div)]
            for r in range(res_log2, 2, -1):
                layers.append(DisBlock(nf(2 ** r) // div, nf(2 ** (r - 1)) // div))
            if mbstd_num_channels > 0:
                layers.append(MinibatchStdLayer(mbstd_group_size, mbstd_num_channels))
            layers.append(Conv2dLayer(nf(4) // div + mbstd_num_channels, nf(4) // div, 3, activation="lrelu"))
            return nn.Sequential(*layers)

        out_dim = 1 if cmap_dim == 0 else cmap_dim
        self.Dis = branch(1)
        self.fc0 = FullyConnectedLayer(nf(4) * 16, nf(4), activation="lrelu")
        self.fc1 = FullyConnectedLayer(nf(4), out_dim)
        self.Dis_stg1 = branch(2)
        self.fc0_stg1 = FullyConnectedLayer(nf(4) // 2 * 16, nf(4) // 2, activation="lrelu")
        self.fc1_stg1 = FullyConnectedLayer(nf(4) // 2, out_dim)

    def init_kwargs(self) -> dict[str, Any]:
        return {"img_resolution": self.img_resolution, "c_dim": self.c_dim, "img_channels": self.img_channels,
                "cmap_dim": self.cmap_dim if self.c_dim > 0 else None,
                "mbstd_group_size": self.mbstd_group_size, "mbstd_num_channels": self.mbstd_num_channels,
                "channel_base": self.widths.channel_base, "channel_max": self.widths.channel_max}

    def forward(self, images: torch.Tensor, masks: torch.Tensor, images_stg1: torch.Tensor,
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        masks = masks.to(images.dtype)
        x = torch.cat([masks - 0.5, images], dim=1)
        xs = torch.cat([masks - 0.5, images_stg1], dim=1)
        x = x.contiguous(memory_format=self.memory_format)
        xs = xs.contiguous(memory_format=self.memory_format)
        x = self.Dis(x).contiguous()
        x = self.fc1(self.fc0(x.flatten(start_dim=1)))
        xs = self.Dis_stg1(xs).contiguous()
        xs = self.fc1_stg1(self.fc0_stg1(xs.flatten(start_dim=1)))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"c must have shape [B, {self.c_dim}]")
            cmap = self.mapping(None, c)
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
            xs = (xs * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x, xs
