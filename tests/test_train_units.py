"""Unit tests of the training pieces that need no training run: recipe numbers, EMA, ADA, the
perceptual loss, the loss formulas (on hand-made networks with known gradients), per-sample
randomness, snapshot files, config merging."""

from __future__ import annotations

import errno
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_mat_layers import U64, chain_terms, close
from torch import nn
from train_fixtures import VGG19_ID, one_torch_thread, tiny_config, vgg19_file, vgg19_weights_dir  # noqa: F401

from inpaintbench.distributed import DistContext
from inpaintbench.errors import InputError
from inpaintbench.train import snapshot as S
from inpaintbench.train.augment import AdaptiveAugment, apply_color, apply_geometry, draw_params
from inpaintbench.train.config import TrainConfig, merge_for_resume
from inpaintbench.train.loss import Batch, TwoStageLoss

CTX1 = DistContext(0, 1, 0)


# ----------------------------------------------------------------------------------------- recipe


def test_mat_official_optimizers_reproduce_the_lazy_regularization_quirk() -> None:
    cfg = TrainConfig(lr=0.001)
    g, d = cfg.optimizer_settings("G"), cfg.optimizer_settings("D")
    # G: interval 4 bookkeeping although MAT has no G regularizer -> lr * 4/5, beta2 ** (4/5)
    assert g["lr"] == pytest.approx(0.0008) and g["betas"][0] == 0.0
    assert g["betas"][1] == pytest.approx(0.99 ** 0.8)
    # D: R1 every 16 iterations -> lr * 16/17, beta2 ** (16/17)
    assert d["lr"] == pytest.approx(0.001 * 16 / 17) and d["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    corrected = TrainConfig(lr=0.001, recipe="corrected").optimizer_settings("G")
    assert corrected["lr"] == 0.001 and corrected["betas"] == (0.0, 0.99)


def test_ema_beta_is_half_life_in_kimg() -> None:
    cfg = TrainConfig(batch=8, ema_kimg=10)
    beta = cfg.ema_beta(cur_nimg=0)
    # After ema_kimg * 1000 images (1250 steps of 8) the old weights count half.
    assert beta ** (10_000 / 8) == pytest.approx(0.5)
    ramp = TrainConfig(batch=8, ema_kimg=10, ema_rampup=0.05)
    assert ramp.ema_beta(cur_nimg=1000) == pytest.approx(0.5 ** (8 / 50))


def test_config_validation_names_the_option() -> None:
    with pytest.raises(InputError, match="--batch"):
        TrainConfig(data="d", out="o", batch=6).validate(world_size=4)
    with pytest.raises(InputError, match="--resolution"):
        TrainConfig(data="d", out="o", resolution=300).validate()
    with pytest.raises(InputError, match="minibatch-std"):
        TrainConfig(data="d", out="o", batch=6, mbstd_group=4).validate()
    with pytest.raises(InputError, match="--best-metric"):
        TrainConfig(data="d", out="o", val="v", val_metrics=("psnr",), best_metric="fid").validate()
    TrainConfig(data="d", out="o").validate()


def test_resume_keeps_the_trajectory_settings() -> None:
    stored = TrainConfig(data="d", out="o", lr=0.001, kimg=4)
    merged = merge_for_resume(stored, {"kimg": 8.0, "lr": None, "device": "cpu"})
    assert merged.kimg == 8.0 and merged.lr == 0.001 and merged.device == "cpu"
    assert merge_for_resume(stored, {"lr": 0.001}).lr == 0.001  # same value is fine
    with pytest.raises(InputError, match="lr"):
        merge_for_resume(stored, {"lr": 0.002})


def test_layer_path_defaults_to_fast_and_old_runs_resume_on_reference() -> None:
    assert TrainConfig(data="d", out="o").impl == "fast"
    with pytest.raises(InputError, match="--impl"):
        TrainConfig(data="d", out="o", impl="winograd").validate()  # inference-only path
    old = TrainConfig(data="d", out="o").to_dict()
    del old["impl"]  # a run stored before the option existed
    assert TrainConfig.from_dict(old).impl == "reference"
    with pytest.raises(InputError, match="impl"):
        merge_for_resume(TrainConfig.from_dict(old), {"impl": "fast"})


# ----------------------------------------------------------------------------------------- ADA


def _rngs(n: int, seed: int = 0) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, i]) for i in range(n)]


def test_ada_geometry_matches_numpy_reflect_translation_and_flip() -> None:
    x = torch.randn(5, 3, 16, 16)
    params = draw_params(1.0, _rngs(5), 16)
    assert params.tx.any() or params.ty.any()
    got = apply_geometry(x, params).numpy()
    for i in range(5):
        ref = x[i].numpy()
        if params.flip[i]:
            ref = ref[:, :, ::-1]
        tx, ty = int(params.tx[i]), int(params.ty[i])
        pad = np.pad(ref, ((0, 0), (abs(ty),) * 2, (abs(tx),) * 2), mode="reflect")
        ref = pad[:, abs(ty) - ty: abs(ty) - ty + 16, abs(tx) - tx: abs(tx) - tx + 16]
        np.testing.assert_array_equal(got[i], ref)


def test_ada_at_p0_is_identity_and_keeps_stream_positions() -> None:
    p0 = draw_params(0.0, _rngs(4), 32)
    assert p0.identity
    aug = AdaptiveAugment(p=0.0)
    x = torch.randn(4, 3, 32, 32)
    m = (torch.rand(4, 1, 32, 32) > 0.5).float()
    (y,), mm = aug([x], m, p0)
    assert y is x and mm is m
    # Values drawn do not depend on p: with p=1 the same translations are used as would be at p=0.5
    # for the samples where the transform is enabled.
    a, b = draw_params(1.0, _rngs(4), 32), draw_params(0.5, _rngs(4), 32)
    on = b.tx != 0
    np.testing.assert_array_equal(a.tx[on], b.tx[on])


def test_ada_color_transforms_have_their_defining_properties() -> None:
    from inpaintbench.train.augment import _LUMA, AugmentParams, _rotation_about_luma

    # float64 (apply_color follows x's dtype): a 3x3 matrix + offset, then a 3-term luma dot, on
    # |x| <= 1 with orthogonal-ish matrices (row abs sums <= sqrt 3): <= 8 roundings of <= 3 * u each
    # per side, so |diff| <= 2 * 8 * 3 * 2^-53 < 64 * 2^-53; a wrong matrix moves these by O(0.1).
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64) * 2 - 1
    luma = torch.tensor(_LUMA[:3], dtype=torch.float64).view(1, 3, 1, 1)
    tol = 64 * 2.0**-53

    def color(m: np.ndarray) -> torch.Tensor:
        return apply_color(x, AugmentParams(np.zeros(1, bool), np.zeros(1, int), np.zeros(1, int), m[None]))

    vv = np.outer(_LUMA, _LUMA)
    flip = np.eye(4) - 2 * vv
    torch.testing.assert_close(color(flip @ flip), x, atol=tol, rtol=0)  # luma flip is an involution
    lf = color(flip)
    torch.testing.assert_close((lf * luma).sum(1), -(x * luma).sum(1), atol=tol, rtol=0)
    rot = color(_rotation_about_luma(1.0))
    torch.testing.assert_close((rot * luma).sum(1), (x * luma).sum(1), atol=tol, rtol=0)  # hue keeps luma
    torch.testing.assert_close(rot.norm(dim=1), x.norm(dim=1), atol=tol, rtol=0)  # + 3 squares and a sqrt
    gray = color(vv + (np.eye(4) - vv) * 0.0)  # saturation 0 -> all channels equal
    torch.testing.assert_close(gray[:, 0], gray[:, 1], atol=tol, rtol=0)
    bright = np.eye(4)
    bright[:3, 3] = 0.25
    torch.testing.assert_close(color(bright), x + 0.25, atol=tol, rtol=0)


def test_ada_is_differentiable_and_moves_mask_with_image() -> None:
    x = torch.randn(3, 3, 16, 16, requires_grad=True)
    m = (torch.rand(3, 1, 16, 16) > 0.5).float()
    params = draw_params(1.0, _rngs(3, 7), 16)
    (y,), mm = AdaptiveAugment(p=1.0)([x], m, params)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    torch.testing.assert_close(mm, apply_geometry(m, params))
    assert set(mm.unique().tolist()) <= {0.0, 1.0}


def test_ada_p_adjustment_follows_the_paper() -> None:
    aug = AdaptiveAugment(target=0.6, ada_kimg=500, interval=4)
    step = 8 * 4 / (500 * 1000)
    aug.accumulate(sign_sum=32, count=32)  # r_t = 1 > 0.6: D overfits, raise p
    aug.update(batch=8)
    assert aug.p == pytest.approx(step) and aug.last_rt == 1.0
    aug.accumulate(sign_sum=-32, count=32)  # r_t = -1 < 0.6: lower p, never below 0
    aug.update(batch=8)
    aug.accumulate(sign_sum=-32, count=32)
    aug.update(batch=8)
    assert aug.p == 0.0
    state = aug.state_dict()
    other = AdaptiveAugment()
    other.load_state_dict(state)
    assert other.state_dict() == state


# ----------------------------------------------------------------------------------------- perceptual


def test_vgg19_layer_indices_are_conv4_4_and_conv5_4() -> None:
    import torchvision

    from inpaintbench.train.perceptual import VGG19_LAYERS

    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    # VGG19 blocks have 2, 2, 4, 4, 4 convs: conv4_4 is the 12th, conv5_4 the 16th (last).
    assert VGG19_LAYERS["conv4_4"] == convs[11] and VGG19_LAYERS["conv5_4"] == convs[15]


def test_perceptual_loss_matches_torchvision_feature_extractor(vgg19_weights_dir) -> None:  # noqa: F811
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    from inpaintbench.train.perceptual import load_perceptual

    loss_fn, record = load_perceptual(str(vgg19_weights_dir), offline=True)
    assert record["id"] == VGG19_ID
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features
    sd = torch.load(vgg19_weights_dir / "vgg19-dcbb9e9d.pth", weights_only=True)
    features.load_state_dict({k[len("features."):]: v for k, v in sd.items()}, assign=True)
    for layer in features:  # MAT taps the conv outputs before the ReLU: no in-place ReLU may overwrite them
        if isinstance(layer, nn.ReLU):
            layer.inplace = False
    ref_net = create_feature_extractor(features.eval(), {"25": "c44", "34": "c54"})
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    fx, fy = ref_net(((x + 1) / 2 - mean) / std), ref_net(((y + 1) / 2 - mean) / std)
    ref = 0.25 * (fx["c44"] - fy["c44"]).abs().mean() + 0.5 * (fx["c54"] - fy["c54"]).abs().mean()
    xg = x.clone().requires_grad_(True)
    got = loss_fn(xg, y)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    got.backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss_fn.parameters())


def _vgg19_pre_relu_reference(sd: dict, x: torch.Tensor, taps: dict[int, str]) -> dict[str, torch.Tensor]:
    """VGG19 "E" written out with functional, non-inplace ops (float64): conv outputs at ``taps``."""
    import torch.nn.functional as F
    from torchvision.models.vgg import cfgs

    out, i, conv = {}, 0, 0
    for item in cfgs["E"]:
        if item == "M":
            x = F.max_pool2d(x, 2, 2)
            i += 1
            continue
        x = F.conv2d(x, sd[f"features.{i}.weight"].double(), sd[f"features.{i}.bias"].double(), padding=1)
        if i in taps:
            out[taps[i]] = x
        if i >= max(taps):
            return out
        x = F.relu(x)
        i += 2
        conv += 1
    return out


def test_perceptual_features_are_pre_relu_at_both_taps(vgg19_weights_dir) -> None:  # noqa: F811
    """The features MAT's loss compares are the conv outputs before the ReLU (they have negatives)."""
    from inpaintbench.train.perceptual import IMAGENET_MEAN, IMAGENET_STD, VGG19_LAYERS, load_perceptual

    loss_fn, _ = load_perceptual(str(vgg19_weights_dir), offline=True)
    sd = torch.load(vgg19_weights_dir / "vgg19-dcbb9e9d.pth", weights_only=True)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1
    # The module keeps the ImageNet constants as float32 buffers: use the same rounded values.
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).double().view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).double().view(1, 3, 1, 1)
    taps = {VGG19_LAYERS["conv4_4"]: "conv4_4", VGG19_LAYERS["conv5_4"]: "conv5_4"}
    ref = _vgg19_pre_relu_reference(sd, ((x + 1) / 2 - mean) / std, taps)
    got = loss_fn.double().extract(x)
    for name in ("conv4_4", "conv5_4"):
        assert (ref[name] < 0).any() and (got[name] < 0).any(), f"{name} must be pre-ReLU"
        # float64 on both sides: each output is a chain of 16 convolutions of at most 512·9 + 1 terms;
        # 16·4609·2⁻⁵³·max|ref| is ≈ 8e-12 relative, so 1e-9 relative leaves a wide margin.
        torch.testing.assert_close(got[name], ref[name], rtol=0, atol=1e-9 * float(ref[name].abs().max()))


# ----------------------------------------------------------------------------------------- loss formulas


class _LinearD(nn.Module):
    """D(img, mask, img1) = (<w, img>, <v, img1>) per sample: R1 penalties are |w|^2 and |v|^2."""

    def __init__(self, size: int):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w = nn.Parameter(torch.randn(3, size, size, generator=g) * 0.01)
        self.v = nn.Parameter(torch.randn(3, size, size, generator=g) * 0.01)

    def forward(self, img, mask, img1):  # noqa: ANN001, ANN201
        return (img * self.w).sum([1, 2, 3])[:, None], (img1 * self.v).sum([1, 2, 3])[:, None]


class _FakeG(nn.Module):
    """Real MappingNet; synthesis fills the hole with a colour from ws (stage 1: half of it)."""

    def __init__(self) -> None:
        super().__init__()
        from inpaintbench.models.mat.generator import MappingNet

        self.z_dim, self.num_ws = 8, 4
        self.mapping = MappingNet(8, 0, 8, num_ws=4, num_layers=2)
        self.to_rgb = nn.Linear(8, 3)

    def synthesis(self, images, masks, ws, noise_mode="random", return_stg1=False, generator=None):  # noqa: ANN001, ANN201
        col = torch.tanh(self.to_rgb(ws.mean(1)))[:, :, None, None]
        out = images * masks + col * (1 - masks)
        out1 = images * masks + 0.5 * col * (1 - masks)
        return (out, out1) if return_stg1 else out


def _batch(size: int = 8, n: int = 2) -> Batch:
    g = torch.Generator().manual_seed(5)
    real = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    mask = (torch.rand(n, 1, size, size, generator=g) > 0.4).float()
    return Batch(real, mask, list(range(10, 10 + n)), iteration=0)


def test_r1_is_gamma_half_grad_norm_on_both_branches_times_interval() -> None:
    cfg = TrainConfig(r1_gamma=10.0, d_reg_interval=16, pcp_ratio=0.0)
    D = _LinearD(8)
    loss_fn = TwoStageLoss(_FakeG(), D, None, cfg, torch.device("cpu"), CTX1)
    loss, stats, _ = loss_fn.d_reg(_batch())
    w2, v2 = D.w.detach().square().sum(), D.v.detach().square().sum()
    torch.testing.assert_close(stats["D/r1"], w2)
    torch.testing.assert_close(stats["D/r1_stg1"], v2)
    torch.testing.assert_close(loss.detach(), (w2 + v2) * 5.0 * 16)
    loss.backward()  # d/dw of 80 * |w|^2 = 160 w
    torch.testing.assert_close(D.w.grad, 160 * D.w.detach())


def test_d_main_uses_real_image_on_both_branches_for_reals() -> None:
    cfg = TrainConfig(pcp_ratio=0.0, truncation=1.0, style_mix=0.0)
    D = _LinearD(8)
    G = _FakeG()
    loss_fn = TwoStageLoss(G, D, None, cfg, torch.device("cpu"), CTX1)
    batch = _batch()
    loss, stats, signs = loss_fn.d_main(batch)
    lr, lr1 = (batch.real * D.w).sum([1, 2, 3]), (batch.real * D.v).sum([1, 2, 3])
    sp = torch.nn.functional.softplus
    torch.testing.assert_close(stats["D/real"], (sp(-lr) + sp(-lr1)).mean())
    assert float(signs) == float(lr.detach().sign().sum())
    with torch.no_grad():
        fake, fake1 = loss_fn.run_G(batch, 2)
    lf, lf1 = (fake * D.w).sum([1, 2, 3]), (fake1 * D.v).sum([1, 2, 3])
    torch.testing.assert_close(stats["D/fake"], (sp(lf) + sp(lf1)).mean())
    torch.testing.assert_close(loss.detach(), stats["D/fake"] + stats["D/real"])


def test_g_main_is_nonsaturating_on_both_branches_plus_pcp() -> None:
    cfg = TrainConfig(pcp_ratio=0.1, truncation=1.0, style_mix=0.0)
    D = _LinearD(8)

    class _L1(nn.Module):
        def forward(self, x, y):  # noqa: ANN001, ANN201
            return (x - y).abs().mean()

    loss_fn = TwoStageLoss(_FakeG(), D, _L1(), cfg, torch.device("cpu"), CTX1)
    batch = _batch()
    loss, stats = loss_fn.g_main(batch)
    with torch.no_grad():
        img, img1 = loss_fn.run_G(batch, 1)
    sp = torch.nn.functional.softplus
    adv = (sp(-(img * D.w).sum([1, 2, 3])) + sp(-(img1 * D.v).sum([1, 2, 3]))).mean()
    torch.testing.assert_close(stats["G/adv"], adv)
    torch.testing.assert_close(loss.detach(), adv + 0.1 * (img - batch.real).abs().mean())


def test_mapping_reproduces_the_official_w_avg_update_and_truncation() -> None:
    from inpaintbench.models.mat.generator import MappingNet

    torch.manual_seed(0)
    G = _FakeG()
    G.mapping.w_avg.normal_()
    official = MappingNet(8, 0, 8, num_ws=4, num_layers=2).train()
    official.load_state_dict(G.mapping.state_dict())
    cfg = TrainConfig(truncation=0.5)
    loss_fn = TwoStageLoss(G, _LinearD(8), None, cfg, torch.device("cpu"), CTX1)
    z = torch.randn(5, 8)
    ws = loss_fn.mapping(z, torch.randn(5, 8), cutoff=4)  # cutoff = num_ws: no mixing
    ref = official(z, None, truncation_psi=0.5)  # train mode: updates w_avg, then truncates
    torch.testing.assert_close(ws, ref)
    torch.testing.assert_close(G.mapping.w_avg, official.w_avg)
    # Style mixing: rows from the cut-off on come from the second z, truncated the same way.
    z2 = torch.randn(5, 8)
    mixed = loss_fn.mapping(z, z2, cutoff=2, update_w_avg=False)
    official.eval()
    torch.testing.assert_close(mixed[:, :2], official(z, None, truncation_psi=0.5)[:, :2])
    torch.testing.assert_close(mixed[:, 2:], official(z2, None, truncation_psi=0.5)[:, 2:])


def test_style_mixing_cutoff_rate_and_range() -> None:
    loss_fn = TwoStageLoss(_FakeG(), _LinearD(8), None, TrainConfig(style_mix=0.5), torch.device("cpu"), CTX1)
    cut = [loss_fn.mixing_cutoff(i, 1) for i in range(2000)]
    mixed = [c for c in cut if c < 4]
    assert set(mixed) == {1, 2, 3}
    assert abs(len(mixed) / 2000 - 0.5) < 0.05
    assert cut == [loss_fn.mixing_cutoff(i, 1) for i in range(2000)]  # a pure function of the iteration


def test_generator_draws_are_per_sample_so_batches_can_be_split() -> None:
    """The premise of distributed training: sample k gets the same z, noise and MAT mixing maps
    whether it is in a batch of 4 or in an interleaved half-batch of 2 on another process."""
    from inpaintbench.models.mat import Generator, set_impl

    torch.manual_seed(0)
    # float64: batch-2 and batch-1 kernels then differ by rounding only, bounded by the arithmetic
    G = set_impl(Generator(128, config="tiny"), "reference").eval().double()
    cfg = TrainConfig(truncation=1.0, style_mix=0.5, seed=11)
    loss_fn = TwoStageLoss(G, _LinearD(128), None, cfg, torch.device("cpu"), CTX1)
    # the w_avg update averages in float32 (loss.py: ws.float()); hand the float64 mean on (truncation
    # is 1, so w_avg does not enter the outputs)
    loss_fn._global_mean = lambda x: x.mean(dim=0).double()
    g = torch.Generator().manual_seed(2)
    real = torch.rand(2, 3, 128, 128, generator=g, dtype=torch.float64) * 2 - 1
    mask = (torch.rand(2, 1, 128, 128, generator=g) > 0.5).double()
    ks = [40, 41]
    with torch.no_grad():
        (full, full1), n = chain_terms([G], lambda: loss_fn.run_G(Batch(real, mask, ks, 7), 1))
        halves = [loss_fn.run_G(Batch(real[r::2], mask[r::2], ks[r::2], 7), 1) for r in (0, 1)]
    assert full.dtype == torch.float64 and 2 * n * U64 < 1e-6, n  # tight enough to catch a wrong draw
    for r in (0, 1):
        assert close(halves[r][0], full[r::2], n) and close(halves[r][1], full1[r::2], n)
    assert (full[0] - full[1]).abs().max() > 1e-3  # different samples really differ


# ----------------------------------------------------------------------------------------- snapshots


def _adam_with_state() -> tuple[nn.Module, torch.optim.Adam]:
    net = nn.Linear(4, 3)
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.0, 0.99))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 4)).square().sum().backward()
        opt.step()
    return net, opt


def test_optimizer_state_roundtrip_is_exact(tmp_path) -> None:  # noqa: ANN001
    net, opt = _adam_with_state()
    rng_state = torch.get_rng_state()
    data, groups = S.optimizer_bytes({"G": opt}, {"torch_cpu": rng_state})
    (tmp_path / "o.safetensors").write_bytes(data)
    net2 = nn.Linear(4, 3)
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.5)
    rng = S.load_optimizers(tmp_path / "o.safetensors", {"G": opt2}, json.loads(json.dumps(groups)))
    assert torch.equal(rng["torch_cpu"], rng_state)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 0.01
    assert tuple(b["param_groups"][0]["betas"]) == (0.0, 0.99)
    for idx in a["state"]:
        for k in a["state"][idx]:
            assert torch.equal(a["state"][idx][k], b["state"][idx][k])
    x = torch.randn(2, 4)
    for o, n in ((opt, net), (opt2, net2)):  # the next step is identical too
        o.zero_grad()
        n(x).sum().backward()
        o.step()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), net2.parameters(), strict=True))


def _write(run, name, tick):  # noqa: ANN001, ANN202
    from inpaintbench.models.mat import Discriminator, Generator

    torch.manual_seed(tick)
    _, opt = _adam_with_state()
    optim, groups = S.optimizer_bytes({"G": opt}, {})
    G = Generator(128, config="tiny")
    nets = {"G": G, "G_ema": G, "D": Discriminator(128, config="tiny")}
    return S.write_snapshot(run, name, nets, optim, {"tick": tick, "kimg": tick, "nimg": tick * 1000,
                                                     "optimizer_groups": groups}, {"kimg": tick})


def test_full_disk_during_a_snapshot_keeps_the_previous_one(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    first = _write(run, "tick-000000", 0)
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    latest_before = (run / S.LATEST).read_bytes()
    real_write = S.atomic_write_bytes

    def full_disk(path, data):  # noqa: ANN001, ANN202
        if path.name == "optim.safetensors":
            from inpaintbench.results import _write_error

            raise _write_error(path, OSError(errno.ENOSPC, "No space left on device"))
        return real_write(path, data)

    monkeypatch.setattr(S, "atomic_write_bytes", full_disk)
    with pytest.raises(InputError, match="disk full"):
        _write(run, "tick-000001", 1)
    assert S.list_snapshots(run) == ["tick-000000"]
    assert not [p for p in (run / S.SNAPSHOTS).iterdir() if p.name.startswith(".")]  # no temp left behind
    assert (run / S.LATEST).read_bytes() == latest_before
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert S.resolve_snapshot(run) == first
    sd, info = S.read_network_file(first / "G_ema.safetensors")  # still a loadable MAT checkpoint
    assert info["network"] == "G_ema" and info["config"]["img_resolution"] == 128 and info["kimg"] == 0


def test_metrics_log_skips_a_torn_last_line_and_truncates_on_resume(tmp_path) -> None:  # noqa: ANN001
    for i in range(3):
        S.append_metrics(tmp_path, {"kimg": i / 1000, "nimg": i, "tick": i, "loss": {"G": float("nan")}})
    with open(tmp_path / S.METRICS, "a") as f:
        f.write('{"kimg": 0.00')  # a crash mid-write
    rows = S.read_metrics(tmp_path)
    assert [r["tick"] for r in rows] == [0, 1, 2] and rows[0]["loss"]["G"] == "nan"
    S.truncate_metrics(tmp_path, max_nimg=1)
    assert [r["tick"] for r in S.read_metrics(tmp_path)] == [0, 1]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(0, 100), min_size=3, max_size=3).filter(lambda v: sum(v) > 0))
def test_split_counts_are_exact_and_fair(n: int, weights: list[int]) -> None:
    from inpaintbench.train.data import split_counts

    ratios = [w / sum(weights) for w in weights]
    counts = split_counts(n, ratios)
    assert sum(counts) == n
    assert all(abs(c - n * r) < 1 for c, r in zip(counts, ratios, strict=True))
    assert all(c == 0 for c, r in zip(counts, ratios, strict=True) if r == 0)


def test_tiny_config_helper_is_valid(tmp_path) -> None:  # noqa: ANN001
    cfg = tiny_config(tmp_path, tmp_path / "out")
    cfg.validate()
    assert math.isclose(cfg.kimg / cfg.tick_kimg, 2)


# ----------------------------------------------------------------------------------------- init


def test_init_from_a_run_restores_g_g_ema_and_d_and_a_generator_file_restarts_d(tmp_path) -> None:  # noqa: ANN001
    import warnings

    from inpaintbench.models.mat import Discriminator, Generator, save_mat_safetensors
    from inpaintbench.train.init import build_networks, load_init

    torch.manual_seed(1)
    G, G_ema, D = Generator(128, config="tiny"), Generator(128, config="tiny"), Discriminator(128, config="tiny")
    _, opt = _adam_with_state()
    optim, groups = S.optimizer_bytes({"G": opt}, {})
    S.write_snapshot(tmp_path / "run", "tick-000003", {"G": G, "G_ema": G_ema, "D": D}, optim,
                     {"tick": 3, "kimg": 1.0, "nimg": 1000, "optimizer_groups": groups})
    cfg = TrainConfig(resolution=128, init=str(tmp_path / "run"), mbstd_group=2)
    init = load_init(cfg)
    g, d, g_ema = build_networks(cfg, init)
    assert cfg.config == "tiny" and d.mbstd_group_size == 2  # widths from the checkpoint, group from the config
    for mine, ref in ((g, G), (g_ema, G_ema), (d, D)):
        theirs = ref.state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in mine.state_dict().items())
    assert init.record["kind"] == "inpaintbench-snapshot" and len(init.record["sha256"]) == 64

    path = save_mat_safetensors(G_ema, tmp_path / "g.safetensors")
    cfg2 = TrainConfig(resolution=128, init=str(path))
    with pytest.warns(UserWarning, match="no discriminator"):
        g2, d2, e2 = build_networks(cfg2, load_init(cfg2))
    theirs = G_ema.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in g2.state_dict().items())
    assert all(torch.equal(v, theirs[k]) for k, v in e2.state_dict().items())
    assert not torch.equal(d2.fc1.weight, D.fc1.weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="256"):
            load_init(TrainConfig(resolution=256, init=str(path)))


def test_pruning_keeps_the_newest_and_never_the_best_or_latest(tmp_path) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    for t in range(4):
        _write(run, S.snapshot_name(t), t)
    (run / S.BEST).write_text(json.dumps({"snapshot": f"{S.SNAPSHOTS}/{S.snapshot_name(0)}"}))
    removed = S.prune_snapshots(run, keep=2)
    assert removed == [S.snapshot_name(1)]
    assert S.list_snapshots(run) == [S.snapshot_name(t) for t in (0, 2, 3)]
    assert S.resolve_snapshot(run, "best").name == S.snapshot_name(0)
    assert S.resolve_snapshot(run).name == S.snapshot_name(3)
    assert S.prune_snapshots(run, keep=0) == []  # 0 = keep all
