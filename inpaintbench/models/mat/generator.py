"""MAT generator: transformer first stage, convolutional second stage, and the Generator that runs them.

The mapping network (z -> w) and the feature-mixing maps are in :mod:`.mapping`.

Architecture of Li et al., "MAT: Mask-Aware Transformer for Large Hole Image Inpainting" (CVPR 2022);
module and parameter names equal the official ones so that official checkpoints load strictly.
Masks are MAT's convention inside the network: **1 = known pixel, 0 = hole**, exactly 0/1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.models.mat.attention import (
    BasicLayer,
    PatchMerging,
    PatchUpsampling,
    feature2token,
    token2feature,
)
from inpaintbench.models.mat.config import Widths, check_resolution, resolve_widths
from inpaintbench.models.mat.layers import (
    Conv2dLayer,
    Conv2dLayerPartial,
    FullyConnectedLayer,
    MATModule,
    StyleConv,
    ToRGB,
    inplace_add,
)

# The mapping network and the mixing-map helpers live in mapping.py; re-exported here for the
# callers of their old location (checkpoint loading, the discriminator, tests).
from inpaintbench.models.mat.mapping import (  # noqa: F401
    GeneratorArg,
    MappingNet,
    _check_mix_mask,
    draw_mix_mask,
    normalize_2nd_moment,
)

# --------------------------------------------------------------------------------------------------
# first stage (coarse, transformer)


class DecStyleBlock(MATModule):
    """First-stage decoder block: up-conv, skip add, conv, ToRGB, all with one 3*dim style code."""

    def __init__(self, res: int, in_channels: int, out_channels: int, style_dim: int, img_channels: int):
        super().__init__()
        self.res = res
        self.conv0 = StyleConv(in_channels, out_channels, style_dim, 2 ** res, up=2, use_noise=False)
        self.conv1 = StyleConv(out_channels, out_channels, style_dim, 2 ** res, use_noise=False)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, style: torch.Tensor, skip: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x = inplace_add(self.conv0(x, style, noise_mode="none"), skip)
        x = self.conv1(x, style, noise_mode="none")
        return x, self.toRGB(x, style, skip=img)


class _Pool(nn.Module):
    """Global average pool (the official AdaptiveAvgPool2d(1) slot; no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class FirstStage(MATModule):
    """Coarse inpainting: partial-conv encoder to 64x64 tokens, 5 transformer stages, style decoder."""

    depths = (2, 3, 4, 3, 2)
    ratios = (1.0, 0.5, 0.5, 2.0, 2.0)
    window_sizes = (8, 16, 16, 16, 8)

    def __init__(self, img_channels: int, img_resolution: int, w_dim: int, dim: int = 180, num_heads: int = 6):
        super().__init__()
        res = 64
        self.dim = dim
        self.conv_first = Conv2dLayerPartial(img_channels + 1, dim, 3, activation="lrelu")
        down_time = int(math.log2(img_resolution // res))
        self.enc_conv = nn.ModuleList(
            [Conv2dLayerPartial(dim, dim, 3, activation="lrelu", down=2) for _ in range(down_time)])
        self.tran = nn.ModuleList()
        for depth, ratio, ws in zip(self.depths, self.ratios, self.window_sizes, strict=True):
            res = int(res * ratio)
            if ratio < 1:
                merge: nn.Module | None = PatchMerging(dim, dim, down=int(1 / ratio))
            elif ratio > 1:
                merge = PatchUpsampling(dim, dim, up=int(ratio))
            else:
                merge = None
            self.tran.append(BasicLayer(dim, (res, res), depth, num_heads, ws, downsample=merge))
        # global style from the 16x16 bottleneck: four stride-2 convs to 1x1, then average pool
        self.down_conv = nn.Sequential(
            *[Conv2dLayer(dim, dim, 3, activation="lrelu", down=2) for _ in range(4)], _Pool())
        self.to_style = FullyConnectedLayer(dim, dim * 2, activation="lrelu")
        self.ws_style = FullyConnectedLayer(w_dim, dim, activation="lrelu")
        self.to_square = FullyConnectedLayer(dim, 16 * 16, activation="lrelu")
        style_dim = dim * 3
        self.dec_conv = nn.ModuleList()
        for _ in range(down_time):
            res *= 2
            self.dec_conv.append(DecStyleBlock(int(math.log2(res)), dim, dim, style_dim, img_channels))

    def forward(self, images: torch.Tensor, masks: torch.Tensor, ws: torch.Tensor,
                mix_mask: torch.Tensor | None = None, generator: GeneratorArg = None) -> torch.Tensor:
        x = torch.cat([masks - 0.5, images * masks], dim=1).contiguous(memory_format=self.memory_format)
        skips = []
        x, mask = self.conv_first(x, masks)
        skips.append(x)
        for i, block in enumerate(self.enc_conv):
            x, mask = block(x, mask)
            if i != len(self.enc_conv) - 1:
                skips.append(x)

        size = (x.shape[-2], x.shape[-1])
        x = feature2token(x)
        mask = feature2token(mask)
        mid = len(self.tran) // 2
        style = None
        for i, block in enumerate(self.tran):
            if i < mid:
                x, size, mask = block(x, size, mask)
                skips.append(x)
            elif i > mid:
                x, size, _ = block(x, size, None)
                x = inplace_add(x, skips[mid - i])
            else:
                x, size, _ = block(x, size, None)
                if mix_mask is None:
                    mix_mask = draw_mix_mask(tuple(x.shape), x, generator, channel_major=True)
                else:
                    mix_mask = _check_mix_mask(mix_mask, tuple(x.shape), "0", x)
                w_style = self.ws_style(ws[:, -1])
                add_n = self.to_square(w_style).unsqueeze(1)  # [B, 1, 256]
                if add_n.shape[-1] != x.shape[1]:
                    add_n = F.interpolate(add_n, size=x.shape[1], mode="linear", align_corners=False)
                add_n = add_n.squeeze(1).unsqueeze(-1)  # [B, N, 1]
                x = x * mix_mask + add_n * (1 - mix_mask)
                gs = self.to_style(self.down_conv(token2feature(x, size)).flatten(start_dim=1))
                style = torch.cat([gs, w_style], dim=1)

        x = token2feature(x, size).contiguous(memory_format=self.memory_format)
        img = None
        n = len(self.dec_conv)
        for i, block in enumerate(self.dec_conv):
            x, img = block(x, img, style, skips[n - i - 1])
        return img * (1 - masks) + images * masks


# --------------------------------------------------------------------------------------------------
# second stage (convolutional encoder / style decoder)


class EncFromRGB(MATModule):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 1, activation="lrelu")
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv0(x))


class ConvBlockDown(MATModule):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv0(x))


class Encoder(MATModule):
    """Input resolution down to 16x16; returns {log2(res): features}."""

    def __init__(self, res_log2: int, img_channels: int, widths: Widths):
        super().__init__()
        self.resolution = []
        for i in range(res_log2, 3, -1):
            res = 2 ** i
            self.resolution.append(res)
            if i == res_log2:
                block: nn.Module = EncFromRGB(img_channels * 2 + 1, widths.nf(res))
            else:
                block = ConvBlockDown(widths.nf(res * 2), widths.nf(res))
            setattr(self, f"EncConv_Block_{res}x{res}", block)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        out = {}
        for res in self.resolution:
            x = getattr(self, f"EncConv_Block_{res}x{res}")(x)
            out[int(math.log2(res))] = x
        return out


class ToStyle(MATModule):
    """Global style from the 16x16 features: three stride-2 convs, average pool, FC."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(*[Conv2dLayer(in_channels, in_channels, 3, activation="lrelu", down=2)
                                    for _ in range(3)])
        self.pool = _Pool()
        self.fc = FullyConnectedLayer(in_channels, out_channels, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(x)).flatten(start_dim=1))


def _style(ws: torch.Tensor, i: int, gs: torch.Tensor) -> torch.Tensor:
    return torch.cat([ws[:, i], gs], dim=1)


class DecBlockFirstV2(MATModule):
    """Second-stage decoder at 16x16: plain conv, encoder skip, style conv, ToRGB."""

    def __init__(self, res: int, in_channels: int, out_channels: int, style_dim: int, img_channels: int):
        super().__init__()
        self.res = res
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = StyleConv(in_channels, out_channels, style_dim, 2 ** res)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim)

    def forward(self, x, ws, gs, feats, noise_mode="random", generator=None):
        x = inplace_add(self.conv0(x), feats[self.res])
        x = self.conv1(x, _style(ws, 0, gs), noise_mode=noise_mode, generator=generator)
        return x, self.toRGB(x, _style(ws, 1, gs))


class DecBlock(MATModule):
    """Second-stage decoder block at 2**res: up style conv, encoder skip, style conv, ToRGB."""

    def __init__(self, res: int, in_channels: int, out_channels: int, style_dim: int, img_channels: int):
        super().__init__()
        self.res = res
        self.conv0 = StyleConv(in_channels, out_channels, style_dim, 2 ** res, up=2)
        self.conv1 = StyleConv(out_channels, out_channels, style_dim, 2 ** res)
        self.toRGB = ToRGB(out_channels, img_channels, style_dim)

    def forward(self, x, img, ws, gs, feats, noise_mode="random", generator=None):
        r = self.res
        x = inplace_add(self.conv0(x, _style(ws, 2 * r - 9, gs), noise_mode=noise_mode, generator=generator), feats[r])
        x = self.conv1(x, _style(ws, 2 * r - 8, gs), noise_mode=noise_mode, generator=generator)
        return x, self.toRGB(x, _style(ws, 2 * r - 7, gs), skip=img)


class Decoder(MATModule):
    def __init__(self, res_log2: int, style_dim: int, img_channels: int, widths: Widths):
        super().__init__()
        self.res_log2 = res_log2
        self.Dec_16x16 = DecBlockFirstV2(4, widths.nf(16), widths.nf(16), style_dim, img_channels)
        for r in range(5, res_log2 + 1):
            setattr(self, f"Dec_{2 ** r}x{2 ** r}",
                    DecBlock(r, widths.nf(2 ** (r - 1)), widths.nf(2 ** r), style_dim, img_channels))

    def forward(self, x, ws, gs, feats, noise_mode="random", generator=None):
        x, img = self.Dec_16x16(x, ws, gs, feats, noise_mode, generator)
        for r in range(5, self.res_log2 + 1):
            x, img = getattr(self, f"Dec_{2 ** r}x{2 ** r}")(x, img, ws, gs, feats, noise_mode, generator)
        return img


class SynthesisNet(MATModule):
    """Both stages; ``forward(images, masks, ws)`` -> composited image (and the stage-1 image)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int = 3, widths: Widths | None = None):
        super().__init__()
        widths = widths or Widths()
        res_log2 = int(math.log2(img_resolution))
        self.img_resolution = img_resolution
        self.res_log2 = res_log2
        self.num_layers = res_log2 * 2 - 6  # = num_ws
        self.first_stage = FirstStage(img_channels, img_resolution, w_dim, widths.dim, widths.num_heads)
        self.enc = Encoder(res_log2, img_channels, widths)
        self.to_square = FullyConnectedLayer(w_dim, 16 * 16, activation="lrelu")
        self.to_style = ToStyle(widths.nf(16), widths.nf(4) * 2)
        self.dec = Decoder(res_log2, w_dim + widths.nf(4) * 2, img_channels, widths)

    def forward(self, images: torch.Tensor, masks: torch.Tensor, ws: torch.Tensor, noise_mode: str = "random",
                return_stg1: bool = False, mix_masks: Sequence[torch.Tensor | None] | None = None,
                generator: GeneratorArg = None):
        m1, m2 = (None, None) if mix_masks is None else tuple(mix_masks)
        images = images.contiguous(memory_format=self.memory_format)
        masks = masks.contiguous(memory_format=self.memory_format)
        out_stg1 = self.first_stage(images, masks, ws, mix_mask=m1, generator=generator)

        x = images * masks + out_stg1 * (1 - masks)
        # (a cat with 1-channel tensors does not keep channels-last by itself)
        x = torch.cat([masks - 0.5, x, images * masks], dim=1).contiguous(memory_format=self.memory_format)
        feats = self.enc(x)
        fea16 = feats[4]
        if m2 is None:
            m2 = draw_mix_mask(tuple(fea16.shape), fea16, generator)
        else:
            m2 = _check_mix_mask(m2, tuple(fea16.shape), "1", fea16)
        add_n = self.to_square(ws[:, 0]).view(-1, 1, 16, 16)
        if add_n.shape[-2:] != fea16.shape[-2:]:
            add_n = F.interpolate(add_n, size=fea16.shape[-2:], mode="bilinear", align_corners=False)
        fea16 = fea16 * m2 + add_n * (1 - m2)
        feats[4] = fea16
        gs = self.to_style(fea16)
        img = self.dec(fea16, ws, gs, feats, noise_mode=noise_mode, generator=generator)
        img = img * (1 - masks) + images * masks
        if self.fast:
            img = img.contiguous()
            out_stg1 = out_stg1.contiguous()
        return (img, out_stg1) if return_stg1 else img


class Generator(MATModule):
    """MAT generator.

    ``Generator(img_resolution=256|512, z_dim=512, w_dim=512, c_dim=0, img_channels=3)`` builds the
    official network; ``config="tiny"`` (or explicit ``channel_base``/``channel_max``/``dim``/``num_heads``)
    builds a narrower one with the same code paths. Forward::

        G(images, masks, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random",
          return_stg1=False, mix_masks=None, generator=None, skip_w_avg_update=False)

    ``images`` [B, C, R, R] in [-1, 1]; ``masks`` [B, 1, R, R] with 1 = known, 0 = hole (exact 0/1);
    returns the composited image (and the composited stage-1 image if ``return_stg1``).
    ``noise_mode``: "random" (official default of ``forward``), "const" (stored noise images) or "none".
    ``mix_masks``: optional ``(m1, m2)`` {0,1} maps replacing the two random feature-mixing draws
    ([B, 256, dim] bottleneck tokens and [B, nf(16), 16, 16] features); either may be None.
    ``generator``: a ``torch.Generator`` or one per sample for the mixing maps and random noise;
    ``None`` uses the global RNG in the official order (mixing map 1, mixing map 2, then noise).
    """

    def __init__(self, img_resolution: int = 256, z_dim: int = 512, w_dim: int = 512, c_dim: int = 0,
                 img_channels: int = 3, *, channel_base: int | None = None, channel_max: int | None = None,
                 dim: int | None = None, num_heads: int | None = None, mapping_layers: int = 8,
                 config: str | None = None):
        super().__init__()
        self.img_resolution = check_resolution(img_resolution)
        self.z_dim, self.w_dim, self.c_dim, self.img_channels = z_dim, w_dim, c_dim, img_channels
        self.widths = resolve_widths(config, channel_base=channel_base, channel_max=channel_max, dim=dim,
                                     num_heads=num_heads)
        self.mapping_layers = mapping_layers
        self.synthesis = SynthesisNet(w_dim, self.img_resolution, img_channels, self.widths)
        self.num_ws = self.synthesis.num_layers
        self.mapping = MappingNet(z_dim, c_dim, w_dim, self.num_ws, num_layers=mapping_layers)

    def init_kwargs(self) -> dict[str, Any]:
        """Constructor kwargs that rebuild this network (stored next to saved weights)."""
        return {"img_resolution": self.img_resolution, "z_dim": self.z_dim, "w_dim": self.w_dim,
                "c_dim": self.c_dim, "img_channels": self.img_channels, "mapping_layers": self.mapping_layers,
                **self.widths.as_dict()}

    def forward(self, images: torch.Tensor, masks: torch.Tensor, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1.0, truncation_cutoff: int | None = None, noise_mode: str = "random",
                return_stg1: bool = False, mix_masks: Sequence[torch.Tensor | None] | None = None,
                generator: GeneratorArg = None, skip_w_avg_update: bool = False):
        r = self.img_resolution
        if images.ndim != 4 or images.shape[1] != self.img_channels or tuple(images.shape[-2:]) != (r, r):
            raise ValueError(f"images must be [B, {self.img_channels}, {r}, {r}], got {tuple(images.shape)}")
        if masks.shape != (images.shape[0], 1, r, r):
            raise ValueError(f"masks must be [B, 1, {r}, {r}], got {tuple(masks.shape)}")
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}")
        masks = masks.to(images.dtype)
        map_kw = {"truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff,
                  "skip_w_avg_update": skip_w_avg_update}
        if self._split_batch(images, noise_mode, generator):
            return self._per_sample(images, masks, z, c, map_kw, noise_mode, return_stg1, mix_masks, generator)
        ws = self.mapping(z, c, **map_kw)
        return self.synthesis(images, masks, ws, noise_mode=noise_mode,
                              return_stg1=return_stg1, mix_masks=mix_masks, generator=generator)

    def mix_mask_shapes(self, batch: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Shapes of the two feature-mixing maps for a batch: bottleneck tokens and 16x16 features."""
        return (batch, 16 * 16, self.widths.dim), (batch, self.widths.nf(16), 16, 16)

    def _split_batch(self, images: torch.Tensor, noise_mode: str, generator: GeneratorArg) -> bool:
        """Eval on CPU runs each sample alone: batch-1 kernels are faster there (per-sample modulated
        weights, no batched input scaling) and make each result bit-independent of its batch. Not when
        the official global-RNG order of random noise must be kept, nor in training or with gradients."""
        return (self.fast and not self.training and images.device.type == "cpu" and images.shape[0] > 1
                and not (torch.is_grad_enabled() and (images.requires_grad
                                                      or any(p.requires_grad for p in self.parameters())))
                and (noise_mode != "random" or isinstance(generator, (list, tuple))))

    def _per_sample(self, images, masks, z, c, map_kw, noise_mode, return_stg1, mix_masks, generator):
        b = images.shape[0]
        m1, m2 = (None, None) if mix_masks is None else tuple(mix_masks)
        s1, s2 = self.mix_mask_shapes(b)
        # draw the maps first, in the same order (and from the same RNG) as the batched forward does
        m1 = draw_mix_mask(s1, images, generator, channel_major=True) if m1 is None \
            else _check_mix_mask(m1, s1, "0", images)
        m2 = draw_mix_mask(s2, images, generator) if m2 is None else _check_mix_mask(m2, s2, "1", images)
        outs = []
        for i in range(b):
            gen = generator[i:i + 1] if isinstance(generator, (list, tuple)) else generator
            ws = self.mapping(z[i:i + 1], None if c is None else c[i:i + 1], **map_kw)
            outs.append(self.synthesis(images[i:i + 1], masks[i:i + 1], ws, noise_mode=noise_mode,
                                       return_stg1=True, mix_masks=(m1[i:i + 1], m2[i:i + 1]), generator=gen))
        img = torch.cat([o[0] for o in outs])
        return (img, torch.cat([o[1] for o in outs])) if return_stg1 else img
