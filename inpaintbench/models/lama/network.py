"""The big-lama generator (FFC ResNet, Suvorov et al. WACV 2022) with the official state-dict layout.

Module names and indices follow ``FFCResNetGenerator`` of advimman/lama
(``saicinpainting/training/modules/ffc.py``), so a real checkpoint loads strictly: ``model`` is one
``nn.Sequential`` of 36 entries for big-lama (reflect pad, stem, 3 down-sampling FFCs, 18 FFC ResNet
blocks, concat, 3 x (ConvTranspose, BN, ReLU), reflect pad, 7x7 conv, sigmoid). The code is ours.

Two forward paths compute the same function (see :attr:`LamaGenerator.impl`):

* ``"reference"``: the official operation order, module by module (``padding_mode='reflect'`` convs,
  separate BatchNorm and ReLU, the interleaved real/imag stacking of the Fourier unit);
* ``"fast"`` (default, eval mode only): every BatchNorm folded into the convolution before it (in
  float64, then cast), the local->local and local->global 3x3 convs of each FFC merged into one conv, each
  stream reflect-padded once, in-place adds and ReLUs, channels-last activations. The folded weights
  are cached and rebuilt when any parameter or buffer changes. In training mode the reference path runs.

The Fourier unit always runs in float32 (the official code calls ``.float()`` before ``rfftn``), also
under autocast, and passes ``s=(h, w)`` to ``irfftn`` so odd widths come back at their size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: big-lama's generator block of ``configs/training/big-lama.yaml`` (kind ffc_resnet), in our names.
BIG_LAMA_CONFIG: dict[str, Any] = {"input_nc": 4, "output_nc": 3, "ngf": 64, "n_downsampling": 3,
                                   "n_blocks": 18, "ratio": 0.75, "max_features": 1024}
IMPLS = ("fast", "reference")
BN_EPS = 1e-5  # torch BatchNorm2d default, which the official generator does not override

Stream = torch.Tensor | int  # a stream with 0 channels travels as the int 0, as in the official code


def _split(channels: int, ratio: float) -> tuple[int, int]:
    """(local, global) channel counts: ``int(C * ratio)`` global (official FFC convention)."""
    g = int(channels * ratio)
    return channels - g, g


class FourierUnit(nn.Module):
    """rfft2 (ortho) -> interleaved Re/Im channels -> 1x1 conv, BN, ReLU -> irfft2 at the input size."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels * 2, out_channels * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels * 2, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        with torch.autocast(x.device.type, enabled=False):
            # float32 as the official ``x.float()``; float64 kept (for float64 checks of our own code)
            x = x if x.dtype == torch.float64 else x.float()
            spec = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
            # channel 2k = Re(X_k), 2k+1 = Im(X_k)
            z = torch.stack((spec.real, spec.imag), dim=2).reshape(b, -1, h, spec.shape[-1])
            z = self.relu(self.bn(self.conv_layer(z)))
            z = z.reshape(b, -1, 2, h, spec.shape[-1]).permute(0, 1, 3, 4, 2).contiguous()
            return torch.fft.irfftn(torch.view_as_complex(z), s=(h, w), dim=(-2, -1), norm="ortho")


class SpectralTransform(nn.Module):
    """Global->global path: 1x1 conv+BN+ReLU to half the channels, ``u + FU(u)``, 1x1 conv back (no LFU)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        half = out_channels // 2
        self.downsample = nn.Identity()  # stride 1 everywhere in big-lama
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, half, 1, bias=False),
                                   nn.BatchNorm2d(half, eps=BN_EPS), nn.ReLU(inplace=True))
        self.fu = FourierUnit(half, half)
        self.conv2 = nn.Conv2d(half, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.conv1(self.downsample(x))
        return self.conv2(u + self.fu(u).to(u.dtype))


class FFC(nn.Module):
    """``y_l = l2l(x_l) + g2l(x_g)``, ``y_g = l2g(x_l) + spectral(x_g)``; absent paths are Identity."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float,
                 ratio_gout: float, stride: int = 1, padding: int = 0):
        super().__init__()
        self.in_cl, self.in_cg = _split(in_channels, ratio_gin)
        self.out_cl, self.out_cg = _split(out_channels, ratio_gout)
        self.ratio_gin, self.ratio_gout = ratio_gin, ratio_gout

        def conv(cin: int, cout: int) -> nn.Module:
            if cin == 0 or cout == 0:
                return nn.Identity()
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False, padding_mode="reflect")

        self.convl2l = conv(self.in_cl, self.out_cl)
        self.convl2g = conv(self.in_cl, self.out_cg)
        self.convg2l = conv(self.in_cg, self.out_cl)
        self.convg2g = (nn.Identity() if self.in_cg == 0 or self.out_cg == 0
                        else SpectralTransform(self.in_cg, self.out_cg))
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: tuple[Stream, Stream]) -> tuple[Stream, Stream]:
        x_l, x_g = x
        y_l: Stream = 0
        y_g: Stream = 0
        if self.ratio_gout != 1:
            y_l = self.convl2l(x_l) + self.convg2l(x_g)
        if self.ratio_gout != 0:
            y_g = self.convl2g(x_l) + self.convg2g(x_g)
        return y_l, y_g


class FFC_BN_ACT(nn.Module):  # noqa: N801 - the official class name, kept so the layout reads the same
    """FFC, then a BatchNorm and ReLU per stream."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float,
                 ratio_gout: float, stride: int = 1, padding: int = 0):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding)
        cl, cg = self.ffc.out_cl, self.ffc.out_cg
        self.bn_l = nn.BatchNorm2d(cl, eps=BN_EPS) if cl else nn.Identity()
        self.bn_g = nn.BatchNorm2d(cg, eps=BN_EPS) if cg else nn.Identity()
        self.act_l = nn.ReLU(inplace=True) if cl else nn.Identity()
        self.act_g = nn.ReLU(inplace=True) if cg else nn.Identity()

    def forward(self, x: tuple[Stream, Stream] | torch.Tensor) -> tuple[Stream, Stream]:
        if not isinstance(x, tuple):
            x = (x, 0)
        y_l, y_g = self.ffc(x)
        return self.act_l(self.bn_l(y_l)), self.act_g(self.bn_g(y_g))


class FFCResnetBlock(nn.Module):
    """Two FFC_BN_ACT 3x3 layers, then a residual add per stream (no activation after the add)."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        self.conv1 = FFC_BN_ACT(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFC_BN_ACT(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x: tuple[Stream, Stream]) -> tuple[Stream, Stream]:
        x_l, x_g = x
        y_l, y_g = self.conv2(self.conv1((x_l, x_g)))
        return x_l + y_l, x_g + y_g


class ConcatTupleLayer(nn.Module):
    """(local, global) -> one tensor, local channels first."""

    def forward(self, x: tuple[Stream, Stream]) -> torch.Tensor:
        x_l, x_g = x
        if not torch.is_tensor(x_g):
            return x_l
        if not torch.is_tensor(x_l):
            return x_g
        return torch.cat([x_l, x_g], dim=1)


class LamaGenerator(nn.Module):
    """big-lama's ``FFCResNetGenerator``; ``forward(x)`` takes ``cat([img * (1 - mask), mask])`` in [0, 1].

    ``x``: float [B, input_nc, H, W] with H, W multiples of ``2 ** n_downsampling`` and at least
    ``2 ** (n_downsampling + 1)`` (the bottleneck is reflect-padded by 1). Returns the raw sigmoid output
    [B, output_nc, H, W]; compositing and padding belong to the caller (see :mod:`.adapter`).
    """

    def __init__(self, input_nc: int = 4, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 3,
                 n_blocks: int = 18, ratio: float = 0.75, max_features: int = 1024, impl: str = "fast"):
        super().__init__()
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in (0, 1) (local and global streams both present), got {ratio}")
        self.config = {"input_nc": input_nc, "output_nc": output_nc, "ngf": ngf, "n_downsampling": n_downsampling,
                       "n_blocks": n_blocks, "ratio": ratio, "max_features": max_features}
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFC_BN_ACT(input_nc, ngf, 7, 0.0, 0.0)]
        for i in range(n_downsampling):
            cin, cout = min(max_features, ngf * 2 ** i), min(max_features, ngf * 2 ** (i + 1))
            gout = ratio if i == n_downsampling - 1 else 0.0
            layers.append(FFC_BN_ACT(cin, cout, 3, 0.0, gout, stride=2, padding=1))
        dim = min(max_features, ngf * 2 ** n_downsampling)
        layers += [FFCResnetBlock(dim, ratio) for _ in range(n_blocks)]
        layers.append(ConcatTupleLayer())
        up_act = nn.ReLU(inplace=True)  # one shared instance, as in the official generator
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            cin, cout = min(max_features, ngf * mult), min(max_features, ngf * mult // 2)
            layers += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                       nn.BatchNorm2d(cout, eps=BN_EPS), up_act]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)
        self.impl = impl
        self._cache: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------ config

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in IMPLS:
            raise ValueError(f"unknown impl {value!r}; use one of {IMPLS}")
        self._impl = value

    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.config)

    @property
    def min_size(self) -> int:
        """Smallest side the network runs at (the bottleneck needs 2 pixels for the reflect pad)."""
        return 2 ** (self.config["n_downsampling"] + 1)

    @property
    def size_multiple(self) -> int:
        return 2 ** self.config["n_downsampling"]

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "reference" or self.training or self._wants_grad(x):
            return self.model(x)
        from inpaintbench.models.lama.fast import fast_forward, fold_weights

        key = self._weights_key()
        if self._cache is None or self._cache[0] != key:
            self._cache = None  # free the old folded weights before building new ones
            self._cache = (key, fold_weights(self))
        return fast_forward(self._cache[1], x)

    def _wants_grad(self, x: torch.Tensor) -> bool:
        """Autograd through the folded weights would not reach the parameters: take the reference path."""
        return torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))

    def _weights_key(self) -> tuple[Any, ...]:
        """Identity of the current weights: storage, version counter, device and dtype of every tensor."""
        return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in self.state_dict(keep_vars=True).values())

    def _apply(self, fn: Any, recurse: bool = True) -> LamaGenerator:  # .to(), .cuda(), .half() ...
        self._cache = None
        return super()._apply(fn, recurse)
