"""MAT layers: fast paths agree with the reference paths, and the reference ops with first principles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import convolve2d
from test_mat_fill import shifted_window_mask

from inpaintbench.models.mat import Discriminator, Generator, ops, set_impl
from inpaintbench.models.mat.attention import SwinTransformerBlock, WindowAttention, shift_window_mask
from inpaintbench.models.mat.layers import (
    Conv2dLayer,
    Conv2dLayerPartial,
    FullyConnectedLayer,
    MinibatchStdLayer,
    ModulatedConv2d,
    StyleConv,
    get_impl,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread_float64():
    """Tiny networks are dominated by per-op overhead, which extra threads only add to on a busy CPU.

    Everything here runs in float64 (default dtype: layers, inputs), so fast-vs-reference bounds follow
    from the arithmetic, not from one CPU's float32 kernels; the float32 paths' own accuracy is what
    test_mat_parity.py checks against the official network.
    """
    n, dt = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(dt)
    torch.set_num_threads(n)


U64 = 2.0**-53
# Reduction terms along one layer test's chain, in all: the largest tensor any of these layers makes
# has <= 3 * 6 * 16 * 16 ~ 4.6e3 elements and the chains are <= 10 ops long, so <= 5e4 < 1e5.
N_LAYER = 10**5


def close(a: torch.Tensor, b: torch.Tensor, n: int = N_LAYER) -> bool:
    """Two float64 paths agree to their worst-case rounding: recursive summation along a chain of
    reductions of n terms in all errs by at most n*u*S per path (u = 2^-53, S = magnitude of the
    summed terms), so the paths differ by <= 2*n*u*S. S is taken as max(1, max|b|): the sqrt(n)
    slack between that worst case and typical rounding covers the cancellation S/max|b| of these
    random-weight layers. Here 2*n*u = 2.2e-11 (layers), ~1e-7 (tiny networks), while any formula
    error (a gain, a flip, a missing term) moves results by >= 1e-3 relative."""
    a, b = a.detach(), b.detach()
    assert a.dtype == b.dtype == torch.float64
    return float((a - b).abs().max()) <= 2 * n * U64 * max(1.0, float(b.abs().max()))


def chain_terms(modules, run) -> tuple[object, int]:
    """run()'s result and n for :func:`close`: (number of weight tensors, each reducing once) times
    (the largest tensor any module makes, an upper bound on every reduction's length)."""
    k_max = [0]

    def track(_mod, _inp, out) -> None:
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor):
                k_max[0] = max(k_max[0], t.numel())

    handles = [m.register_forward_hook(track) for mod in modules for m in mod.modules()]
    try:
        result = run()
    finally:
        for h in handles:
            h.remove()
    n_weights = sum(1 for mod in modules for name, _ in mod.named_parameters() if name.endswith("weight"))
    return result, n_weights * k_max[0]


# ------------------------------------------------------------------ resampling ops


def upfirdn_numpy(x: np.ndarray, f: np.ndarray, up: int, down: int, pad: tuple[int, int, int, int],
                  gain: float) -> np.ndarray:
    """Independent definition: zero insertion, zero padding, true 2-D convolution, decimation."""
    h, w = x.shape
    u = np.zeros((h * up, w * up))
    u[::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((py0, py1), (px0, px1)))
    y = convolve2d(u, f * gain, mode="valid")
    return y[::down, ::down]


@settings(max_examples=25, deadline=None)
@given(h=st.integers(4, 12), w=st.integers(4, 12), up=st.sampled_from([1, 2]), down=st.sampled_from([1, 2]),
       pad=st.tuples(*[st.integers(0, 3)] * 4), seed=st.integers(0, 1000))
def test_upfirdn2d_ref_is_true_convolution(h, w, up, down, pad, seed) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(h, w))
    f = rng.normal(size=(4, 4))  # asymmetric on purpose: exposes a missing flip
    ours = ops.upfirdn2d_ref(torch.tensor(x)[None, None], torch.tensor(f), up=up, down=down, pad=pad, gain=1.5)
    # float64 on both sides, 16 taps per output: each errs by <= 16*u*S, S = 1.5*sum|f||x| <~ 1.5*16*3*4,
    # so |diff| <= 2*16*2^-53*288 ~ 1e-12; 1e-10 leaves 100x, while a missing flip moves outputs by O(1).
    np.testing.assert_allclose(ours[0, 0].numpy(), upfirdn_numpy(x, f, up, down, pad, 1.5), atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(c=st.integers(1, 5), h=st.integers(2, 10), w=st.integers(2, 10), seed=st.integers(0, 1000))
def test_fast_resampling_equals_reference(c, h, w, seed) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, h, w, generator=g)
    f = ops.make_fir_filter()
    n = 16  # one FIR of 16 taps per output
    assert close(ops.upsample2d(x, f), ops.upsample2d_ref(x, f), n)
    assert close(ops.fir_filter(x, f, pad=2), ops.upfirdn2d_ref(x, f, pad=(2, 2, 2, 2)), n)
    if h % 2 == 0 and w % 2 == 0:
        assert close(ops.fir_filter(x, f, pad=1, stride=2), ops.upfirdn2d_ref(x, f, down=2, pad=(1, 1, 1, 1)), n)


def test_fir_filter_is_normalised_and_upsampling_keeps_dc() -> None:
    f = ops.make_fir_filter()
    # taps k/64 and their products with 4 (the upsampling gain) are dyadic: every sum is exact, in any
    # order and any float dtype, so equality is the derived bound
    assert float(f.sum()) == 1.0
    y = ops.upsample2d_ref(torch.ones(1, 1, 8, 8), f)
    assert y.shape == (1, 1, 16, 16)
    assert torch.equal(y[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))


# ------------------------------------------------------------------ layers: fast == reference


def both(module: torch.nn.Module, fn):
    set_impl(module, "reference")
    ref = fn()
    set_impl(module, "fast")
    fast = fn()
    return fast, ref


@pytest.mark.parametrize("k,up,down,act,bias", [(3, 1, 1, "lrelu", True), (1, 1, 1, "linear", True),
                                                (3, 1, 2, "lrelu", True), (1, 1, 2, "linear", False),
                                                (3, 2, 1, "lrelu", True)])
def test_conv2d_layer(k, up, down, act, bias) -> None:
    torch.manual_seed(0)
    layer = Conv2dLayer(6, 5, k, bias=bias, activation=act, up=up, down=down)
    if bias:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 6, 8, 8)
    fast, ref = both(layer, lambda: layer(x, gain=0.7))
    assert fast.shape == ref.shape == (2, 5, 8 * up // down, 8 * up // down)
    assert close(fast, ref)


@pytest.mark.parametrize("act,lr", [("linear", 1.0), ("lrelu", 0.01)])
def test_fully_connected(act, lr) -> None:
    torch.manual_seed(1)
    fc = FullyConnectedLayer(7, 4, activation=act, lr_multiplier=lr, bias_init=0.5)
    x = torch.randn(3, 5, 7)
    fast, ref = both(fc, lambda: fc(x))
    assert close(fast, ref)
    w = fc.weight * lr / np.sqrt(7)
    manual = x @ w.t() + fc.bias * lr
    if act == "lrelu":
        manual = torch.nn.functional.leaky_relu(manual, 0.2) * np.sqrt(2)
    assert close(ref, manual)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("up,k,demod", [(1, 3, True), (2, 3, True), (1, 1, False)])
def test_modulated_conv(batch, up, k, demod) -> None:
    torch.manual_seed(2)
    conv = ModulatedConv2d(6, 5, k, style_dim=9, demodulate=demod, up=up)
    x, s = torch.randn(batch, 6, 8, 8), torch.randn(batch, 9)
    fast, ref = both(conv, lambda: conv(x, s, gain=1.3))
    assert close(fast, ref)
    if batch > 1:  # each sample only sees its own style
        set_impl(conv, "fast")
        assert close(conv(x[1:2], s[1:2], gain=1.3), fast[1:2])


def test_style_conv_noise_modes() -> None:
    torch.manual_seed(3)
    sc = StyleConv(4, 4, 6, resolution=8)
    torch.nn.init.constant_(sc.noise_strength, 0.5)
    x, s = torch.randn(2, 4, 8, 8), torch.randn(2, 6)
    for mode in ("const", "none"):
        fast, ref = both(sc, lambda mode=mode: sc(x, s, noise_mode=mode))
        assert close(fast, ref)
    set_impl(sc, "fast")
    assert not torch.equal(sc(x, s, noise_mode="const"), sc(x, s, noise_mode="none"))
    gens = [torch.Generator().manual_seed(i) for i in (5, 6)]
    batch = sc(x, s, noise_mode="random", generator=gens)
    alone = sc(x[1:], s[1:], noise_mode="random", generator=[torch.Generator().manual_seed(6)])
    assert close(batch[1:], alone)
    with pytest.raises(ValueError):
        sc(x, s, noise_mode="loud")


def test_partial_conv_ratio_and_mask_update() -> None:
    torch.manual_seed(4)
    pc = Conv2dLayerPartial(3, 2, 3, activation="lrelu", down=2)
    x = torch.randn(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :3, :3] = 1
    y, m = pc(x, mask)
    count = torch.nn.functional.conv2d(mask, torch.ones(1, 1, 3, 3), stride=2, padding=1)
    expected = pc.conv(x) * torch.where(count > 0, 9 / (count + 1e-8), torch.zeros_like(count))
    assert close(y, expected)
    assert torch.equal(m, (count > 0).double())
    y2, m2 = pc(x, None)
    assert m2 is None and close(y2, pc.conv(x))


def test_minibatch_std_groups_by_stride() -> None:
    x = torch.randn(4, 3, 2, 2)
    y = MinibatchStdLayer(group_size=2)(x)
    # groups are samples {0, 2} and {1, 3} (sample i in group i mod N/G)
    for a, b in ((0, 2), (1, 3)):
        pair = torch.stack([x[a], x[b]])
        sd = ((pair - pair.mean(0)).square().mean(0) + 1e-8).sqrt().mean()
        # float64, ~20 roundings per side (two 2-term means, square, sqrt, a 12-term mean), each of
        # at most u times the largest magnitude met, max(1, max|x|^2)
        tol = 2 * 20 * U64 * max(1.0, float(x.abs().max()) ** 2)
        assert float((y[[a, b], 3] - sd).abs().max()) <= tol
    with pytest.raises(ValueError):
        MinibatchStdLayer(group_size=4)(torch.randn(6, 3, 2, 2))


# ------------------------------------------------------------------ attention


@pytest.mark.parametrize("ws,n_win", [(8, 64), (16, 4), (4, 4)])
def test_shift_mask_definition(ws, n_win) -> None:
    side = ws * int(np.sqrt(n_win))
    ours = shift_window_mask(side, side, ws, ws // 2)
    assert torch.equal(ours, shifted_window_mask((n_win, ws * ws, ws * ws)))


def test_window_attention_sdpa_equals_explicit_with_mask_bias() -> None:
    torch.manual_seed(5)
    attn = WindowAttention(12, 3)
    x = torch.randn(8, 16, 12)  # B*nW = 2*4 windows of 16 tokens
    mask = (torch.rand(8, 16, 1) > 0.5).double()
    mask[0] = 0  # an all-hole window
    mask[1, :3] = 0.5  # fractional values are added raw, as in the official code
    shift = shift_window_mask(8, 8, 4, 2)
    (fast, m_fast), (ref, m_ref) = both(attn, lambda: attn(x, mask, shift))
    assert close(fast, ref)
    assert torch.equal(m_fast, m_ref)
    # a window becomes valid everywhere iff any of its tokens was valid
    assert torch.equal(m_ref[:, 0, 0], (mask.sum(dim=(1, 2)) > 0).double())
    assert torch.equal(m_ref[0], torch.zeros(16, 1))


@pytest.mark.parametrize("shift", [0, 2])
def test_swin_block_fast_equals_reference(shift) -> None:
    torch.manual_seed(6)
    blk = SwinTransformerBlock(12, (8, 8), 3, window_size=4, shift_size=shift)
    x = torch.randn(2, 64, 12)
    mask = (torch.rand(2, 64, 1) > 0.6).double()
    (fast, mf), (ref, mr) = both(blk, lambda: blk(x, (8, 8), mask))
    assert close(fast, ref) and torch.equal(mf, mr)


# ------------------------------------------------------------------ networks


def test_set_impl_rejects_unknown_and_reports() -> None:
    g = Generator(128, config="tiny")
    assert get_impl(g) == "fast"
    assert get_impl(set_impl(g, "reference")) == "reference"
    with pytest.raises(ValueError):
        set_impl(g, "turbo")


@pytest.mark.parametrize("res", [128])
def test_tiny_config_shapes_and_fast_equals_reference(res) -> None:
    torch.manual_seed(7)
    G = Generator(res, z_dim=32, w_dim=32, config="tiny").eval()
    D = Discriminator(res, config="tiny", mbstd_group_size=2).eval()
    assert sum(p.numel() for p in G.parameters()) < 1_500_000
    x = torch.rand(2, 3, res, res) * 2 - 1
    m = (torch.rand(2, 1, res, res) > 0.4).double()
    z = torch.randn(2, 32)
    mm = [(torch.rand(2, 256, G.widths.dim) > 0.5).double(), (torch.rand(2, G.widths.nf(16), 16, 16) > 0.5).double()]
    with torch.no_grad():
        ((out, s1), (out_r, s1_r)), n = chain_terms(
            [G], lambda: both(G, lambda: G(x, m, z, noise_mode="const", return_stg1=True, mix_masks=mm)))
        ((lg, lgs), (lg_r, lgs_r)), n_d = chain_terms([G, D], lambda: both(D, lambda: D(out, m, s1)))
    assert 2 * n_d * U64 < 1e-6, n_d  # the bound must stay tight enough to catch formula errors
    assert out.shape == s1.shape == (2, 3, res, res)
    assert close(out, out_r, n) and close(s1, s1_r, n)
    assert close(lg, lg_r, n_d) and close(lgs, lgs_r, n_d)  # D's chain continues G's
    assert torch.equal(out[m.expand_as(out) == 1], x[m.expand_as(x) == 1])


def test_gradients_fast_equal_reference() -> None:
    """The fast path is trainable: same gradients as the reference path (tiny nets).

    Both paths run in float64, so the bound below follows from the arithmetic instead of from one
    CPU's float32 kernels (in float32 the noise-strength gradients, sums of ~1e5 terms that cancel to
    ~1e-3 of their magnitude, moved by 2x the old bound between two hosts). The "winograd" impl is
    float32-only, but "fast" with gradients never takes it, so float64 runs the same code.
    """
    torch.manual_seed(8)
    f64 = torch.float64
    G = Generator(128, z_dim=16, w_dim=16, config="tiny").train().to(f64)
    D = Discriminator(128, config="tiny", mbstd_group_size=2).train().to(f64)
    x = (torch.rand(2, 3, 128, 128) * 2 - 1).to(f64)
    m = (torch.rand(2, 1, 128, 128) > 0.5).to(f64)
    z = torch.randn(2, 16)
    mm = [(torch.rand(2, 256, G.widths.dim) > 0.5).to(f64), (torch.rand(2, G.widths.nf(16), 16, 16) > 0.5).to(f64)]

    def grads(impl: str) -> dict[str, torch.Tensor]:
        set_impl(G, impl)
        set_impl(D, impl)
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        img, s1 = G(x, m, z, noise_mode="const", return_stg1=True, mix_masks=mm, skip_w_avg_update=True)
        lg, lgs = D(img, m, s1)
        (lg.sum() + lgs.sum()).backward()
        return {n: p.grad.clone() for n, p in [*G.named_parameters(), *D.named_parameters()] if p.grad is not None}

    # Magnitude of the summed terms, observed in the reference pass where the terms are visible:
    # - a noise strength's gradient is sum(noise * dL/dy) over B*C*H*W elements of the conv output y;
    # - an attention key bias's gradient is sum over tokens of dL/dk, which is 0 in exact arithmetic
    #   (softmax is shift-invariant per query), so only the terms' magnitude can bound it.
    terms: dict[str, torch.Tensor] = {}
    k_max = [0]  # the largest tensor any layer makes: the longest reduction of the chain

    def on_grad(key: str, fn):
        """A forward hook: when the output's gradient arrives, store fn(gradient) under key."""
        def hook(_mod, _inp, y: torch.Tensor) -> None:
            y.register_hook(lambda g: terms.__setitem__(key, fn(g.detach())))
        return hook

    def track(_mod, _inp, out) -> None:
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor):
                k_max[0] = max(k_max[0], t.numel())

    handles = [mod.register_forward_hook(track) for mod in [*G.modules(), *D.modules()]]
    for name, mod in G.named_modules():
        if isinstance(mod, StyleConv) and mod.use_noise:
            noise = mod.noise_const.abs()
            handles.append(mod.conv.register_forward_hook(
                on_grad(f"{name}.noise_strength", lambda g, noise=noise: (g.abs() * noise).sum())))
        if isinstance(mod, WindowAttention):
            handles.append(mod.k.register_forward_hook(
                on_grad(f"{name}.k.bias", lambda g: g.abs().flatten(0, -2).sum(0).max())))
    ref = grads("reference")
    for h in handles:
        h.remove()
    fast = grads("fast")
    assert fast.keys() == ref.keys() and len(fast) > 100
    assert sum(k.endswith("noise_strength") for k in terms) >= 4 and sum(k.endswith("k.bias") for k in terms) >= 4

    # Error bound. Every gradient entry ends a chain of at most L = 2 * (number of weight tensors)
    # reductions (each layer once forward, once backward), none longer than K = k_max terms. The
    # deterministic worst case of recursive summation, accumulated along the chain, bounds each
    # path's error by N*u*S with N = L*K, u = 2^-53 and S the magnitude of the summed terms; the two
    # paths differ by at most twice that. Here N ~ 408 * 1.2e6 ~ 5e8, so tol ~ 1e-7 relative: no
    # statistical assumption, yet still 1e6 times smaller than any formula error (a wrong gain or a
    # missing term moves gradients by >= 1e-1 relative). Measured float64 differences: <= 4e-14 of S.
    # Where the terms are not observed, S is taken as max|gradient| (the entries are not cancelling
    # sums; the sqrt(N) ~ 3e4 slack between worst case and typical rounding covers that).
    n_weights = sum(1 for n in ref if n.endswith("weight"))
    tol = 2 * (2 * n_weights * k_max[0]) * 2.0**-53
    assert tol < 1e-6, tol  # the bound must stay tight enough to catch formula errors
    for name in ref:
        s = float(ref[name].abs().max())
        if name in terms:
            s = max(s, float(terms[name]))
        if name.endswith("attn.k.bias"):
            bound = tol * s
            assert max(float(fast[name].abs().max()), float(ref[name].abs().max())) <= bound, name
            continue
        assert s > 0, name
        assert float((fast[name] - ref[name]).abs().max()) <= tol * s, name


def test_mapping_truncation_cutoff_and_w_avg_tracking() -> None:
    torch.manual_seed(9)
    G = Generator(128, z_dim=8, w_dim=8, config="tiny")
    torch.nn.init.normal_(G.mapping.w_avg)
    z = torch.randn(3, 8)
    with torch.no_grad():
        G.eval()
        ws = G.mapping(z, None)
        cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
        # lerp vs the formula, 3 roundings each of <= u * max(|w_avg|, |ws|) (float64 here)
        want = G.mapping.w_avg + 0.5 * (ws[:, :2] - G.mapping.w_avg)
        tol = 2 * 3 * U64 * max(float(G.mapping.w_avg.abs().max()), float(ws.abs().max()))
        assert float((cut[:, :2] - want).abs().max()) <= tol
        assert torch.equal(cut[:, 2:], ws[:, 2:])
        before = G.mapping.w_avg.clone()
        G.train()
        G.mapping(z, None)
        assert not torch.equal(G.mapping.w_avg, before)
        after = G.mapping.w_avg.clone()
        G.mapping(z, None, skip_w_avg_update=True)
        assert torch.equal(G.mapping.w_avg, after)


def test_generator_rejects_wrong_sizes() -> None:
    G = Generator(128, config="tiny")
    with pytest.raises(ValueError, match="images must be"):
        G(torch.zeros(1, 3, 64, 64), torch.ones(1, 1, 64, 64), torch.randn(1, 512))
    with pytest.raises(ValueError):
        Generator(96)
    with pytest.raises(ValueError, match="mix_masks"):
        G(torch.zeros(1, 3, 128, 128), torch.ones(1, 1, 128, 128), torch.randn(1, 512),
          mix_masks=(torch.ones(1, 2, 3), None))


def test_conditional_variants_run() -> None:
    """c_dim > 0 (label embedding in the mapping, projection head in D) follows the official layout."""
    torch.manual_seed(10)
    G = Generator(128, z_dim=8, w_dim=8, c_dim=3, config="tiny").eval()
    D = Discriminator(128, c_dim=3, config="tiny", mbstd_group_size=2).eval()
    assert "mapping.embed.weight" in G.state_dict() and "mapping.embed.weight" in D.state_dict()
    assert "w_avg" not in dict(D.mapping.named_buffers())
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    m = (torch.rand(2, 1, 128, 128) > 0.5).double()
    c = torch.eye(3)[:2]
    with torch.no_grad():
        img, s1 = G(x, m, torch.randn(2, 8), c, noise_mode="none", return_stg1=True)
        logits, logits_s1 = D(img, m, s1, c)
    assert logits.shape == logits_s1.shape == (2, 1) and torch.isfinite(logits).all()
    with pytest.raises(ValueError):
        G.mapping(torch.randn(2, 8), None)
