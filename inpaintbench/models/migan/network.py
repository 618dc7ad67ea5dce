"""The MI-GAN inference generator (Sargsyan et al., "MI-GAN: A Simple Baseline for Image Inpainting on
Mobile Devices", ICCV 2023), written from the architecture description in the project's MI-GAN notes.

Its state dict equals the official ``lib/model_zoo/migan_inference.py`` ``Generator(resolution=R)``
(Picsart-AI-Research/MI-GAN): same keys, shapes, kinds (param/buffer) and order, so the released
``migan_{256,512}_places2.pt`` load with ``strict=True``.

Architecture in one paragraph: a U-Net of depthwise-separable units with no normalisation, no style
input and no runtime weight gain (export baked the training-time filter normalisation into the weights).
Every unit is: depthwise 3x3 conv (+bias) -> act -> [blur-downsample] -> pointwise 1x1 conv (no bias) ->
[x2 FIR upsample] -> [+ fixed noise map * learned strength] -> act, where
``act(x) = clamp(leaky_relu(x, 0.2) * sqrt(2), -256, 256)``. The encoder goes R -> 4 and hands the
output of each block's first unit to the decoder as an additive skip; the decoder (``synthesis``) goes
4 -> R and sums upsampled per-level RGB outputs (``torgb``). Input: ``[N, 4, R, R]`` =
``cat([mask - 0.5, image * mask])`` with image in [-1, 1] and mask 1 = known; output: raw RGB
``[N, 3, R, R]``, nominally [-1, 1], neither clamped nor squashed.

Two code paths (:func:`set_impl`) compute the same function:

* ``"reference"``: the official operation order (nearest upsampling times the ``filter_const``
  lattice, explicit padding, a 4x4 depthwise conv; separate gain multiply and clamp), NCHW;
* ``"fast"`` (default): channels-last activations (what oneDNN convolutions prefer), the sqrt(2) gain
  folded into the preceding conv weights/bias and the noise map (``g * lrelu(y) == lrelu(g * y)`` for
  ``g > 0``), in-place activation and clamp on fresh intermediates, and the zero-insertion upsample as
  one strided transposed conv (4 taps per output instead of 16, no 4x-sized temporaries). Derived
  weights are cached while their sources are unchanged. Agrees with the reference to float32 rounding.

The network is fixed-resolution: ``noise_const`` ([r, r]) and ``filter_const`` ([1, 1, r, r]) are
stored per block, so only exactly ``R x R`` inputs are accepted (any batch size).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
ACT_GAIN = math.sqrt(2.0)
ACT_CLAMP = 256.0
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)
CH_BASE = 32768
CH_MAX = 512
RESOLUTIONS = (256, 512)
IMPLS = ("fast", "reference")


def level_channels(r: int) -> int:
    """Feature width at resolution level ``r``: ``min(32768 // r, 512)`` (official defaults)."""
    return min(CH_BASE // r, CH_MAX)


def fir_weight(channels: int, gain: float) -> torch.Tensor:
    """The [1,3,3,1] blur as a depthwise [C,1,4,4] kernel, normalised to sum ``gain`` (StyleGAN2 convention:
    gain 1 for downsampling, 4 = up-factor squared for zero-insertion upsampling)."""
    f = torch.tensor(FIR_TAPS, dtype=torch.float32)
    k = torch.outer(f, f)
    k = k / k.sum() * gain
    return k.reshape(1, 1, 4, 4).repeat(channels, 1, 1, 1)


def lattice(r: int) -> torch.Tensor:
    """[1,1,r,r]: 1 at (even row, even col), else 0: nearest x2 upsampling times this is zero insertion."""
    even = torch.arange(r) % 2 == 0
    return (even[:, None] & even[None, :]).to(torch.float32).reshape(1, 1, r, r)


def act_reference(x: torch.Tensor) -> torch.Tensor:
    """The official activation order: leaky ReLU, times sqrt(2), clamp to +-256."""
    return (F.leaky_relu(x, LRELU_SLOPE) * ACT_GAIN).clamp(-ACT_CLAMP, ACT_CLAMP)


def _fresh(x: torch.Tensor) -> bool:
    """In-place updates are safe on a fresh intermediate unless autograd tracks it."""
    return not (torch.is_grad_enabled() and x.requires_grad)


def act_folded(x: torch.Tensor) -> torch.Tensor:
    """The activation once the gain is folded into ``x``: leaky ReLU and clamp, in place when safe."""
    if _fresh(x):
        return F.leaky_relu_(x, LRELU_SLOPE).clamp_(-ACT_CLAMP, ACT_CLAMP)
    return F.leaky_relu(x, LRELU_SLOPE).clamp(-ACT_CLAMP, ACT_CLAMP)


class MIGANModule(nn.Module):
    """Base carrying the code-path switch (``fast``) and a cache of derived (gain-folded) weights."""

    fast: bool = True

    def derived(self, key: str, fn: Callable[[], Any], *sources: torch.Tensor) -> Any:
        """``fn()``, cached while ``sources`` keep their storage, version counter, dtype and device.

        ``load_state_dict``, ``.to()`` and in-place edits change one of these, so the cache never serves
        stale weights. Not cached while autograd tracks a source (training recomputes every call).
        """
        if torch.is_grad_enabled() and any(t.requires_grad for t in sources):
            return fn()
        stamp = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        cache = self.__dict__.setdefault("_derived_cache", {})
        hit = cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = fn()
        cache[key] = (stamp, value)
        return value


class Downsample2d(nn.Module):
    """Blur-downsample by 2: a depthwise 4x4 stride-2 conv (padding 1) with the [1,3,3,1]/64 kernel, stored
    as the parameter ``filter.weight`` like the official module."""

    def __init__(self, channels: int):
        super().__init__()
        self.filter = nn.Conv2d(channels, channels, 4, stride=2, padding=1, groups=channels, bias=False)
        with torch.no_grad():
            self.filter.weight.copy_(fir_weight(channels, 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter(x)


class Upsample2d(MIGANModule):
    """x2 FIR upsampling: zero insertion, pad (2, 1), depthwise 4x4 conv with the [1,3,3,1] kernel at gain 4
    (StyleGAN2 ``upsample2d``). ``filter_const`` is the official buffer that fixes the resolution."""

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("filter_const", lattice(resolution))
        self.filter = nn.Conv2d(channels, channels, 4, groups=channels, bias=False)
        with torch.no_grad():
            self.filter.weight.copy_(fir_weight(channels, 4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast and self._lattice_ok():
            # The same sum without the zeros: out[o] = sum_i x[i] * k[2i + 2 - o] is a stride-2 transposed
            # conv with padding 1 and the flipped kernel (the kernel is symmetric, but flip it anyway so any
            # stored filter gives the official result).
            w = self.derived("wflip", lambda: self.filter.weight.flip(2, 3), self.filter.weight)
            return F.conv_transpose2d(x, w, stride=2, padding=1, groups=self.channels)
        y = F.interpolate(x, scale_factor=2.0, mode="nearest") * self.filter_const
        return self.filter(F.pad(y, (2, 1, 2, 1)))

    def _lattice_ok(self) -> bool:
        """The transposed-conv shortcut is exact only for the zero-insertion lattice (every official
        checkpoint; anything else falls back to the official order)."""
        fc = self.filter_const
        return self.derived("lattice", lambda: bool(torch.equal(fc, lattice(fc.shape[-1]).to(fc))), fc)


class SeparableConv2d(MIGANModule):
    """Depthwise 3x3 (+bias) -> act -> [down] -> pointwise 1x1 -> [up] -> [+ noise] -> act."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int | None = None,
                 use_noise: bool = False, down: int = 1, up: int = 1):
        super().__init__()
        if use_noise:
            if resolution is None:
                raise ValueError("a noise unit needs its resolution")
            self.noise_strength = nn.Parameter(torch.zeros([]))
            # The official buffer is torch.randn at construction and never trained; draw it from a local
            # generator so that building a network leaves the global RNG alone.
            g = torch.Generator().manual_seed(resolution)
            self.register_buffer("noise_const", torch.randn([resolution, resolution], generator=g))
        self.use_noise = use_noise
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=True)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.downsample = Downsample2d(in_channels) if down > 1 else None
        if up > 1 and resolution is None:
            raise ValueError("an upsampling unit needs its resolution")
        self.upsample = Upsample2d(out_channels, resolution) if up > 1 else None  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:
            return self._forward_fast(x)
        x = act_reference(self.conv1(x))
        if self.downsample is not None:
            x = self.downsample(x)
        x = self.conv2(x)
        if self.upsample is not None:
            x = self.upsample(x)
        if self.use_noise:
            x = x + self.noise_const * self.noise_strength
        return act_reference(x)

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2 = self.conv1, self.conv2
        w1 = self.derived("w1", lambda: c1.weight * ACT_GAIN, c1.weight)
        b1 = self.derived("b1", lambda: c1.bias * ACT_GAIN, c1.bias)
        x = act_folded(F.conv2d(x, w1, b1, padding=1, groups=self.in_channels))
        if self.downsample is not None:
            x = self.downsample(x)
        x = F.conv2d(x, self.derived("w2", lambda: c2.weight * ACT_GAIN, c2.weight))
        if self.upsample is not None:
            x = self.upsample(x)
        if self.use_noise:
            noise = self.derived("noise", lambda: self.noise_const * (self.noise_strength * ACT_GAIN),
                                 self.noise_const, self.noise_strength)
            x = x.add_(noise) if _fresh(x) else x + noise
        return act_folded(x)


class EncoderBlock(MIGANModule):
    """``feat = Sep(C->C)(x)``, ``x = Sep(C->C', down)(feat)``; the first block also maps the 4-channel
    input through ``fromrgb`` (1x1 conv + act)."""

    def __init__(self, channels: int, out_channels: int, in_channels: int | None = None, down: int = 2):
        super().__init__()
        self.fromrgb = nn.Conv2d(in_channels, channels, 1) if in_channels is not None else None
        self.conv1 = SeparableConv2d(channels, channels)
        self.conv2 = SeparableConv2d(channels, out_channels, down=down)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fromrgb is not None:
            if self.fast:
                fr = self.fromrgb
                w = self.derived("w", lambda: fr.weight * ACT_GAIN, fr.weight)
                b = self.derived("b", lambda: fr.bias * ACT_GAIN, fr.bias)
                y = act_folded(F.conv2d(img, w, b))
            else:
                y = act_reference(self.fromrgb(img))
            x = y if x is None else x + y
        if x is None:
            raise ValueError("the first encoder block needs the input image")
        feat = self.conv1(x)
        return self.conv2(feat), feat


class Encoder(nn.Module):
    """Blocks ``b{R}`` ... ``b8`` (each halves the size), then ``b4`` (no downsampling)."""

    def __init__(self, resolution: int, in_channels: int = 4):
        super().__init__()
        self.levels = [2 ** i for i in range(int(math.log2(resolution)), 2, -1)]  # R ... 8
        for i, r in enumerate(self.levels):
            block = EncoderBlock(level_channels(r), level_channels(r // 2), in_channels if i == 0 else None)
            self.add_module(f"b{r}", block)
        self.b4 = EncoderBlock(level_channels(4), level_channels(4), down=1)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The bottleneck [N,512,4,4] and the skip features by level (4 ... R)."""
        x: torch.Tensor | None = None
        feats: dict[int, torch.Tensor] = {}
        for r in self.levels:
            x, feats[r] = getattr(self, f"b{r}")(x, img)
        x, feats[4] = self.b4(x, img)
        return x, feats


class SynthesisBlockFirst(nn.Module):
    """4x4: ``Sep`` -> + skip -> ``Sep`` -> ``torgb`` (no noise, no upsampling)."""

    def __init__(self, channels: int, rgb_channels: int = 3):
        super().__init__()
        self.conv1 = SeparableConv2d(channels, channels)
        self.conv2 = SeparableConv2d(channels, channels, resolution=4)
        self.torgb = nn.Conv2d(channels, rgb_channels, 1)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _add(self.conv1(x), feat)
        x = self.conv2(x)
        return x, self.torgb(x)


class SynthesisBlock(nn.Module):
    """r = 8 ... R: ``Sep(up, noise)`` -> + skip -> ``Sep(noise)``; RGB: ``up(img) + torgb(x)``."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, rgb_channels: int = 3):
        super().__init__()
        self.conv1 = SeparableConv2d(in_channels, out_channels, resolution=resolution, use_noise=True, up=2)
        self.conv2 = SeparableConv2d(out_channels, out_channels, resolution=resolution, use_noise=True)
        self.torgb = nn.Conv2d(out_channels, rgb_channels, 1)
        self.upsample = Upsample2d(rgb_channels, resolution)

    def forward(self, x: torch.Tensor, feat: torch.Tensor, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _add(self.conv1(x), feat)
        x = self.conv2(x)
        return x, _add(self.upsample(img), self.torgb(x))


def _add(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``y + t``, in place on the fresh ``y`` when safe (same values either way)."""
    return y.add_(t) if _fresh(y) else y + t


class Synthesis(nn.Module):
    """Blocks ``b4`` ... ``b{R}``; returns the RGB image at R."""

    def __init__(self, resolution: int, rgb_channels: int = 3):
        super().__init__()
        self.levels = [2 ** i for i in range(3, int(math.log2(resolution)) + 1)]  # 8 ... R
        self.b4 = SynthesisBlockFirst(level_channels(4), rgb_channels)
        for r in self.levels:
            self.add_module(f"b{r}", SynthesisBlock(level_channels(r // 2), level_channels(r), r, rgb_channels))

    def forward(self, x: torch.Tensor, feats: dict[int, torch.Tensor]) -> torch.Tensor:
        x, img = self.b4(x, feats[4])
        for r in self.levels:
            x, img = getattr(self, f"b{r}")(x, feats[r], img)
        return img


class MIGANGenerator(nn.Module):
    """MI-GAN inference generator at ``resolution`` 256 or 512 (official key layout; see the module doc).

    ``forward(x)``: ``x`` [N, 4, R, R] = ``cat([mask - 0.5, image * mask])`` (image in [-1, 1], mask
    1 = known, 0 = hole) -> raw RGB [N, 3, R, R]. Deterministic: the noise maps are stored constants.
    """

    def __init__(self, resolution: int = 256):
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ValueError(f"MI-GAN was released at {RESOLUTIONS}, not {resolution}")
        self.resolution = int(resolution)
        # construction order sets the state-dict order: synthesis first, then encoder (as the official)
        self.synthesis = Synthesis(resolution)
        self.encoder = Encoder(resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        if x.ndim != 4 or tuple(x.shape[1:]) != (4, r, r):
            raise ValueError(f"MI-GAN {r} takes [N, 4, {r}, {r}] (mask - 0.5, image * mask), got {tuple(x.shape)}")
        fast = get_impl(self) == "fast"
        x = x.contiguous(memory_format=torch.channels_last if fast else torch.contiguous_format)
        bottleneck, feats = self.encoder(x)
        return self.synthesis(bottleneck, feats)


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Select the code path of every MI-GAN layer in ``module``: ``"fast"`` (default) or ``"reference"``."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
    for m in module.modules():
        if isinstance(m, MIGANModule):
            m.fast = impl == "fast"
    return module


def get_impl(module: nn.Module) -> str:
    """The code path set on ``module``'s layers (see :func:`set_impl`)."""
    for m in module.modules():
        if isinstance(m, MIGANModule):
            return "fast" if m.fast else "reference"
    return "reference"
