"""The ``fast`` inference path of :class:`~inpaintbench.models.lama.network.LamaGenerator`.

Same function as the reference path (parity-tested against the official fixture at 1e-4), computed with
fewer passes over memory:

* every eval-mode BatchNorm is folded into the conv before it: ``w' = w * s``, ``b' = beta - mean * s``
  with ``s = gamma / sqrt(var + eps)``, worked out in float64 and cast once;
* in each FFC the local->local and local->global 3x3 convs read the same padded ``x_l``, so they run as
  one conv with the two weights stacked; each stream is reflect-padded once (the official convs pad
  inside every ``padding_mode='reflect'`` call);
* adds and ReLUs are in place; activations are channels-last;
* the Fourier unit works on channels-last spectra, where the official interleaved channel order
  (2k = Re, 2k + 1 = Im) is exactly the memory order of ``view_as_real``: no stacking copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

CL = torch.channels_last


@dataclass
class _FFCWeights:
    """One folded FFC_BN_ACT with both streams (inside the ResNet blocks)."""

    cl: int
    w_lx: torch.Tensor  # [cl + cg, cl, 3, 3]: l2l and l2g stacked, BN_l / BN_g folded
    b_lx: torch.Tensor
    w_gl: torch.Tensor  # [cl, cg, 3, 3]: g2l, BN_l folded (its shift sits in b_lx)
    w1: torch.Tensor  # spectral conv1 + BN
    b1: torch.Tensor
    w_fu: torch.Tensor  # Fourier unit conv + BN
    b_fu: torch.Tensor
    w2: torch.Tensor  # spectral conv2, BN_g folded (its shift sits in b_lx)


@dataclass
class FoldedLama:
    """All weights of the fast path (plain tensors, not parameters: nothing here is in a state dict)."""

    stem: tuple[torch.Tensor, torch.Tensor]
    downs: list[tuple[torch.Tensor, torch.Tensor]]
    split: int  # local channels at the bottleneck
    blocks: list[tuple[_FFCWeights, _FFCWeights]]
    ups: list[tuple[torch.Tensor, torch.Tensor]]
    out: tuple[torch.Tensor, torch.Tensor]
    min_size: int


def _bn(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm, in float64."""
    s = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    return s, bn.bias.detach().double() - bn.running_mean.detach().double() * s


def _w(w: torch.Tensor, s: torch.Tensor | None = None, dim: int = 0) -> torch.Tensor:
    """Conv weight scaled per output channel (``dim`` 0 for Conv2d, 1 for ConvTranspose2d), float64."""
    w = w.detach().double()
    if s is None:
        return w
    shape = [1] * w.ndim
    shape[dim] = -1
    return w * s.reshape(shape)


def _final(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    t = t.to(like.dtype)
    return t.contiguous(memory_format=CL) if t.ndim == 4 else t.contiguous()


def _fold_block_layer(layer: Any) -> _FFCWeights:
    ffc = layer.ffc
    ref = ffc.convl2l.weight
    s_l, sh_l = _bn(layer.bn_l)
    s_g, sh_g = _bn(layer.bn_g)
    st = ffc.convg2g
    s1, sh1 = _bn(st.conv1[1])
    s_fu, sh_fu = _bn(st.fu.bn)
    return _FFCWeights(
        cl=ffc.out_cl,
        w_lx=_final(torch.cat([_w(ffc.convl2l.weight, s_l), _w(ffc.convl2g.weight, s_g)]), ref),
        b_lx=_final(torch.cat([sh_l, sh_g]), ref),
        w_gl=_final(_w(ffc.convg2l.weight, s_l), ref),
        w1=_final(_w(st.conv1[0].weight, s1), ref), b1=_final(sh1, ref),
        w_fu=_final(_w(st.fu.conv_layer.weight, s_fu), ref), b_fu=_final(sh_fu, ref),
        w2=_final(_w(st.conv2.weight, s_g), ref),
    )


@torch.no_grad()
def fold_weights(gen: Any) -> FoldedLama:
    """Fold ``gen``'s eval-mode BatchNorms into its convs (see the module docstring)."""
    cfg = gen.config
    n_down, n_blocks = cfg["n_downsampling"], cfg["n_blocks"]
    m = list(gen.model)
    ref = m[1].ffc.convl2l.weight

    def local(layer: Any) -> tuple[torch.Tensor, torch.Tensor]:
        s_l, sh_l = _bn(layer.bn_l)
        w, b = _w(layer.ffc.convl2l.weight, s_l), sh_l
        if layer.ffc.out_cg:  # the last down-sampling layer also starts the global stream
            s_g, sh_g = _bn(layer.bn_g)
            w, b = torch.cat([w, _w(layer.ffc.convl2g.weight, s_g)]), torch.cat([b, sh_g])
        return _final(w, ref), _final(b, ref)

    downs = [local(m[2 + i]) for i in range(n_down)]
    blocks = [(_fold_block_layer(m[2 + n_down + i].conv1), _fold_block_layer(m[2 + n_down + i].conv2))
              for i in range(n_blocks)]
    ups = []
    first_up = 3 + n_down + n_blocks
    for i in range(n_down):
        conv, bn = m[first_up + 3 * i], m[first_up + 3 * i + 1]
        s, sh = _bn(bn)
        ups.append((_final(_w(conv.weight, s, dim=1), ref), _final(conv.bias.detach().double() * s + sh, ref)))
    out_conv = m[first_up + 3 * n_down + 1]
    return FoldedLama(stem=local(m[1]), downs=downs, split=m[1 + n_down].ffc.out_cl, blocks=blocks, ups=ups,
                      out=(_final(out_conv.weight, ref), _final(out_conv.bias, ref)), min_size=gen.min_size)


def _pad(x: torch.Tensor, p: int) -> torch.Tensor:
    return F.pad(x, (p, p, p, p), mode="reflect")


def fourier_unit(u: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Fourier unit on channels-last data, in float32: ``irfft2(relu(conv1x1(interleave(rfft2(u)))))``."""
    bsz, c, h, wd = u.shape
    dt = torch.float64 if u.dtype == torch.float64 else torch.float32
    with torch.autocast(u.device.type, enabled=False):
        nhwc = u.to(dt).permute(0, 2, 3, 1)  # a view when u is channels-last
        spec = torch.fft.rfftn(nhwc, dim=(1, 2), norm="ortho")  # [B, h, wf, C] complex
        wf = spec.shape[2]
        # [B, h, wf, C, 2] -> [B, h, wf, 2C]: channel 2k = Re, 2k+1 = Im, the official interleaving
        z = torch.view_as_real(spec).reshape(bsz, h, wf, 2 * c).permute(0, 3, 1, 2)
        z = F.conv2d(z, w.to(dt), b.to(dt)).relu_()
        z = z.permute(0, 2, 3, 1).reshape(bsz, h, wf, c, 2).contiguous()
        out = torch.fft.irfftn(torch.view_as_complex(z), s=(h, wd), dim=(1, 2), norm="ortho")
        return out.permute(0, 3, 1, 2)


def _ffc_layer(p: _FFCWeights, xl: torch.Tensor, xg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = F.conv2d(_pad(xl, 1), p.w_lx, p.b_lx)  # [B, cl + cg]: l2l (+ BN_l shift) and l2g (+ BN_g shift)
    yl = F.conv2d(_pad(xg, 1), p.w_gl)
    yl.add_(a[:, :p.cl]).relu_()
    u = F.conv2d(xg, p.w1, p.b1).relu_()
    u = u.add_(fourier_unit(u, p.w_fu, p.b_fu))
    yg = F.conv2d(u, p.w2)
    yg.add_(a[:, p.cl:]).relu_()
    return yl, yg


def fast_forward(f: FoldedLama, x: torch.Tensor) -> torch.Tensor:
    """The generator forward with folded weights; ``x`` as for :class:`LamaGenerator`."""
    x = x.to(f.stem[0].dtype if not torch.is_autocast_enabled(x.device.type) else x.dtype)
    x = x.contiguous(memory_format=CL)
    x = F.conv2d(_pad(x, 3), *f.stem).relu_()
    for w, b in f.downs:
        x = F.conv2d(_pad(x, 1), w, b, stride=2).relu_()
    xl, xg = x[:, :f.split], x[:, f.split:]
    for c1, c2 in f.blocks:
        yl, yg = _ffc_layer(c1, xl, xg)
        yl, yg = _ffc_layer(c2, yl, yg)
        xl, xg = yl.add_(xl), yg.add_(xg)
    x = torch.cat([xl, xg], dim=1)
    for w, b in f.ups:
        x = F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1).relu_()
    return torch.sigmoid_(F.conv2d(_pad(x, 3), *f.out))
