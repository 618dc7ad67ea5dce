"""MI-GAN as an Inpainter: input layout and polarity against the fixture, sizes (resize/pad policies),
determinism, provenance, registry ids with sha256 and offline rules, and the CLI flows end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from run_paths import model_run_dir, run_cli
from test_migan_fill import fill_module, load_fixture

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.models.migan import MIGANGenerator, MIGANInpainter, save_migan_safetensors
from inpaintbench.results import read_run_files as load_run
from inpaintbench.weights import sha256_file

# Output bound in [0, 1] units: the raw-output parity bound (1e-4 in [-1, 1], see test_migan_network) halved.
ATOL01 = 0.5e-4


@pytest.fixture(scope="module")
def fixture() -> dict:
    return load_fixture()


@pytest.fixture(scope="module")
def weights256(tmp_path_factory) -> Path:
    """The official 256 network filled by miganfill-v1, saved as our safetensors (random-like weights)."""
    G = fill_module(MIGANGenerator(256))
    return save_migan_safetensors(G, tmp_path_factory.mktemp("migan") / "migan256.safetensors",
                                  {"fill": "miganfill-v1"})


@pytest.fixture(scope="module")
def model(weights256) -> MIGANInpainter:
    return MIGANInpainter(weights256, device="cpu")


def fixture_batch(fx: dict) -> tuple[np.ndarray, np.ndarray]:
    """The fixture's inputs as the harness hands them over: uint8 RGB and holes (True = missing)."""
    u8 = torch.round((fx["image"] + 1) * 127.5).to(torch.uint8)
    assert torch.equal(u8.float() * 2 / 255 - 1, fx["image"])  # the fixture's stated recipe
    return u8.permute(0, 2, 3, 1).numpy().copy(), (fx["mask"][:, 0] == 0).numpy()


def test_network_input_is_exactly_the_official_one(model, fixture) -> None:
    images, holes = fixture_batch(fixture)
    assert torch.equal(model.build_input(images, holes), fixture["input"])


@pytest.fixture(scope="module")
def fixture_out(model, fixture) -> np.ndarray:
    images, holes = fixture_batch(fixture)
    return model.inpaint(images, holes, ids=["a", "b"])


def test_inpaint_output_matches_the_fixture(fixture_out, fixture) -> None:
    assert fixture_out.dtype == np.float32 and fixture_out.shape == (2, 256, 256, 3)
    expected = (fixture["output"] * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.abs(fixture_out - expected).max() <= ATOL01


def test_harness_composite_vs_official_demo_uint8(fixture_out, fixture) -> None:
    """The harness rounds where demo.py truncates: the hole differs by 0 or 1 level, known pixels not at all."""
    from inpaintbench.runner import composite, quantize

    images, holes = fixture_batch(fixture)
    demo = fixture["composited_uint8"].permute(0, 2, 3, 1).numpy()
    for i in range(2):
        ours = composite(quantize(fixture_out[i]), images[i], holes[i]).astype(int)
        diff = ours - demo[i].astype(int)
        assert (diff[~holes[i]] == 0).all()
        assert set(np.unique(diff[holes[i]]).tolist()) <= {0, 1}


def test_polarity_network_sees_plus_half_for_known(model, monkeypatch) -> None:
    seen = {}
    real = model.G.forward

    def spy(x):
        seen["x"] = x.clone()
        return real(x)

    monkeypatch.setattr(model.G, "forward", spy)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    holes = np.zeros((1, 256, 256), bool)
    holes[0, 100:150, 30:200] = True
    model.inpaint(images, holes)
    x, hole = seen["x"], torch.from_numpy(holes[0])
    assert torch.all(x[0, 0][hole] == -0.5) and torch.all(x[0, 0][~hole] == 0.5)
    assert torch.all(x[0, 1:, 100:150, 30:200] == 0)


def _random_batch(b: int, h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)
    holes = np.zeros((b, h, w), bool)
    for i in range(b):
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        holes[i, y:y + h // 3, x:x + w // 4] = True
        holes[i, :, w // 2 + i] = True  # a one-pixel stroke, which a nearest-resized mask could drop
    return images, holes


@pytest.mark.slow
def test_deterministic_and_batch_independent(model, weights256) -> None:
    """Nothing is drawn at random: other ids, batch composition and micro-batching give the same images."""
    images, holes = _random_batch(2, 256, 256, seed=1)
    full = model.inpaint(images, holes, ids=["x", "y"])
    micro = MIGANInpainter(weights256, micro_batch=1).inpaint(images, holes, ids=["p", "q"])
    # batched kernels may sum in another order: float rounding only (the parity bound)
    assert np.abs(full - micro).max() <= ATOL01
    assert np.abs(full[0] - full[1]).max() > 0.05  # and the two samples differ


@pytest.mark.slow
@pytest.mark.parametrize("policy,size", [("resize", (200, 330)), ("resize", (512, 384)), ("pad", (200, 180))])
def test_size_policies_never_use_undefined_pixels(weights256, policy: str, size: tuple[int, int]) -> None:
    """Other sizes: the output has the input's size, and what lies under the holes cannot change it."""
    m = MIGANInpainter(weights256, resize_policy=policy)
    h, w = size
    images, holes = _random_batch(1, h, w, seed=2)
    out = m.inpaint(images, holes)
    assert out.shape == (1, h, w, 3) and np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    other = images.copy()
    other[holes] = 255 - other[holes]
    assert np.array_equal(out, m.inpaint(other, holes))
    assert m.describe()["resize_policy"] == policy


def test_resize_is_the_identity_path_at_native_size(weights256, model) -> None:
    images, holes = _random_batch(1, 256, 256, seed=3)
    assert np.array_equal(MIGANInpainter(weights256, resize_policy="resize").inpaint(images, holes),
                          model.inpaint(images, holes))


def test_size_errors_name_the_policies(model, weights256) -> None:
    images, holes = _random_batch(1, 200, 200, seed=0)
    with pytest.raises(InputError, match="takes 256x256") as err:
        model.inpaint(images, holes)
    assert "resize_policy=resize" in str(err.value.fix)
    big, big_holes = _random_batch(1, 300, 300, seed=0)
    with pytest.raises(InputError, match="no larger than 256x256"):
        MIGANInpainter(weights256, resize_policy="pad").inpaint(big, big_holes)


def test_bad_inputs_and_options_are_user_errors(model, weights256) -> None:
    images, holes = _random_batch(1, 256, 256, seed=0)
    with pytest.raises(InputError, match="uint8"):
        model.inpaint(images.astype(np.float32), holes)
    with pytest.raises(InputError, match="bool"):
        model.inpaint(images, holes.astype(np.uint8))
    with pytest.raises(InputError, match="ids"):
        model.inpaint(images, holes, ids=["a", "b"])
    for kw in ({"resize_policy": "stretch"}, {"precision": "fp8"}, {"impl": "slow"}, {"micro_batch": 0}):
        with pytest.raises(InputError):
            MIGANInpainter(weights256, **kw)


@pytest.mark.slow
def test_bf16_autocast_runs_close_to_fp32(weights256, model) -> None:
    """bf16 keeps 8 significant bits (relative rounding 2^-9 per op); through ~30 layers the [0, 1] output
    moves by a few 1e-3 on average, while a wrong layout or a missing cast back would move it by O(0.1)."""
    images, holes = _random_batch(1, 256, 256, seed=4)
    fp32 = model.inpaint(images, holes)
    bf16 = MIGANInpainter(weights256, precision="bf16").inpaint(images, holes)
    assert bf16.dtype == np.float32 and np.isfinite(bf16).all()
    assert np.abs(bf16 - fp32).mean() < 0.02


def test_describe_has_provenance(model, weights256) -> None:
    d = model.describe()
    assert d["weights"]["sha256"] == sha256_file(weights256) and d["weights"]["format"] == "safetensors"
    assert d["native_resolution"] == 256 and d["stochastic"] is False and "no seed" in d["noise_policy"]
    assert d["device"] == "cpu" and d["impl"] == "fast" and d["precision"] == "fp32"
    assert "mask - 0.5" in d["input_layout"] and json.dumps(d)


# ------------------------------------------------------------------ registry, weights, offline


def test_registry_ids_weights_and_offline_rules(weights256, tmp_path, isolated_home, no_network) -> None:
    from inpaintbench.models import create_model, get_model_spec, list_models
    from inpaintbench.weights import get_weight_spec, import_weights

    assert {"migan-256", "migan-512"} <= set(list_models())
    spec = get_model_spec("migan-512")
    assert spec.native_size == "512x512" and "MIT" in spec.licence and spec.needs_weights == ("migan-512",)
    ws = get_weight_spec("migan-256")
    assert ws.filename == "migan_256_places2.pt" and ws.urls == () and ws.sha256 is None
    assert "drive.google.com" in ws.manual_instructions and "weights import migan-256" in ws.manual_instructions
    with pytest.raises(WeightsError, match="migan-256.*not found") as err:
        create_model("migan-256", weights_dir=str(tmp_path), offline=True)
    assert "weights import migan-256" in str(err.value.fix)
    import_weights("migan-256", weights256, weights_dir=tmp_path)  # format sniffed from bytes, not the name
    m = create_model("migan-256", weights_dir=str(tmp_path), offline=True)
    d = m.describe()
    assert d["name"] == "migan-256" and d["weights"]["id"] == "migan-256" and d["weights"]["verified"] == "recorded"
    # a file changed after import is refused (sha256 recorded at import)
    cached = tmp_path / ws.filename
    G = MIGANGenerator(256)
    save_migan_safetensors(G, cached)
    with pytest.raises(WeightsError, match="sha256"):
        create_model("migan-256", weights_dir=str(tmp_path), offline=True)
    # --weights overrides the registry; the resolution must match the id
    assert create_model("migan-256", weights=str(weights256)).describe()["weights"]["id"] is None
    with pytest.raises(WeightsError, match="migan-256"):
        create_model("migan-512", weights=str(weights256))


def test_importing_the_package_is_light() -> None:
    code = ("import sys, inpaintbench.models.migan as m; m.register(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


# ------------------------------------------------------------------ the CLI, end to end


@pytest.mark.slow
def test_cli_run_and_compare_with_another_model(capsys, tmp_path, weights256, isolated_home, no_network) -> None:
    out = tmp_path / "runs"
    common = ["--limit", "2", "--metrics", "psnr", "--offline", "--device", "cpu", "--out", str(out)]
    code, text = run_cli(capsys, "run", "--model", "migan-256", "--weights", str(weights256), *common)
    assert code == 0, text
    code, text = run_cli(capsys, "run", "--model", "telea", *common)
    assert code == 0, text
    migan = model_run_dir(out, "migan-256-migan256")
    manifest, rows, _ = load_run(migan)
    assert (rows["status"] == "ok").all(), rows["error"].tolist()
    assert np.isfinite(rows["psnr"]).all() and len(rows) == 2
    desc = manifest["model"]
    assert desc["weights"]["sha256"] == sha256_file(weights256) and desc["stochastic"] is False
    code, text = run_cli(capsys, "compare", str(migan), str(model_run_dir(out, "telea")))
    assert code == 0, text
    assert "migan-256" in text and "telea" in text and "PSNR" in text


def test_cli_lists_the_models(capsys) -> None:
    code, text = run_cli(capsys, "models")
    assert code == 0 and "migan-256" in text and "migan-512" in text
