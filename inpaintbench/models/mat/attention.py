"""MAT's mask-aware transformer: window attention, blocks, token-grid resampling, stages.

MAT (Li et al., CVPR 2022, Sec. 3.2-3.3) adapts Swin-style shifted-window attention (Liu et al., ICCV
2021) with these differences, all reproduced here:

* no LayerNorm and no residual around attention or MLP: the block output is
  ``mlp(fuse([x, attention(x)]))``;
* queries and keys come from L2-normalised tokens, values from the raw tokens;
* "-inf" is -100; keys whose token is a hole get -100 added to their logits (the mask-aware term), on
  top of the usual shifted-window region mask;
* after attention a window's mask becomes valid everywhere if any of its tokens was valid.

Tokens are ``[B, H*W, C]`` in row-major order. In memory this equals a channels-last ``[B, C, H, W]``
feature map, so :func:`token2feature` / :func:`feature2token` are free views for channels-last tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.models.mat.layers import Conv2dLayerPartial, FullyConnectedLayer, MATModule, inplace_add

MASKED_LOGIT = -100.0


def token2feature(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H*W, C] tokens -> [B, C, H, W] feature map (a view when the tokens are contiguous)."""
    b, n, c = x.shape
    h, w = size
    return x.reshape(b, h, w, c).permute(0, 3, 1, 2)


def feature2token(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] feature map -> [B, H*W, C] tokens (a view for channels-last tensors)."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * nW, ws*ws, C], windows and pixels both in row-major order."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: [B * nW, ws*ws, C] -> [B, H, W, C]."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


_SHIFT_MASK_CACHE: dict[tuple, torch.Tensor] = {}


def shift_window_mask(h: int, w: int, ws: int, shift: int, device: torch.device | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Region mask of shifted-window attention, [nW, ws*ws, ws*ws] with 0 / -100 entries.

    After the cyclic shift by ``-shift``, each axis is cut into the strips ``[0, n-ws)``,
    ``[n-ws, n-shift)`` and ``[n-shift, n)``; two tokens of a window may attend to each other only if
    they lie in the same strip pair (i.e. they were neighbours before the roll).
    """
    key = (h, w, ws, shift, str(device), dtype)
    cached = _SHIFT_MASK_CACHE.get(key)
    if cached is not None:
        return cached

    def strips(n: int) -> torch.Tensor:
        lab = torch.zeros(n, dtype=torch.int64)
        lab[n - ws:] = 1
        lab[n - shift:] = 2
        return lab

    labels = strips(h)[:, None] * 3 + strips(w)[None, :]
    win = window_partition(labels[None, :, :, None], ws).squeeze(-1)  # [nW, ws*ws]
    diff = win[:, None, :] != win[:, :, None]
    mask = torch.zeros(diff.shape, dtype=dtype).masked_fill_(diff, MASKED_LOGIT).to(device)
    _SHIFT_MASK_CACHE[key] = mask
    return mask


def _key_mask_bias(mask_windows: torch.Tensor) -> torch.Tensor:
    """Additive logit term from key validity: -100 where 0, 0 where 1, the raw value otherwise."""
    m = mask_windows.squeeze(-1)  # [B*nW, N]
    bias = torch.where(m == 0, torch.full_like(m, MASKED_LOGIT), m)
    bias = torch.where(m == 1, torch.zeros_like(m), bias)
    return bias[:, None, None, :]  # [B*nW, 1, 1, N] (per key)


class Mlp(MATModule):
    def __init__(self, in_features: int, hidden_features: int):
        super().__init__()
        self.fc1 = FullyConnectedLayer(in_features, hidden_features, activation="lrelu")
        self.fc2 = FullyConnectedLayer(hidden_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


class WindowAttention(MATModule):
    """Multi-head attention inside each window, with MAT's normalised q/k and mask-aware key bias."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = FullyConnectedLayer(dim, dim)
        self.k = FullyConnectedLayer(dim, dim)
        self.v = FullyConnectedLayer(dim, dim)
        self.proj = FullyConnectedLayer(dim, dim)

    def forward(self, x: torch.Tensor, mask_windows: torch.Tensor | None = None,
                shift_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` [B*nW, N, C]; ``mask_windows`` [B*nW, N, 1] or None; ``shift_mask`` [nW, N, N] or None."""
        bw, n, c = x.shape
        h = self.num_heads
        xn = F.normalize(x, p=2.0, dim=-1)
        if self.fast:
            # q and k share their input: one matmul for both.
            w_qk = self.derived("w_qk", lambda: torch.cat([self.q.effective_weight(), self.k.effective_weight()]),
                                self.q.weight, self.k.weight)
            b_qk = self.derived("b_qk", lambda: torch.cat([self.q.effective_bias(), self.k.effective_bias()]),
                                self.q.bias, self.k.bias)
            qk = F.linear(xn, w_qk, b_qk)
            qk = qk.reshape(bw, n, 2, h, c // h).permute(2, 0, 3, 1, 4)
            q, k = qk[0], qk[1]
        else:
            q = self.q(xn).reshape(bw, n, h, c // h).permute(0, 2, 1, 3)
            k = self.k(xn).reshape(bw, n, h, c // h).permute(0, 2, 1, 3)
        v = self.v(x).reshape(bw, n, h, c // h).permute(0, 2, 1, 3)

        bias = None
        if shift_mask is not None:
            nw = shift_mask.shape[0]
            bias = shift_mask[None, :, None].expand(bw // nw, nw, 1, n, n).reshape(bw, 1, n, n)
        new_mask = None
        if mask_windows is not None:
            key_bias = _key_mask_bias(mask_windows)
            bias = key_bias if bias is None else bias + key_bias
            with torch.no_grad():
                new_mask = torch.clamp(mask_windows.sum(dim=1, keepdim=True), 0, 1).expand(bw, n, 1)

        if self.fast:
            if bias is not None:
                bias = bias.to(q.dtype).expand(bw, 1, n, n)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.scale
            if bias is not None:
                attn = attn + bias
            out = attn.softmax(dim=-1) @ v
        out = out.transpose(1, 2).reshape(bw, n, c)
        return self.proj(out), new_mask


class SwinTransformerBlock(MATModule):
    """One (shifted-)window block of MAT: attention, then ``mlp(fuse([shortcut, attn_out]))``."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int,
                 shift_size: int = 0, mlp_ratio: float = 2.0):
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)
        if min(self.input_resolution) <= window_size:
            # the whole grid is one window: no partition, no shift
            shift_size = 0
            window_size = min(self.input_resolution)
        if not 0 <= shift_size < window_size:
            raise ValueError("shift_size must be in [0, window_size)")
        self.window_size = window_size
        self.shift_size = shift_size
        self.attn = WindowAttention(dim, num_heads)
        self.fuse = FullyConnectedLayer(dim * 2, dim, activation="lrelu")
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        # Stored in official checkpoints but, as in the official forward, never read: the mask is
        # recomputed (and cached) for the actual grid size on every call.
        if shift_size > 0:
            h, w = self.input_resolution
            self.register_buffer("attn_mask", shift_window_mask(h, w, window_size, shift_size).clone())
        else:
            self.attn_mask = None

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, w = size
        b, n, c = x.shape
        if n != h * w:
            raise ValueError(f"token count {n} does not match grid {h}x{w}")
        ws, s = self.window_size, self.shift_size
        shortcut = x
        xg = x.reshape(b, h, w, c)
        mg = mask.reshape(b, h, w, 1) if mask is not None else None
        if s > 0:
            xg = torch.roll(xg, shifts=(-s, -s), dims=(1, 2))
            if mg is not None:
                mg = torch.roll(mg, shifts=(-s, -s), dims=(1, 2))
        xw = window_partition(xg, ws)
        mw = window_partition(mg, ws) if mg is not None else None
        shift_mask = shift_window_mask(h, w, ws, s, x.device) if s > 0 else None
        aw, mw = self.attn(xw, mw, shift_mask)
        xg = window_reverse(aw, ws, h, w)
        if mw is not None:
            mg = window_reverse(mw, ws, h, w)
        if s > 0:
            xg = torch.roll(xg, shifts=(s, s), dims=(1, 2))
            if mg is not None:
                mg = torch.roll(mg, shifts=(s, s), dims=(1, 2))
        x = xg.reshape(b, n, c)
        mask = mg.reshape(b, n, 1) if mg is not None else None
        x = self.fuse(torch.cat([shortcut, x], dim=-1))
        return self.mlp(x), mask


class PatchMerging(MATModule):
    """Token-grid downsampling by a strided partial conv (mask-aware when a mask is given)."""

    def __init__(self, in_channels: int, out_channels: int, down: int = 2):
        super().__init__()
        self.conv = Conv2dLayerPartial(in_channels, out_channels, 3, activation="lrelu", down=down)
        self.down = down

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor | None]:
        xf = token2feature(x, size)
        mf = token2feature(mask, size) if mask is not None else None
        y, mf = self.conv(xf, mf)
        size = (size[0] // self.down, size[1] // self.down)
        return feature2token(y), size, (feature2token(mf) if mf is not None else None)


class PatchUpsampling(MATModule):
    """Token-grid 2x upsampling by a transposed partial conv (always used without a mask)."""

    def __init__(self, in_channels: int, out_channels: int, up: int = 2):
        super().__init__()
        self.conv = Conv2dLayerPartial(in_channels, out_channels, 3, activation="lrelu", up=up)
        self.up = up

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor | None]:
        xf = token2feature(x, size)
        mf = token2feature(mask, size) if mask is not None else None
        y, mf = self.conv(xf, mf)
        size = (size[0] * self.up, size[1] * self.up)
        return feature2token(y), size, (feature2token(mf) if mf is not None else None)


class BasicLayer(MATModule):
    """One transformer stage: optional resampling, ``depth`` blocks, a partial conv, a residual."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int,
                 window_size: int, mlp_ratio: float = 2.0, downsample: nn.Module | None = None):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size,
                                 shift_size=0 if i % 2 == 0 else window_size // 2, mlp_ratio=mlp_ratio)
            for i in range(depth)
        ])
        self.conv = Conv2dLayerPartial(dim, dim, 3, activation="lrelu")

    def forward(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor | None]:
        if self.downsample is not None:
            x, size, mask = self.downsample(x, size, mask)
        identity = x
        for blk in self.blocks:
            x, mask = blk(x, size, mask)
        mf = token2feature(mask, size) if mask is not None else None
        y, mf = self.conv(token2feature(x, size), mf)
        y = feature2token(y)
        x = inplace_add(y, identity)
        return x, size, (feature2token(mf) if mf is not None else None)
