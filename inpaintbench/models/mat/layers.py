"""MAT's building blocks: equalized-learning-rate FC/conv, modulated conv, partial conv, minibatch-std.

Parameter names and shapes follow the official checkpoints exactly (see the manifests in the project's
MAT notes), so official state dicts load with ``strict=True``. Runtime gains follow the
"equalized learning rate" scheme of Karras et al. (ProGAN/StyleGAN2): weights are stored N(0, 1)-scaled
and multiplied by ``1/sqrt(fan_in)`` (times a learning-rate multiplier) at every call.

Every layer has two code paths selected by its ``fast`` attribute (see :func:`set_impl`):

* reference (``fast=False``): the operation order of the official implementation (separate
  bias/activation passes, grouped convolution for modulated weights, explicit FIR steps);
* fast (default): gains folded into weights, bias fused into the convolution, in-place activation,
  one-convolution FIR resampling, and batched modulation that keeps channels-last tensors intact.

Both compute the same function; they differ only by float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inpaintbench.models.mat import ops


class MATModule(nn.Module):
    """Base class carrying the implementation switch (``fast``) and a cache of derived weights."""

    fast: bool = True
    winograd: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        """Layout of activations: channels-last for the fast path (what oneDNN convolutions prefer),
        NCHW for the reference path and for the Winograd path (NNPACK wants NCHW)."""
        return torch.channels_last if self.fast else torch.contiguous_format

    def derived(self, key: str, fn: Callable[[], torch.Tensor], *sources: torch.Tensor | None) -> torch.Tensor:
        """``fn()``, cached while ``sources`` are unchanged and no gradient flows into them.

        Inference recomputes scaled/transposed weights on every call otherwise. The cache is keyed by
        each source's storage pointer, version counter (bumped by every in-place update, including
        ``load_state_dict`` and optimiser steps), dtype and device, so it can never serve stale values.
        """
        srcs = [t for t in sources if t is not None]
        if torch.is_grad_enabled() and any(t.requires_grad for t in srcs):
            return fn()
        stamp = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in srcs)
        cache = self.__dict__.setdefault("_derived_cache", {})
        hit = cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = fn()
        cache[key] = (stamp, value)
        return value


IMPLS = ("fast", "reference", "winograd")


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Select the code path of every MAT layer in ``module``.

    * ``"fast"`` (default): channels-last, folded gains, fused resampling, SDPA attention; agrees with
      the reference to float32 rounding (parity-tested at 1e-5 of the output range);
    * ``"reference"``: the official operation order, NCHW (bit-identical to the official network on
      the machine the parity fixture was made on);
    * ``"winograd"``: ``"fast"`` plus NNPACK Winograd 3x3 convolutions on CPU when no gradient is needed
      (~20% faster than ``"fast"`` single-threaded, no faster with 2 threads; float32 error ~1e-5 relative
      per layer, parity-tested at 3e-5). Falls back to ``"fast"`` where NNPACK is unavailable.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
    for m in module.modules():
        if isinstance(m, MATModule):
            m.fast = impl != "reference"
            m.winograd = impl == "winograd"
    return module


def get_impl(module: nn.Module) -> str:
    """The code path set on ``module`` (see :func:`set_impl`)."""
    if not isinstance(module, MATModule) or not module.fast:
        return "reference"
    return "winograd" if module.winograd else "fast"


def _inplace_ok(y: torch.Tensor) -> bool:
    """In-place updates are safe on fresh intermediates unless autograd tracks them."""
    return not (torch.is_grad_enabled() and y.requires_grad)


def _lrelu_inplace(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU, in place on a fresh intermediate; out of place when autograd tracks ``x`` (training)."""
    return F.leaky_relu_(x, ops.LRELU_SLOPE) if _inplace_ok(x) else F.leaky_relu(x, ops.LRELU_SLOPE)


def inplace_add(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``y + t``, in place on the fresh ``y`` when safe (see :func:`_inplace_ok`)."""
    return y.add_(t) if _inplace_ok(y) else y + t


def _imul(y: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """``y * t``, in place when safe (see :func:`_inplace_ok`)."""
    return y.mul_(t) if _inplace_ok(y) else y * t


class FullyConnectedLayer(MATModule):
    """Equalized-lr linear layer on the last dimension: ``act(x @ (w*g).T + b*lr) * act_gain``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.in_features = in_features
        self.out_features = out_features
        # Official init: N(0,1)/lr so that the effective weight is N(0, 1/fan_in).
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def effective_weight(self) -> torch.Tensor:
        return self.derived("w", lambda: self.weight * self.weight_gain, self.weight)

    def effective_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        if self.bias_gain == 1:
            return self.bias
        return self.derived("b", lambda: self.bias * self.bias_gain, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fast:
            w = self.weight * self.weight_gain
            b = self.bias
            if b is not None and self.bias_gain != 1:
                b = b * self.bias_gain
            y = x.matmul(w.t())
            if self.activation == "linear" and b is not None:
                return y + b
            return ops.bias_act(y, b, self.activation, dim=y.ndim - 1)
        # matmul, then the bias: the reference's rounding order (addmm rounds differently), in place
        y = x.matmul(self.effective_weight().t())
        b = self.effective_bias()
        if b is not None:
            y = inplace_add(y, b)
        if self.activation == "lrelu":
            return _imul(_lrelu_inplace(y), ops.SQRT2)
        return y

    def extra_repr(self) -> str:
        return f"{self.in_features}->{self.out_features}, act={self.activation}"


class Conv2dLayer(MATModule):
    """Equalized-lr 2-D convolution with optional 2x FIR up/down-sampling, bias and activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1):
        super().__init__()
        if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
            raise ValueError(f"unsupported resampling up={up} down={down}")
        if up == 2 and kernel_size != 3:
            raise ValueError("up-sampling convolutions are implemented for 3x3 kernels only")
        self.activation = activation
        self.up = up
        self.down = down
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", ops.make_fir_filter())
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = ops.ACT_GAIN[activation]
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def _fast_weights(self, gain: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        # lrelu(a) * g == lrelu(a * g) for g > 0: every gain folds into weight and bias.
        g = self.act_gain * gain

        def make_w() -> torch.Tensor:
            w = self.weight * (self.weight_gain * g)
            return w.transpose(0, 1).flip([2, 3]) if self.up == 2 else w

        w = self.derived(f"w{g}", make_w, self.weight)
        b = None if self.bias is None else self.derived(f"b{g}", lambda: self.bias * g, self.bias)
        return w, b

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        if not self.fast:
            w = self.weight * self.weight_gain
            y = ops.conv2d_resample_ref(x, w, self.resample_filter, up=self.up, down=self.down,
                                        padding=self.padding)
            return ops.bias_act(y, self.bias, self.activation, gain=self.act_gain * gain)
        w, b = self._fast_weights(gain)
        f = self.resample_filter
        if self.up == 1 and self.down == 1:
            if self.winograd and ops.winograd_ok(x, w):
                y = ops.conv3x3_winograd(x, w, b)
            else:
                y = F.conv2d(x, w, b, padding=self.padding)
        elif self.down == 2:
            if self.kernel_size == 1:
                y = F.conv2d(ops.fir_filter(x, f, pad=1, stride=2), w, b)
            else:
                y = F.conv2d(ops.fir_filter(x, f, pad=self.padding + 1), w, b, stride=2)
        else:  # up == 2: transposed conv with the flipped kernel, then the FIR low-pass (gain 4)
            y = ops.fir_filter(F.conv_transpose2d(x, w, stride=2), f, pad=1, gain=4.0)
            if b is not None:
                y = inplace_add(y, b.view(1, -1, 1, 1))
        if self.activation == "lrelu":
            y = _lrelu_inplace(y)
        return y


class ModulatedConv2d(MATModule):
    """Style-modulated convolution (StyleGAN2 weight (de)modulation), optional 2x upsampling.

    ``weight`` keeps the official leading singleton dimension ``[1, out, in, k, k]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, up: int = 1):
        super().__init__()
        if up not in (1, 2) or (up == 2 and kernel_size != 3):
            raise ValueError("ModulatedConv2d supports up=1, or up=2 with a 3x3 kernel")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.up = up
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.register_buffer("resample_filter", ops.make_fir_filter())
        self.affine = FullyConnectedLayer(style_dim, in_channels, bias_init=1.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """Modulated convolution of ``x`` [B, in, H, W]; the output is multiplied by ``gain``."""
        b = x.shape[0]
        s = self.affine(style)  # [B, in]
        if not self.fast:
            w = self.weight * self.weight_gain * s.view(b, 1, -1, 1, 1)
            if self.demodulate:
                w = w * (w.pow(2).sum(dim=[2, 3, 4]) + 1e-8).rsqrt().view(b, -1, 1, 1, 1)
            w = w.reshape(b * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
            y = ops.conv2d_resample_ref(x.reshape(1, -1, *x.shape[2:]), w, self.resample_filter,
                                        up=self.up, padding=self.padding, groups=b)
            y = y.reshape(b, self.out_channels, *y.shape[2:])
            return y * gain if gain != 1 else y

        # Kernel in the layout the convolution wants: [out, in, k, k], or for the transposed
        # convolution of the up-sampling path [in, out, k, k] and spatially flipped.
        def make_w() -> torch.Tensor:
            w = self.weight[0] * self.weight_gain
            return w.transpose(0, 1).flip([2, 3]) if self.up == 2 else w

        w = self.derived("w", make_w, self.weight)
        if self.demodulate:
            # sum_{i,k} (w_oik s_bi)^2 = sum_i s_bi^2 * sum_k w_oik^2  ->  [B, out]
            wsq = self.derived("wsq", lambda: (self.weight[0] * self.weight_gain).square().sum(dim=[2, 3]).t(),
                               self.weight)
            d = (s.square() @ wsq + 1e-8).rsqrt()
            if gain != 1:
                d = d * gain
        else:
            d = None if gain == 1 else s.new_full((b, self.out_channels), gain)
        in_axis = 1 if self.up == 1 else 0
        if b == 1 or (self.winograd and self.up == 1 and ops.winograd_ok(x, w)):
            # modulate and demodulate the kernel itself, one plain convolution per sample
            scale = s.view(b, -1, 1) if d is None else s.view(b, -1, 1) * d.view(b, 1, -1)  # [B, in, out]
            if in_axis == 1:
                scale = scale.transpose(1, 2)
            outs = [self._conv(x[i:i + 1], w * scale[i, :, :, None, None].to(w.dtype)) for i in range(b)]
            return outs[0] if b == 1 else torch.cat(outs)
        # a batch: scale the input channels, share the kernel, scale the output channels
        y = self._conv(x * s.view(b, -1, 1, 1).to(x.dtype), w)
        return y if d is None else _imul(y, d.view(b, -1, 1, 1).to(y.dtype))

    def _conv(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up == 1:
            if self.winograd and self.kernel_size == 3 and ops.winograd_ok(x, w):
                return ops.conv3x3_winograd(x, w)
            return F.conv2d(x, w, padding=self.padding)
        return ops.fir_filter(F.conv_transpose2d(x, w, stride=2), self.resample_filter, pad=1, gain=4.0)


def _noise_tensor(x: torch.Tensor, mode: str, const: torch.Tensor | None,
                  generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor | None:
    """The unscaled noise image for one StyleConv call, or None for ``mode='none'``."""
    if mode == "none":
        return None
    if mode == "const":
        return const
    if mode != "random":
        raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {mode!r}")
    b = x.shape[0]
    h, w = const.shape[-2:] if const is not None else x.shape[-2:]  # the OUTPUT size (x is pre-upsampling)
    if generator is None:
        return torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)
    if isinstance(generator, torch.Generator):
        return torch.randn(b, 1, h, w, generator=generator, device=generator.device).to(x.device, x.dtype)
    if len(generator) != b:
        raise ValueError(f"got {len(generator)} generators for a batch of {b}")
    parts = [torch.randn(1, 1, h, w, generator=g, device=g.device) for g in generator]
    return torch.cat(parts).to(x.device, x.dtype)


class StyleConv(MATModule):
    """Modulated conv + per-pixel noise + bias + lrelu (one synthesis layer)."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True, demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate, up)
        self.use_noise = use_noise
        self.resolution = resolution
        if use_noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise_mode: str = "random",
                generator: torch.Generator | Sequence[torch.Generator] | None = None) -> torch.Tensor:
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}")
        if not self.fast:
            y = self.conv(x, style)
            noise = _noise_tensor(y, noise_mode, self.noise_const, generator) if self.use_noise else None
            if noise is not None:
                y = y + noise * self.noise_strength
            return ops.bias_act(y, self.bias, "lrelu")
        g = ops.SQRT2  # the lrelu gain, folded into the demodulation coefficients
        y = self.conv(x, style, gain=g)
        noise = _noise_tensor(y, noise_mode, self.noise_const, generator) if self.use_noise else None
        if noise is not None:
            y = inplace_add(y, noise.to(y.dtype) * (self.noise_strength * g).to(y.dtype))
        bias = self.derived("b", lambda: self.bias * g, self.bias)
        y = inplace_add(y, bias.view(1, -1, 1, 1).to(y.dtype))
        return _lrelu_inplace(y)


class ToRGB(MATModule):
    """1x1 modulated conv (no demodulation) + bias, plus the 2x-upsampled skip image."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, kernel_size: int = 1,
                 demodulate: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", ops.make_fir_filter())

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x, style)
        if self.fast:
            y = inplace_add(y, self.bias.view(1, -1, 1, 1).to(y.dtype))
        else:
            y = ops.bias_act(y, self.bias, "linear")
        if skip is not None:
            if skip.shape != y.shape:
                skip = ops.upsample2d(skip, self.resample_filter) if self.fast else \
                    ops.upsample2d_ref(skip, self.resample_filter)
            y = y + skip
        return y


class Conv2dLayerPartial(MATModule):
    """Partial convolution (Liu et al., ECCV 2018) as MAT uses it.

    The conv (with bias and activation) runs on the unmasked features; its output is then rescaled by
    ``k^2 / count`` where ``count`` is the number of valid inputs under the kernel, and zeroed where the
    window holds no valid input. The updated mask is ``clamp(count, 0, 1)``. Without a mask it is a plain
    conv. The real conv is nested as ``.conv`` to match the official parameter names.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, activation: str = "linear",
                 up: int = 1, down: int = 1):
        super().__init__()
        self.conv = Conv2dLayer(in_channels, out_channels, kernel_size, activation=activation, up=up, down=down)
        self.kernel_size = kernel_size
        self.stride = down
        self.padding = kernel_size // 2 if kernel_size % 2 == 1 else 0

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if mask is None:
            return self.conv(x), None
        with torch.no_grad():
            ones = torch.ones(1, 1, self.kernel_size, self.kernel_size, device=mask.device, dtype=mask.dtype)
            count = F.conv2d(mask, ones, stride=self.stride, padding=self.padding)
            ratio = self.kernel_size ** 2 / (count + 1e-8)
            new_mask = torch.clamp(count, 0, 1)
            ratio = ratio * new_mask
        y = self.conv(x)
        if y.shape[-2:] != ratio.shape[-2:]:
            raise ValueError("partial convolution with a mask supports stride/down-sampling only, not up-sampling")
        ratio = ratio.to(y.dtype)
        return (y.mul_(ratio) if self.fast and _inplace_ok(y) else y * ratio), new_mask


class MinibatchStdLayer(MATModule):
    """Appends the average per-group standard deviation as extra feature map(s) (Karras et al. 2018)."""

    def __init__(self, group_size: int | None = 4, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        if n % g != 0:
            raise ValueError(f"minibatch-std: batch {n} is not divisible by the group size {g}")
        f = self.num_channels
        # Sample i belongs to group i mod (n / g), as in the official reshape.
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
