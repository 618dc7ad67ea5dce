"""Low-level tensor ops of MAT (StyleGAN2-style resampling and bias/activation), pure PyTorch.

Two flavours of each resampling op exist:

* ``*_ref`` functions follow the reference semantics literally (zero insertion, explicit padding,
  true convolution with the FIR filter, decimation). They mirror the operation order of the official
  implementation and are used by the ``impl="reference"`` path, which the parity tests and the
  benchmark compare the fast path against.
* the plain functions compute the same result with one depthwise (transposed) convolution each,
  which avoids materialising zero-inserted or padded tensors.

Conventions follow Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (2020) and
its ADA follow-up, as used by MAT (Li et al., CVPR 2022): the 4-tap low-pass ``[1, 3, 3, 1]`` is used
as a normalised 4x4 outer product; ``lrelu`` is leaky ReLU (slope 0.2) followed by a gain of sqrt(2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
SQRT2 = math.sqrt(2.0)
ACT_GAIN = {"linear": 1.0, "lrelu": SQRT2}


def make_fir_filter(taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)) -> torch.Tensor:
    """Normalised 2-D FIR filter: outer product of ``taps`` with itself, summing to 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(k, k)
    return f / f.sum()


def bias_act(x: torch.Tensor, b: torch.Tensor | None, act: str = "linear", gain: float | None = None,
             dim: int = 1) -> torch.Tensor:
    """Reference bias + activation: ``act(x + b) * gain`` with ``gain`` defaulting to the activation's own."""
    if act not in ACT_GAIN:
        raise ValueError(f"unsupported activation {act!r}")
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    g = ACT_GAIN[act] if gain is None else gain
    if g != 1:
        x = x * g
    return x


# --------------------------------------------------------------------------------------------------
# reference resampling


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
                  pad: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Upsample (zero insertion), pad (negative = crop), FIR-filter (true convolution), downsample.

    ``pad`` is ``(left, right, top, bottom)``; ``f`` is a 2-D filter, scaled by ``gain``.
    """
    b, c, h, w = x.shape
    px0, px1, py0, py1 = pad
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    k = (f * gain).to(x.dtype).flip([0, 1])  # true convolution = correlation with the flipped filter
    k = k[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, k, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def conv2d_resample_ref(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
                        padding: int = 0, groups: int = 1) -> torch.Tensor:
    """Convolution with optional 2x FIR up/down-sampling, in the reference operation order.

    Only the cases MAT uses are supported: ``up`` in {1, 2} with odd kernels and ``down`` in {1, 2}.
    """
    kh = w.shape[-1]
    fw = f.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    if down == 2 and up == 1:
        p0 = padding + (fw - down + 1) // 2
        p1 = padding + (fw - down) // 2
        if kh == 1:
            x = upfirdn2d_ref(x, f, down=2, pad=(p0, p1, p0, p1))
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d_ref(x, f, pad=(p0, p1, p0, p1))
        return F.conv2d(x, w, stride=2, groups=groups)
    if up == 2 and down == 1:
        # Transposed convolution with the spatially flipped kernel, then the FIR low-pass.
        p0 = padding + (fw + up - 1) // 2 - (kh - 1)
        p1 = padding + (fw - up) // 2 - (kh - up)
        out_c, in_c = w.shape[0], w.shape[1]
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            wt = w.reshape(groups, out_c // groups, in_c, kh, kh).transpose(1, 2)
            wt = wt.reshape(groups * in_c, out_c // groups, kh, kh)
        x = F.conv_transpose2d(x, wt.flip([2, 3]), stride=2, groups=groups)
        return upfirdn2d_ref(x, f, pad=(p0, p1, p0, p1), gain=up * up)
    raise ValueError(f"unsupported resampling up={up} down={down}")


def upsample2d_ref(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x FIR upsampling (reference order: zero insertion, pad [2, 1], filter with gain 4)."""
    fw = f.shape[-1]
    p0 = (fw + 1) // 2
    p1 = (fw - 2) // 2
    return upfirdn2d_ref(x, f, up=2, pad=(p0, p1, p0, p1), gain=4.0)


# --------------------------------------------------------------------------------------------------
# fast resampling (one depthwise convolution each)


def _depthwise_kernel(f: torch.Tensor, channels: int, gain: float, dtype: torch.dtype) -> torch.Tensor:
    k = (f * gain).to(dtype).flip([0, 1])
    return k[None, None].expand(channels, 1, *k.shape).contiguous()


def fir_filter(x: torch.Tensor, f: torch.Tensor, pad: int, stride: int = 1, gain: float = 1.0) -> torch.Tensor:
    """Symmetric zero padding + depthwise FIR filter (+ decimation by ``stride``) in one convolution."""
    k = _depthwise_kernel(f, x.shape[1], gain, x.dtype)
    return F.conv2d(x, k, padding=pad, stride=stride, groups=x.shape[1])


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x FIR upsampling as a single depthwise transposed convolution (stride 2).

    Zero insertion + padding ``[2, 1]`` + true convolution with ``4 f`` equals
    ``conv_transpose2d(x, flip(4 f), stride=2, padding=1)``: the transposed convolution scatters each
    input sample through the flipped filter, which is the same sum without the zero terms.
    """
    k = _depthwise_kernel(f, x.shape[1], 4.0, x.dtype).flip([2, 3])
    return F.conv_transpose2d(x, k, stride=2, padding=1, groups=x.shape[1])


# --------------------------------------------------------------------------------------------------
# Winograd 3x3 convolution (CPU, inference only)

_NNPACK: bool | None = None


def winograd_available() -> bool:
    """Whether PyTorch's bundled NNPACK (Winograd F(6x6, 3x3) on CPU) can be used."""
    global _NNPACK
    if _NNPACK is None:
        fn = getattr(torch, "_nnpack_available", None)
        _NNPACK = bool(fn is not None and hasattr(torch, "_nnpack_spatial_convolution") and fn())
    return _NNPACK


def winograd_ok(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Winograd path applies: float32 CPU tensors, 3x3 kernel, no gradient needed."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and w.dtype == torch.float32
            and w.shape[-1] == 3 and w.shape[-2] == 3 and w.shape[1] >= 16
            and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
            and winograd_available())


def conv3x3_winograd(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Stride-1, padding-1 3x3 convolution by NNPACK's Winograd transform (one sample at a time).

    About 2-3x fewer multiplications than direct convolution, at the price of ~10x larger float32
    rounding error (relative ~1e-5 per layer instead of ~1e-6): fine for inference, not for parity.
    """
    if b is None:
        b = torch.zeros(w.shape[0], dtype=w.dtype)
    channels_last = x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    x = x.contiguous()  # NNPACK wants NCHW
    if x.shape[0] == 1:
        y = torch._nnpack_spatial_convolution(x, w, b, [1, 1])
    else:
        y = torch.cat([torch._nnpack_spatial_convolution(x[i:i + 1], w, b, [1, 1]) for i in range(x.shape[0])])
    # hand back the caller's layout: the rest of the fast path runs channels-last
    return y.contiguous(memory_format=torch.channels_last) if channels_last else y
