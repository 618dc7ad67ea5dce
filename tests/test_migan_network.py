"""MI-GAN network: structure equals the official manifests at 256 and 512, parity with the official
generator on the 256 fixture (raw output, composite, intermediates), the fast path against the
official operation order, and the fixed-resolution contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_migan_fill import fill_module, load_fixture, read_manifest

from inpaintbench.models.migan.network import MIGANGenerator, Upsample2d, fir_weight, get_impl, lattice, set_impl

# Parity bound on the raw output (nominal range [-1, 1]), as the acceptance asks: float32
# drift between implementations was measured at ~2e-6 (official f32 vs f64: 1.1e-6; our fast path vs
# the fixture: 1.7e-6; 1 vs 2 threads: 1.1e-6), while every mistake tried on this network moved the
# output >= 18x further than the bound (noise omitted: 0.23, mask channel not shifted by 0.5: 0.47,
# image not masked: 0.21, polarity flipped: 0.48; MI-GAN notes §7). So 1e-4 absolute passes any correct
# float32 port on any host and fails every one of those mistakes.
ATOL = 1e-4


@pytest.fixture(scope="module")
def fixture() -> dict:
    return load_fixture()


@pytest.fixture(scope="module")
def filled256() -> MIGANGenerator:
    return fill_module(MIGANGenerator(256)).eval().requires_grad_(False)


# ------------------------------------------------------------------ structure


@pytest.mark.parametrize("res", [256, 512])
def test_state_dict_equals_the_manifest(res: int) -> None:
    """Same keys in the same order, same shapes, dtypes and param/buffer kinds as the official checkpoint."""
    rows = read_manifest(res)
    G = MIGANGenerator(res)
    sd = G.state_dict()
    assert list(sd) == [r[0] for r in rows]
    params = dict(G.named_parameters())
    buffers = dict(G.named_buffers())
    for key, shape, dtype, kind, numel in rows:
        t = sd[key]
        assert tuple(t.shape) == shape and t.numel() == numel, key
        assert str(t.dtype).replace("torch.", "") == dtype, key
        assert (key in params) == (kind == "param") and (key in buffers) == (kind == "buffer"), key
    # the summary line of the manifest: tensors and element counts per kind
    summary = next(ln for ln in (p for p in open_manifest_lines(res)) if ln.startswith("# keys="))
    stats = dict(item.split("=") for item in summary[2:].split())
    assert len(sd) == int(stats["keys"]) and len(params) == int(stats["params"])
    assert sum(p.numel() for p in params.values()) == int(stats["param_numel"])
    assert sum(b.numel() for b in buffers.values()) == int(stats["buffer_numel"])


def open_manifest_lines(res: int) -> list[str]:
    from test_migan_fill import manifest_path

    return manifest_path(res).read_text().splitlines()


@pytest.mark.parametrize("res", [256, 512])
def test_constructor_constants_are_the_official_ones(res: int) -> None:
    """FIR filters and lattices at construction equal the rule's fixed values (the official constructor's)."""
    from test_migan_fill import fill_value

    for key, t in MIGANGenerator(res).state_dict().items():
        if key.endswith((".filter.weight", ".filter_const")):
            assert torch.equal(t, fill_value(key, tuple(t.shape))), key


def test_only_released_resolutions() -> None:
    with pytest.raises(ValueError, match="256, 512"):
        MIGANGenerator(128)


# ------------------------------------------------------------------ parity on the 256 fixture


def test_network_input_layout_of_the_fixture(fixture) -> None:
    """The fixture's input is cat([mask - 0.5, image * mask]) with mask 1 = known (the official layout)."""
    m, img = fixture["mask"], fixture["image"]
    assert torch.equal(fixture["input"], torch.cat([m - 0.5, img * m], dim=1))
    assert set(m.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_parity_raw_output_and_composite(fixture, filled256, impl: str) -> None:
    """Both code paths. ``reference`` (the official operation order, the benchmarks' stand-in for the
    official code) reproduced this fixture bit for bit where it was checked; the bound is the same."""
    set_impl(filled256, impl)
    with torch.no_grad():
        out = filled256(fixture["input"])
    assert out.shape == fixture["output"].shape
    assert (out - fixture["output"]).abs().max().item() <= ATOL
    m = fixture["mask"]
    composite = fixture["image"] * m + out * (1 - m)
    assert (composite - fixture["composited"]).abs().max().item() <= ATOL
    # the known region of the composite is the image exactly, whatever the network did
    assert torch.equal((composite * m), fixture["composited"] * m)
    set_impl(filled256, "fast")
    assert get_impl(filled256) == "fast"


def test_parity_of_intermediates(fixture, filled256) -> None:
    """Bottleneck, skips and the running RGB of the first synthesis blocks (localises a mistake)."""
    inter = fixture["intermediates"]
    with torch.no_grad():
        x, feats = filled256.encoder(fixture["input"].contiguous(memory_format=torch.channels_last))
        assert (x - inter["enc_out"]).abs().max() <= ATOL
        for r in (4, 8):
            assert (feats[r] - inter[f"enc_feat_{r}"]).abs().max() <= ATOL, r
        syn = filled256.synthesis
        h, img = syn.b4(x, feats[4])
        assert (h - inter["synth_x_4"]).abs().max() <= ATOL and (img - inter["synth_img_4"]).abs().max() <= ATOL
        for r in (8, 16, 32):
            h, img = getattr(syn, f"b{r}")(h, feats[r], img)
            assert (img - inter[f"synth_img_{r}"]).abs().max() <= ATOL, r
            if r == 8:
                assert (h - inter["synth_x_8"]).abs().max() <= ATOL


# ------------------------------------------------------------------ 512 and the fast path


@pytest.mark.slow
def test_512_runs_and_fast_matches_reference() -> None:
    """The 512 network (checked against a reviewer-held fixture) runs, and the fast path equals the
    official operation order to float32 rounding (same bound as the parity test). One sample: input
    dependence and the layout are covered by the 256 parity tests, which share every code path."""
    G = fill_module(MIGANGenerator(512)).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 512, 512, generator=g) * 2 - 1
    mask = (torch.rand(1, 1, 512, 512, generator=g) > 0.3).float()
    x = torch.cat([mask - 0.5, image * mask], dim=1)
    with torch.no_grad():
        fast = G(x)
        set_impl(G, "reference")
        ref = G(x)
    assert fast.shape == (1, 3, 512, 512) and torch.isfinite(fast).all()
    assert (fast - ref).abs().max().item() <= ATOL
    assert 0.1 < fast.std().item() < 2.0  # a healthy output range with the fill's 1/8 torgb scale


def test_fixed_resolution_is_enforced(filled256) -> None:
    with pytest.raises(ValueError, match=r"\[N, 4, 256, 256\]"):
        filled256(torch.zeros(1, 4, 128, 128))
    with pytest.raises(ValueError, match="mask - 0.5"):
        filled256(torch.zeros(1, 3, 256, 256))


def test_upsample_shortcut_equals_zero_insertion_and_falls_back() -> None:
    """The transposed-conv upsample equals nearest x lattice -> pad(2,1) -> 4x4 conv, for an asymmetric
    stored filter too; a non-lattice filter_const falls back to the official order."""
    torch.manual_seed(0)
    up = Upsample2d(5, 16).eval()
    with torch.no_grad():
        up.filter.weight.copy_(torch.randn(5, 1, 4, 4))  # not symmetric: the flip matters
    x = torch.randn(2, 5, 8, 8)
    ref = up.filter(F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest") * lattice(16), (2, 1, 2, 1)))
    with torch.no_grad():
        fast = up(x)
        # sums of the same 4 products, in another order: |error| <= 4 * eps32 * sum|terms| (with margin)
        bound = 4 * 2 ** -23 * (up.filter.weight.abs().max() * x.abs().max() * 4).item()
        assert (fast - ref).abs().max().item() <= bound
        up.filter_const[..., 1, 1] = 1.0  # no longer zero insertion
        odd = up(x)
    odd_ref = up.filter(F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest") * up.filter_const, (2, 1, 2, 1)))
    assert torch.equal(odd, odd_ref)


def test_derived_weight_cache_follows_load_state_dict(filled256, fixture) -> None:
    """The fast path caches gain-folded weights; loading other weights must invalidate them."""
    G = MIGANGenerator(256).eval()
    x = fixture["input"][:1]
    with torch.no_grad():
        before = G(x)
        G.load_state_dict(filled256.state_dict())
        after = G(x)
    assert (after - fixture["output"][:1]).abs().max() <= ATOL
    assert (before - after).abs().max() > 0.01


@pytest.mark.slow
def test_fast_path_is_differentiable() -> None:
    """With autograd on, nothing runs in place on tracked tensors (the fast path stays trainable)."""
    G = MIGANGenerator(256)
    x = torch.zeros(1, 4, 256, 256)
    G(x).square().mean().backward()
    assert G.encoder.b256.fromrgb.weight.grad is not None
    assert fir_weight(2, 4.0).sum().item() == pytest.approx(8.0)
