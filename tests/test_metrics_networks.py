"""Parity of the issue-12 feature networks with their reference packages on the same seeded random
weights: DINOv2 (timm's forward, Meta's key layout, the hub's position-embedding rule), CLIP
(open_clip's encode_image and preprocessing, cmmd's crop), DISTS (DISTS_pytorch), LPIPS-hole
(the lpips package's spatial map).

Small configurations stand in for ViT-L/14 and CLIP ViT-L/14@336 (depth 2, narrow widths): the code
path is the same — the same timm/open_clip classes, our same preprocessing, converter and loader —
and only the number and width of identical blocks differ, which neither the preprocessing, the
key conversion nor the CLS/projection read-out depends on. The full-size networks run in the
end-to-end test (tests/test_metrics_new_suite.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaintbench.errors import WeightsError
from inpaintbench.metrics import clip_features as C
from inpaintbench.metrics import dinov2 as D
from inpaintbench.metrics.netweights import read_state_dict

EPS32 = float(torch.finfo(torch.float32).eps)


def _images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, h // 4 + 1, w // 4 + 1, 3)).astype(np.float64)
    up = np.kron(base, np.ones((1, 4, 4, 1)))[:, :h, :w]  # some structure, not only noise
    return np.clip(up + rng.normal(0, 12, up.shape), 0, 255).astype(np.uint8)


def _small_dinov2(img_size: int = 224, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return D.build_network("vit_small_patch14_dinov2", depth=2, img_size=img_size).eval()


def _dgm_eval_preprocess(images: np.ndarray) -> torch.Tensor:
    """dgm-eval's DINOv2Encoder.transform on PIL images: Resize((224,224), BICUBIC), ToTensor, Normalize."""
    import torchvision.transforms as TF
    from PIL import Image

    t = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor(),
                    TF.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    return torch.stack([t(Image.fromarray(im)) for im in images])


def test_dinov2_extractor_equals_timm_forward_on_dgm_eval_inputs():
    net = _small_dinov2()
    images = _images(3, 40, 52)  # not square: dgm-eval squashes, no crop
    ours = D.DINOv2Extractor(None, net=net)(images)
    with torch.no_grad():
        ref = net(_dgm_eval_preprocess(images)).numpy()
    assert ours.shape == (3, 384)
    # Same PIL resampler, same float ops, same network and batch: identical up to kernel order.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=16 * EPS32 * np.abs(ref).max())
    # timm's forward is the CLS token after the final norm (what hub DINOv2 returns)
    with torch.no_grad():
        tokens = net.forward_features(_dgm_eval_preprocess(images))
    np.testing.assert_allclose(ours, tokens[:, 0].numpy(), rtol=0, atol=16 * EPS32 * np.abs(ref).max())


def _hub_interpolation(pos_embed: torch.Tensor, w0: int) -> torch.Tensor:
    """dinov2 models/vision_transformer.py interpolate_pos_encoding (hub models: offset 0.1, no
    antialias), restated: the target grid plus 0.1, divided by the source grid, as scale factor."""
    n = pos_embed.shape[1] - 1
    m = int(np.sqrt(n))
    sx = (w0 + 0.1) / m
    patch = pos_embed[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2).float()
    patch = torch.nn.functional.interpolate(patch, scale_factor=(sx, sx), mode="bicubic", antialias=False)
    return torch.cat([pos_embed[:, :1], patch.permute(0, 2, 3, 1).reshape(1, w0 * w0, -1)], dim=1)


def test_meta_layout_loads_through_our_converter():
    """A random state dict in Meta's layout (timm's 518-px model, mapping inverted: mask_token added)
    loads into the 224-px network, with the hub's position embedding rule."""
    src = _small_dinov2(img_size=518, seed=1)
    meta = {k: v.clone() for k, v in src.state_dict().items()}
    meta["mask_token"] = torch.zeros(1, meta["cls_token"].shape[-1])
    assert meta["pos_embed"].shape[1] == 1 + 37 * 37
    ours_net = _small_dinov2(seed=2)  # different random weights, overwritten by the load
    D.load_weights(ours_net, meta)
    expected = _hub_interpolation(meta["pos_embed"], 16)
    assert torch.equal(ours_net.pos_embed.data, expected)
    # it is not timm's own resampler (size=, antialias): that would be a different embedding
    from timm.layers import resample_abs_pos_embed

    timm_way = resample_abs_pos_embed(meta["pos_embed"], (16, 16), num_prefix_tokens=1)
    assert not torch.allclose(timm_way, expected, atol=1e-6)
    # every other tensor is Meta's
    for k, v in ours_net.state_dict().items():
        if k != "pos_embed":
            assert torch.equal(v, meta[k]), k
    # and the features are timm's forward of those weights
    ref_net = _small_dinov2(seed=3)
    ref_net.load_state_dict({**{k: v for k, v in meta.items() if k != "mask_token"}, "pos_embed": expected})
    images = _images(2, 30, 30, seed=4)
    with torch.no_grad():
        ref = ref_net(_dgm_eval_preprocess(images)).numpy()
    np.testing.assert_allclose(D.DINOv2Extractor(None, net=ours_net)(images), ref, rtol=0,
                               atol=16 * EPS32 * np.abs(ref).max())


def test_dinov2_converter_renames_swiglu_and_refuses_register_models():
    state = {"blocks.0.mlp.w12.weight": torch.zeros(1), "blocks.0.mlp.w3.bias": torch.zeros(1),
             "pos_embed": torch.zeros(1, 1 + 4, 2), "mask_token": torch.zeros(1, 2)}
    out = D.convert_state_dict(state, 2)
    assert set(out) == {"blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.bias", "pos_embed"}
    with pytest.raises(WeightsError, match="register"):
        D.convert_state_dict({**state, "register_tokens": torch.zeros(1)}, 2)
    with pytest.raises(WeightsError, match="do not fit"):
        D.load_weights(_small_dinov2(), {"pos_embed": torch.zeros(1, 257, 384)})


# ------------------------------------------------------------------------------------------- CLIP
_VISION = {"image_size": 336, "layers": 2, "width": 64, "patch_size": 14, "head_width": 32}
_TEXT = {"context_length": 8, "vocab_size": 50, "width": 32, "heads": 2, "layers": 1}


def _small_clip(seed: int = 0):
    import open_clip

    torch.manual_seed(seed)
    return open_clip.model.CLIP(embed_dim=32, vision_cfg=_VISION, text_cfg=_TEXT, quick_gelu=True).eval()


def _ours_from_state(state) -> C.CLIPExtractor:
    tower = C.build_vision_tower(32, _VISION)
    C.load_weights(tower, state)
    return C.CLIPExtractor(None, net=tower)


def test_clip_extractor_equals_open_clip_encode_image():
    import open_clip
    from PIL import Image

    model = _small_clip()
    ours = _ours_from_state(model.state_dict())  # the whole CLIP's keys: text tower skipped
    images = _images(3, 64, 64, seed=5)  # square: open_clip's resize+crop = cmmd's crop+resize
    pre = open_clip.image_transform(336, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                    std=open_clip.OPENAI_DATASET_STD, interpolation="bicubic")
    with torch.no_grad():
        ref = model.encode_image(torch.stack([pre(Image.fromarray(im)) for im in images]), normalize=True).numpy()
    got = ours(images)
    np.testing.assert_allclose(got, ref, rtol=0, atol=16 * EPS32)  # unit vectors
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=4 * EPS32 * 32)


def test_clip_centre_crop_follows_cmmd_io_util():
    """Non-square: cmmd crops the centre square (offsets floor((H−l)/2), floor((W−l)/2)) before resizing."""
    from PIL import Image

    model = _small_clip(1)
    ours = _ours_from_state(model.state_dict())
    images = _images(2, 40, 71, seed=6)
    crops = []
    for im in images:
        pil = Image.fromarray(im)
        w, h = pil.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        arr = np.asarray(pil.crop((left, top, left + side, top + side)).resize((336, 336), Image.BICUBIC))
        x = torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(C.CLIPExtractor.mean).view(3, 1, 1)
        std = torch.tensor(C.CLIPExtractor.std).view(3, 1, 1)
        crops.append((x - mean) / std)
    with torch.no_grad():
        ref = model.encode_image(torch.stack(crops), normalize=True).numpy()
    np.testing.assert_allclose(ours(images), ref, rtol=0, atol=16 * EPS32)


def test_weight_files_are_read_as_data_only(tmp_path):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in _small_clip(2).state_dict().items()}
    st = tmp_path / "clip.safetensors"
    save_file(state, str(st))
    loaded = read_state_dict(st, "clip-vitl14-336")
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    pt = tmp_path / "clip.pth"
    torch.save(state, pt)
    assert set(read_state_dict(pt, "clip-vitl14-336")) == set(state)
    script = tmp_path / "ViT-L-14-336px.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(script))
    with pytest.raises(WeightsError, match="TorchScript"):
        read_state_dict(script, "clip-vitl14-336")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not weights at all")
    with pytest.raises(WeightsError, match="neither"):
        read_state_dict(junk, "dinov2-vitl14")


# ------------------------------------------------------------------------------------------ DISTS
def test_dists_equals_dists_pytorch_on_the_same_random_vgg(monkeypatch, random_weight_files):
    import torchvision
    from DISTS_pytorch import DISTS_pt

    from inpaintbench.metrics.dists import CHANNELS, DISTSNet, alpha_beta_path

    trunk = torch.load(random_weight_files.get("torchvision-vgg16")[0], weights_only=True)  # seeded

    plain_vgg16 = torchvision.models.vgg16

    def seeded_vgg16(*args, **kwargs):  # the package asks torchvision for pretrained=True weights
        net = plain_vgg16(weights=None)
        net.features.load_state_dict({k[len("features."):]: v for k, v in trunk.items()})
        return net

    monkeypatch.setattr(DISTS_pt.models, "vgg16", seeded_vgg16)
    ab = torch.load(alpha_beta_path(), map_location="cpu", weights_only=True)
    ref_model = DISTS_pt.DISTS(load_weights=False).eval()
    ref_model.alpha.data, ref_model.beta.data = ab["alpha"], ab["beta"]
    ours = DISTSNet(trunk, ab["alpha"], ab["beta"]).eval()
    x, y = (torch.from_numpy(_images(2, 64, 64, seed=s)).permute(0, 3, 1, 2).float() / 255 for s in (7, 8))
    with torch.no_grad():
        ref = torch.stack([ref_model(x[i:i + 1], y[i:i + 1]) for i in range(2)])
        got = ours(x, y)
    # Same float32 graph; DISTS is 1 − a weighted sum of sum(CHANNELS) = 1475 terms with weights
    # summing to 1, each in [-1, 1]: a reordering bound of 1475·eps32.
    assert got.shape == (2,)
    torch.testing.assert_close(got, ref, rtol=0, atol=sum(CHANNELS) * EPS32)
    with torch.no_grad():
        same = ours(x, x)
    torch.testing.assert_close(same, torch.zeros(2), rtol=0, atol=sum(CHANNELS) * EPS32)


# ------------------------------------------------------------------------------------- LPIPS-hole
def test_lpips_hole_is_the_spatial_map_mean_over_the_dilated_hole(random_weights_dir):
    import lpips as _lp
    from scipy.ndimage import binary_dilation

    from inpaintbench.metrics.lpips import HOLE_MARGIN, LPIPSMetric, lin_weights_path

    metric = LPIPSMetric("alex", weights_dir=random_weights_dir)
    rng = np.random.default_rng(9)
    gt = _images(3, 64, 64, seed=10)
    holes = np.zeros((3, 64, 64), dtype=bool)
    holes[0, 20:40, 10:30] = True
    holes[1, 0:10, 50:64] = True  # touches the border
    pred = gt.copy()
    pred[holes] = rng.integers(0, 256, (int(holes.sum()), 3))
    x = torch.from_numpy(pred).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(gt).permute(0, 3, 1, 2).float() / 127.5 - 1
    whole, hole = metric.forward_nchw_with_hole(x, y, torch.from_numpy(holes))
    # whole-image value: bit-identical to the package path the `lpips` column uses
    assert torch.equal(whole, metric.forward_nchw(x, y))
    # reference: the package's own spatial=True model with the same trunk and heads
    spatial = _lp.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, spatial=True,
                        model_path=str(lin_weights_path("alex")), verbose=False).eval()
    spatial.net.load_state_dict(metric.model.net.state_dict())
    with torch.no_grad():
        maps = spatial(x, y)[:, 0].double().numpy()
    box = np.ones((2 * HOLE_MARGIN + 1,) * 2, dtype=bool)
    for i in range(2):
        region = binary_dilation(holes[i], structure=box)
        assert region.sum() > holes[i].sum()
        # same float32 map; float64 means differ only in summation order (≤ n·eps64 relative)
        assert hole[i].item() == pytest.approx(maps[i][region].mean(), rel=64 * 64 * 1e-16)
    assert np.isnan(hole[2].item())  # no hole: undefined, not 0
