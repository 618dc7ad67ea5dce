"""MAT adapter (Inpainter protocol) and registry: polarity, sizes, seeding, precision, provenance."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_mat_layers import U64, chain_terms, close

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.models.mat import Generator, MATInpainter, save_mat_safetensors
from inpaintbench.models.mat.adapter import content_id, sample_seed

R = 128
# Known pixels: out = ((v / 127.5 - 1) + 1) / 2 in float32 (the composite copies the input bits), three
# roundings of at most 2^-24, 2^-25, 2^-24, halved: <= 1.25 * 2^-24 < eps32 from v / 255 (measured over
# all 256 values: 0.25 eps32).
KNOWN_ATOL = float(np.finfo(np.float32).eps)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks are dominated by per-op overhead, which extra threads only add to on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    G = Generator(R, z_dim=16, w_dim=16, config="tiny")
    with torch.no_grad():  # keep outputs in a useful range: shrink the ToRGB paths
        for name, p in G.named_parameters():
            if "toRGB" in name and name.endswith("conv.weight"):
                p.mul_(0.05)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    return save_mat_safetensors(G, path, {"note": "random tiny MAT for adapter tests"})


@pytest.fixture(scope="module")
def model(tiny_weights) -> MATInpainter:
    return MATInpainter(tiny_weights)


def batch(n: int, seed: int = 0, size: int = R):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    holes = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        y, x = rng.integers(0, size // 2, size=2)
        holes[i, y:y + size // 3, x:x + size // 3] = True
    return images, holes


def test_contract_shapes_range_and_known_pixels(model) -> None:
    images, holes = batch(2)
    out = model.inpaint(images, holes, ids=["a", "b"])
    assert out.shape == images.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    known = ~holes
    np.testing.assert_allclose(out[known], images[known] / 255.0, atol=KNOWN_ATOL)
    assert np.abs(out[holes] - images[holes] / 255.0).mean() > 1e-3  # holes are filled, not copied


def test_polarity_network_sees_1_for_known(model, monkeypatch) -> None:
    seen = {}
    forward = model.G.forward

    def spy(images, masks, *a, **k):
        seen["masks"] = masks.detach().clone()
        return forward(images, masks, *a, **k)

    monkeypatch.setattr(model.G, "forward", spy)
    images, holes = batch(1)
    model.inpaint(images, holes, ids=["x"])
    m = seen["masks"][0, 0].numpy()
    assert set(np.unique(m)) == {0.0, 1.0}
    np.testing.assert_array_equal(m == 0, holes[0])


def test_deterministic_and_seeded_per_sample(model, tiny_weights) -> None:
    images, holes = batch(2)
    a = model.inpaint(images, holes, ids=["s1", "s2"])
    b = model.inpaint(images, holes, ids=["s1", "s2"])
    assert np.array_equal(a, b)
    c = model.inpaint(images, holes, ids=["s1", "other"])
    assert np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])
    other_seed = MATInpainter(tiny_weights, seed=1).inpaint(images, holes, ids=["s1", "s2"])
    assert not np.array_equal(a, other_seed)


def test_batch_composition_does_not_matter(model, tiny_weights) -> None:
    images, holes = batch(3, seed=1)
    ids = ["p", "q", "r"]
    full = model.inpaint(images, holes, ids=ids)
    alone = model.inpaint(images[1:2], holes[1:2], ids=["q"])
    assert np.array_equal(full[1], alone[0])  # bit-identical (batch-1 kernels on CPU)
    reordered = model.inpaint(images[::-1].copy(), holes[::-1].copy(), ids=ids[::-1])
    assert np.array_equal(reordered[::-1], full)
    chunked = MATInpainter(tiny_weights, micro_batch=2).inpaint(images, holes, ids=ids)
    assert np.array_equal(chunked, full)
    # the batched kernels (GPU path, training) agree with the per-sample CPU path up to float rounding
    # (a float64 copy, so the bound is the arithmetic's: see test_mat_layers.close)
    G = copy.deepcopy(model.G).double()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 127.5 - 1
    m = 1 - torch.from_numpy(holes).double()[:, None]
    z = torch.randn(3, G.z_dim, dtype=torch.float64)
    s1, s2 = G.mix_mask_shapes(3)
    mm = ((torch.rand(s1) > 0.5).double(), (torch.rand(s2) > 0.5).double())
    with torch.no_grad():
        (per_sample, batched), n = chain_terms([G], lambda: (
            G(x, m, z, noise_mode="const", mix_masks=mm),
            G.synthesis(x, m, G.mapping(z, None), noise_mode="const", mix_masks=mm)))
    assert 2 * n * U64 < 1e-6, n  # tight enough to catch a kernel that mixes samples
    assert close(per_sample, batched, n)


def test_without_ids_the_content_is_the_id(model) -> None:
    images, holes = batch(3, seed=2)
    full = model.inpaint(images, holes)
    alone = model.inpaint(images[2:], holes[2:])
    assert np.array_equal(full[2], alone[0])
    assert content_id(images[0], holes[0]) != content_id(images[0], ~holes[0])


def test_z_policy_is_reproducible_from_the_documented_recipe(model) -> None:
    images, holes = batch(1, seed=3)
    out = model.inpaint(images, holes, ids=["img-7"])
    g = torch.Generator().manual_seed(sample_seed(0, "img-7"))
    z = torch.randn(16, generator=g, dtype=torch.float64)[None]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    m = 1 - torch.from_numpy(holes).float()[:, None]
    with torch.no_grad():
        y = model.G(x, m, z, None, noise_mode=model.noise_mode, generator=[g])
    ref = ((y + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(out, ref)


def test_noise_mode_follows_official_script(model, tiny_weights) -> None:
    assert model.noise_mode == "random"  # non-512 models: generate_image.py forces random noise
    assert MATInpainter(tiny_weights, noise_mode="none").noise_mode == "none"


def test_bf16_autocast_on_cpu_stays_close_to_fp32(tiny_weights) -> None:
    """Stated tolerance: |bf16 - fp32| <= 0.05 max and <= 0.01 mean on the [0, 1] output."""
    images, holes = batch(2, seed=4)
    fp32 = MATInpainter(tiny_weights, impl="fast").inpaint(images, holes, ids=["u", "v"])
    bf16 = MATInpainter(tiny_weights, precision="bf16").inpaint(images, holes, ids=["u", "v"])
    diff = np.abs(bf16 - fp32)
    assert diff.max() <= 0.05 and diff.mean() <= 0.01
    assert diff[holes].max() > 0  # bf16 really ran


def test_nan_output_is_returned_as_is(model, monkeypatch) -> None:
    def nan_forward(images, masks, *a, **k):
        return torch.full_like(images, float("nan"))

    monkeypatch.setattr(model.G, "forward", nan_forward)
    images, holes = batch(1)
    out = model.inpaint(images, holes, ids=["n"])
    assert np.isnan(out).all()


def test_size_policies(tiny_weights) -> None:
    images, holes = batch(1, size=R)
    small_img, small_holes = images[:, :100, :90].copy(), holes[:, :100, :90].copy()
    with pytest.raises(InputError, match="takes 128x128"):
        MATInpainter(tiny_weights).inpaint(small_img, small_holes)
    padded = MATInpainter(tiny_weights, resize_policy="pad").inpaint(small_img, small_holes, ids=["k"])
    assert padded.shape == small_img.shape
    np.testing.assert_allclose(padded[~small_holes], small_img[~small_holes] / 255.0, atol=KNOWN_ATOL)
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    big_holes = np.repeat(np.repeat(holes, 2, axis=1), 2, axis=2)
    with pytest.raises(InputError, match="no larger"):
        MATInpainter(tiny_weights, resize_policy="pad").inpaint(big, big_holes)
    resized = MATInpainter(tiny_weights, resize_policy="resize").inpaint(big, big_holes, ids=["k"])
    assert resized.shape == big.shape and np.isfinite(resized).all()


def test_bad_inputs_are_user_errors(model, tiny_weights) -> None:
    images, holes = batch(1)
    with pytest.raises(InputError, match="bool"):
        model.inpaint(images, holes.astype(np.uint8))
    with pytest.raises(InputError, match="uint8"):
        model.inpaint(images.astype(np.float32), holes)
    with pytest.raises(InputError, match="ids"):
        model.inpaint(images, holes, ids=["a", "b"])
    with pytest.raises(InputError):
        MATInpainter(tiny_weights, resize_policy="stretch")


def test_describe_has_provenance(model, tiny_weights) -> None:
    d = model.describe()
    assert d["weights"]["path"] == str(tiny_weights) and len(d["weights"]["sha256"]) == 64
    assert d["weights"]["format"] == "safetensors"
    for key in ("config", "truncation_psi", "noise_mode", "z_policy", "precision", "impl", "seed",
                "resize_policy", "native_resolution"):
        assert key in d
    assert model.native_resolution == R and model.pad_multiple == 1 and model.value_range == (-1.0, 1.0)


# ------------------------------------------------------------------ registry


def test_registry_ids_and_weight_specs(tiny_weights, tmp_path) -> None:
    from inpaintbench.models import create_model, list_models
    from inpaintbench.weights import get_weight_spec, import_weights

    assert {"mat", "mat-celebahq-256", "mat-ffhq-512", "mat-places-512"} <= set(list_models())
    spec = get_weight_spec("mat-ffhq-512")
    assert spec.filename == "FFHQ_512.pkl" and spec.urls == () and spec.sha256 is None
    assert "sharepoint.com" in spec.manual_instructions and "weights import" in spec.manual_instructions
    m = create_model("mat", weights=str(tiny_weights))
    assert isinstance(m, MATInpainter) and m.name == "mat"
    with pytest.raises(WeightsError, match="weights=PATH"):
        create_model("mat")
    with pytest.raises(WeightsError, match="mat-celebahq-256"):
        create_model("mat-celebahq-256", weights_dir=str(tmp_path), offline=True)
    # a file imported under a registered id resolves (format is sniffed from bytes, not the name)
    import_weights("mat-celebahq-256", tiny_weights, weights_dir=tmp_path)
    reg = create_model("mat-celebahq-256", weights_dir=str(tmp_path), offline=True)
    d = reg.describe()
    assert d["name"] == "mat-celebahq-256" and d["weights"]["id"] == "mat-celebahq-256"
    assert d["weights"]["verified"] == "recorded"


def test_importing_the_package_is_light() -> None:
    code = ("import sys, inpaintbench.models.mat as m; m.register(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


# ------------------------------------------------------------------ official 256 config, end to end


@pytest.mark.slow
def test_create_model_mat_on_filled_256_safetensors(tmp_path) -> None:
    """Library-level version of `inpaintbench run --model mat --weights <file>` with the official 256
    config filled by matfill-v1 (random-like weights): shapes, polarity, determinism of the known region."""
    from test_mat_fill import fill_module

    from inpaintbench.models import create_model

    G = Generator(256)
    fill_module(G)
    path = save_mat_safetensors(G, tmp_path / "mat256.safetensors", {"fill": "matfill-v1"})
    del G
    m = create_model("mat", weights=str(path))
    assert m.native_resolution == 256 and m.noise_mode == "random"
    images, holes = batch(2, seed=5, size=256)
    out = m.inpaint(images, holes, ids=["one", "two"])
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out[~holes], images[~holes] / 255.0, atol=KNOWN_ATOL)
    assert m.describe()["config"]["img_resolution"] == 256
