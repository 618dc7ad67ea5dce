"""big-lama generator: layout against the official manifest, parity on the official fixture, FFT maths.

Tolerance of the parity checks: absolute 1e-4 on the raw output (values in (0, 1)). The facts file
measured float32 drift of the official network at ~2e-6 (1 vs 2 threads 1.8e-6; float32 vs float64
1.3e-6), and every plausible mistake tried (wrong FFT norm, blocked Re/Im, 1-D FFT, zero padding, BN eps,
concat order, a skipped block...) moved the output at least 1.8e-3, i.e. >= 18x the bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_lama_fill import canonical, fill_module, load_fixture, manifest

from inpaintbench.models.lama import LamaGenerator
from inpaintbench.models.lama.adapter import build_network_input, composite, pad_symmetric
from inpaintbench.models.lama.fast import fold_weights, fourier_unit
from inpaintbench.models.lama.network import BIG_LAMA_CONFIG, FourierUnit

PARITY_ATOL = 1e-4  # see the module docstring
TINY = {"ngf": 8, "n_downsampling": 3, "n_blocks": 2, "ratio": 0.75}


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BatchNorm statistics that keep activations O(1) (a fresh BN is an identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if k.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif k.endswith("running_mean") or k.endswith("bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif t.ndim == 1:
                t.copy_(1.0 + 0.1 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (1.0 / math.sqrt(t[0].numel())))
    return module


@pytest.fixture(scope="module")
def big_lama() -> LamaGenerator:
    return fill_module(LamaGenerator()).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def fixture() -> dict:
    return load_fixture()


def test_default_is_big_lama_and_keys_equal_the_manifest() -> None:
    gen = LamaGenerator()
    assert gen.init_kwargs() == BIG_LAMA_CONFIG
    sd = gen.state_dict()
    man = manifest()
    assert list(sd) == [canonical(k) for k in man]  # same keys, same order as the official state_dict()
    for key, (shape, dtype, _kind) in man.items():
        t = sd[canonical(key)]
        assert tuple(t.shape) == shape and str(t.dtype).replace("torch.", "") == dtype, key
    assert len(gen.model) == 36
    assert gen.model[26] is gen.model[29] is gen.model[32]  # one shared up-sampling ReLU (facts §1)


def test_fixture_holds_the_big_lama_config(fixture) -> None:
    cfg = fixture["config"]
    assert cfg["kind"] == "ffc_resnet" and cfg["n_blocks"] == BIG_LAMA_CONFIG["n_blocks"]
    assert cfg["ngf"] == BIG_LAMA_CONFIG["ngf"] and cfg["n_downsampling"] == BIG_LAMA_CONFIG["n_downsampling"]
    assert cfg["resnet_conv_kwargs"]["ratio_gin"] == BIG_LAMA_CONFIG["ratio"]
    assert not cfg["resnet_conv_kwargs"]["enable_lfu"]


def test_network_input_and_composite_are_built_as_the_fixture(fixture) -> None:
    x = build_network_input(fixture["image"], fixture["mask"])
    assert torch.equal(x, fixture["input"])  # exact: the same float32 products
    comp = composite(fixture["output"], fixture["image"], fixture["mask"])
    assert torch.equal(comp, fixture["composited"])


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_parity_with_the_official_generator(big_lama, fixture, impl) -> None:
    big_lama.impl = impl
    with torch.no_grad():
        out = big_lama(fixture["input"])
    err = (out - fixture["output"]).abs().max().item()
    assert err <= PARITY_ATOL, f"{impl}: max |diff| {err:.3g}"
    comp = composite(out, fixture["image"], fixture["mask"])
    assert (comp - fixture["composited"]).abs().max().item() <= PARITY_ATOL
    big_lama.impl = "fast"


@pytest.mark.slow
def test_every_stage_matches_the_fixture_samples(big_lama, fixture) -> None:
    """Locates a mismatch: each ``model[i]`` output at the fixture's 64 sample positions (reference path)."""
    got: dict[int, dict[str, torch.Tensor]] = {}
    x = fixture["input"]
    with torch.no_grad():  # the Sequential's own loop, recording every output (cloned: ReLUs are in place)
        for i, layer in enumerate(big_lama.model):
            x = layer(x)
            got[i] = ({"l": x[0].clone(), "g": x[1].clone() if torch.is_tensor(x[1]) else x[1]}
                      if isinstance(x, tuple) else {"y": x.clone()})
    for st in fixture["stage_stats"]:
        i = st["index"]
        assert type(big_lama.model[i]).__name__ == st["module"]
        for part in ("y", "l", "g"):
            ref = st.get(part)
            if ref is None:
                continue
            t = got[i][part]
            assert list(t.shape) == list(ref["shape"]), (i, part)
            vals = t.reshape(-1)[torch.tensor(ref["samples_idx"])].double()
            # 1e-4 relative to the stage's scale: the same float32 drift argument as the output bound
            tol = PARITY_ATOL * max(1.0, ref["absmax"])
            assert (vals - torch.tensor(ref["samples"], dtype=torch.float64)).abs().max() <= tol, (i, part)


# ---------------------------------------------------------------------- the Fourier unit, independently


def dft_fourier_unit(fu: FourierUnit, u: torch.Tensor) -> torch.Tensor:
    """The Fourier unit in float64 from the DFT sums (no torch.fft): an independent statement of the maths.

    Forward: X[c,a,b] = sum_{y,x} u[c,y,x] exp(-2 pi i (a y / h + b x / w)) / sqrt(h w), b = 0..w//2.
    Channels 2c, 2c+1 = Re, Im of X[c]; 1x1 conv, eval BatchNorm, ReLU; pairs back to complex Z.
    Inverse of a half spectrum (torch's c2r treats it as Hermitian): out[c,y,x] =
    sum_b m_b Re(sum_a Z[c,a,b] exp(2 pi i (a y / h + b x / w))) / sqrt(h w), with m_b = 1 for b = 0 and
    (w even) b = w/2, else 2.
    """
    b, c, h, w = u.shape
    wf = w // 2 + 1
    u = u.double()
    ay = torch.outer(torch.arange(h), torch.arange(h)).double() / h
    bx = torch.outer(torch.arange(wf), torch.arange(w)).double() / w
    fh, fw = torch.exp(-2j * math.pi * ay), torch.exp(-2j * math.pi * bx)  # [h(a), h(y)], [wf(b), w(x)]
    spec = torch.einsum("ncyx,ay,bx->ncab", u.to(torch.complex128), fh, fw) / math.sqrt(h * w)
    z = torch.stack([spec.real, spec.imag], dim=2).reshape(b, 2 * c, h, wf)
    wt = fu.conv_layer.weight.double()[:, :, 0, 0]
    z = torch.einsum("oi,niab->noab", wt, z)
    bn = fu.bn
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    z = (z - bn.running_mean.double()[:, None, None]) * scale[:, None, None] + bn.bias.double()[:, None, None]
    z = z.clamp_min(0).reshape(b, c, 2, h, wf)
    zc = torch.complex(z[:, :, 0], z[:, :, 1])
    m = torch.full((wf,), 2.0, dtype=torch.float64)
    m[0] = 1.0
    if w % 2 == 0:
        m[-1] = 1.0
    inner = torch.einsum("ncab,ay,bx->ncbyx", zc, fh.conj(), fw.conj())  # exp(+2 pi i ...)
    return torch.einsum("ncbyx,b->ncyx", inner.real, m) / math.sqrt(h * w)


@pytest.mark.parametrize("h,w", [(25, 33), (6, 9), (4, 6), (7, 4), (32, 32)])
def test_fourier_unit_matches_a_float64_dft(h, w) -> None:
    torch.manual_seed(h * 100 + w)
    fu = randomize_(FourierUnit(6, 6), seed=h + w).eval()
    u = torch.randn(2, 6, h, w)
    ref = dft_fourier_unit(fu, u)
    # float32 bound: unit roundoff 6e-8 x (2 FFTs of log2(h w) <= 10 stages + a 12-term 1x1 conv) ~ 2e-6 of the
    # output scale; 1e-5 x max|ref| leaves 5x margin. A blocked Re/Im order or a missing s=(h, w) is O(1) off.
    tol = 1e-5 * ref.abs().max().item()
    with torch.no_grad():
        got_ref = fu(u)
        s = fu.bn.weight / torch.sqrt(fu.bn.running_var + fu.bn.eps)
        sh = fu.bn.bias - fu.bn.running_mean * s
        w_fold = (fu.conv_layer.weight * s[:, None, None, None]).contiguous(memory_format=torch.channels_last)
        got_fast = fourier_unit(u.contiguous(memory_format=torch.channels_last), w_fold, sh)
    assert got_ref.shape == got_fast.shape == (2, 6, h, w)
    assert (got_ref.double() - ref).abs().max().item() <= tol
    assert (got_fast.double() - ref).abs().max().item() <= tol


# ---------------------------------------------------------------------- whole generator at any size


@pytest.mark.parametrize("h,w", [(16, 16), (16, 24), (24, 40), (200, 264), (56, 48)])
def test_generator_runs_at_multiples_of_8_and_paths_agree(h, w) -> None:
    gen = randomize_(LamaGenerator(**TINY), seed=1).eval()
    x = torch.rand(2, 4, h, w)
    with torch.no_grad():
        gen.impl = "reference"
        ref32 = gen(x)
        gen.impl = "fast"
        fast = gen(x)
        ref64 = gen.double()(x.double())
    assert fast.shape == (2, 3, h, w) and torch.isfinite(fast).all()
    # float32 vs float64 of the same maths: same bound as the parity test (drift ~1e-6)
    assert (ref32.double() - ref64).abs().max().item() <= PARITY_ATOL
    assert (fast.double() - ref64).abs().max().item() <= PARITY_ATOL


def test_fast_path_follows_weight_changes_and_training_uses_the_reference() -> None:
    gen = randomize_(LamaGenerator(**TINY), seed=2).eval()
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        a = gen(x)
        randomize_(gen, seed=3)
        b = gen(x)
        gen.impl = "reference"
        c = gen(x)
    assert (a - b).abs().max() > 1e-3 and (b - c).abs().max() <= 1e-5
    gen.train()
    y = gen(x)  # training mode: reference path, gradients reach the parameters
    y.mean().backward()
    assert gen.model[1].ffc.convl2l.weight.grad is not None


def test_fold_weights_is_outside_the_state_dict() -> None:
    gen = randomize_(LamaGenerator(**TINY), seed=4).eval()
    keys = list(gen.state_dict())
    with torch.no_grad():
        gen(torch.rand(1, 4, 16, 16))
    assert list(gen.state_dict()) == keys
    assert len(fold_weights(gen).blocks) == TINY["n_blocks"]


@pytest.mark.parametrize("h,w", [(5, 7), (16, 16), (37, 50), (1, 3), (200, 264)])
def test_symmetric_padding_equals_numpy(h, w) -> None:
    x = torch.arange(2 * 3 * h * w, dtype=torch.float32).reshape(2, 3, h, w)
    got = pad_symmetric(x, 8, 16)
    th, tw = max(16, -(-h // 8) * 8), max(16, -(-w // 8) * 8)
    want = np.pad(x.numpy(), ((0, 0), (0, 0), (0, th - h), (0, tw - w)), mode="symmetric")
    assert got.shape == (2, 3, th, tw)
    assert np.array_equal(got.numpy(), want)


def test_ratio_outside_the_two_stream_range_is_refused() -> None:
    with pytest.raises(ValueError, match="ratio"):
        LamaGenerator(ratio=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CPU/CUDA FFT agreement)")
def test_cuda_matches_cpu_at_an_odd_spectrum_width() -> None:
    """cuFFT vs CPU FFT, TF32 off: the same float32 drift bound as the parity test."""
    gen = randomize_(LamaGenerator(**TINY), seed=5).eval()
    x = torch.rand(2, 4, 200, 264)  # bottleneck 25 x 33: rfft width 17
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            cpu = gen(x)
            gpu = gen.to("cuda")(x.cuda()).cpu()
            gen.impl = "reference"
            gpu_ref = gen(x.cuda()).cpu()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
    assert (gpu - cpu).abs().max().item() <= PARITY_ATOL
    assert (gpu_ref - cpu).abs().max().item() <= PARITY_ATOL
