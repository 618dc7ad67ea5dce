"""LaMa adapter and registry: official conventions end to end, describe(), options, CLI run and compare."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from run_paths import model_run_dir, run_cli
from test_lama_fill import fill_module, load_fixture
from test_lama_network import PARITY_ATOL, TINY, randomize_

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.models import create_model, get_model_spec, list_models
from inpaintbench.models.lama import LamaGenerator, LamaInpainter, save_lama_safetensors
from inpaintbench.weights import get_weight_spec, sha256_file


@pytest.fixture
def tiny_file(tmp_path):
    gen = randomize_(LamaGenerator(**TINY), seed=11).eval()
    return save_lama_safetensors(gen, tmp_path / "lama-tiny.safetensors"), gen


def _batch(b: int, h: int, w: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)
    holes = np.zeros((b, h, w), dtype=bool)
    holes[:, h // 4: h // 2, w // 3: w // 2 + 3] = True
    return images, holes


def test_registry_entry() -> None:
    assert "lama" in list_models()
    spec = get_model_spec("lama")
    assert spec.needs_weights == ("lama",) and spec.licence == "Apache-2.0" and "256" in spec.native_size
    w = get_weight_spec("lama")
    assert w.urls == ("https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip",)
    assert w.sha256 is None and "recorded" in (w.manual_instructions or "")


def test_missing_weights_offline_is_a_clear_error_and_opens_no_socket(isolated_home, no_network, tmp_path) -> None:
    with pytest.raises(WeightsError) as e:
        create_model("lama", offline=True, weights_dir=str(tmp_path / "empty"))
    assert "big-lama.zip" in e.value.message and "inpaintbench weights import lama" in (e.value.fix or "")
    assert no_network == []


@pytest.mark.slow
def test_adapter_reproduces_the_fixture_from_a_weights_file(tmp_path) -> None:
    """Fixture weights -> safetensors -> adapter.predict(image, mask): raw output and composite at 1e-4."""
    fx = load_fixture()
    path = save_lama_safetensors(fill_module(LamaGenerator()), tmp_path / "lamafill.safetensors")
    model = LamaInpainter(path, device="cpu")
    raw, comp = model.predict(fx["image"], fx["mask"])
    assert (raw - fx["output"]).abs().max().item() <= PARITY_ATOL
    assert (comp - fx["composited"]).abs().max().item() <= PARITY_ATOL


def test_inpaint_pads_symmetrically_crops_and_composites(tiny_file) -> None:
    path, gen = tiny_file
    model = LamaInpainter(path, device="cpu")
    images, holes = _batch(2, 37, 50)
    out = model.inpaint(images, holes, ids=["a", "b"])
    assert out.shape == (2, 37, 50, 3) and out.dtype == np.float32
    # the same thing by hand: numpy 'symmetric' padding to 40x56, the generator, crop, composite
    img = images.astype(np.float32) / 255.0
    img_p = np.pad(img, ((0, 0), (0, 3), (0, 6), (0, 0)), mode="symmetric")
    hol_p = np.pad(holes, ((0, 0), (0, 3), (0, 6)), mode="symmetric").astype(np.float32)
    x = torch.cat([torch.from_numpy(img_p).permute(0, 3, 1, 2) * (1 - torch.from_numpy(hol_p)[:, None]),
                   torch.from_numpy(hol_p)[:, None]], 1)
    with torch.no_grad():
        raw = gen.eval()(x)[:, :, :37, :50].permute(0, 2, 3, 1).numpy()
    want = np.where(holes[..., None], raw, img)
    assert np.abs(out - want).max() <= 1e-5
    assert np.array_equal(out[~holes], img[~holes])  # known pixels come back exactly


def test_results_do_not_depend_on_the_batch(tiny_file) -> None:
    path, _ = tiny_file
    model = LamaInpainter(path, device="cpu")
    images, holes = _batch(3, 32, 40, seed=1)
    together = model.inpaint(images, holes)
    alone = np.concatenate([model.inpaint(images[i:i + 1], holes[i:i + 1]) for i in range(3)])
    assert np.array_equal(together, alone)  # CPU: one sample at a time by default


def test_impl_and_precision_options(tiny_file) -> None:
    path, _ = tiny_file
    images, holes = _batch(1, 24, 32, seed=2)
    ref = LamaInpainter(path, device="cpu", impl="reference").inpaint(images, holes)
    fast = LamaInpainter(path, device="cpu").inpaint(images, holes)
    bf16 = LamaInpainter(path, device="cpu", precision="bf16").inpaint(images, holes)
    assert np.abs(fast - ref).max() <= 1e-5
    assert np.abs(bf16 - ref).max() <= 0.05 and np.isfinite(bf16).all()  # bf16 has 8 mantissa bits
    for bad in ({"precision": "fp8"}, {"impl": "nope"}, {"micro_batch": 0}, {"tf32": "yes"}, {"precision": "fp16"}):
        with pytest.raises(InputError):
            LamaInpainter(path, device="cpu", **bad)


def test_bad_inputs_are_input_errors(tiny_file) -> None:
    model = LamaInpainter(tiny_file[0], device="cpu")
    images, holes = _batch(1, 16, 16)
    with pytest.raises(InputError, match="uint8"):
        model.inpaint(images.astype(np.float32), holes)
    with pytest.raises(InputError, match="bool"):
        model.inpaint(images, holes.astype(np.uint8))
    with pytest.raises(InputError, match="ids"):
        model.inpaint(images, holes, ids=["a", "b"])


def test_describe_records_weights_and_conventions(tiny_file) -> None:
    path, _ = tiny_file
    model = create_model("lama", weights=str(path), device="cpu", seed=5)
    d = model.describe()
    assert d["weights"]["sha256"] == sha256_file(path) and d["weights"]["format"] == "safetensors"
    assert d["config"] == {**d["config"], **TINY} and d["seed"] == 5
    assert "deterministic" in d["determinism"] and "symmetric" in d["padding"]
    assert d["impl"] == "fast" and d["precision"] == "fp32" and d["device"] == "cpu"
    assert model.native_resolution is None and model.pad_multiple == 1


@pytest.mark.slow
def test_cli_run_and_compare_with_another_model(capsys, tmp_path, tiny_file) -> None:
    path, _ = tiny_file
    out = tmp_path / "runs"
    code, text = run_cli(capsys, "run", "--model", "lama", "--weights", str(path), "--limit", "2",
                         "--metrics", "psnr", "--device", "cpu", "--out", str(out))
    assert code == 0, text
    code, text = run_cli(capsys, "run", "--model", "telea", "--limit", "2", "--metrics", "psnr", "--out", str(out))
    assert code == 0, text
    run_lama = model_run_dir(out, "lama-lama-tiny")
    run_telea = model_run_dir(out, "telea")
    from inpaintbench.results import read_run_files as load_run

    manifest, rows, summary = load_run(run_lama)
    assert summary["n_ok"] == 2 and rows["psnr"].notna().all()
    assert manifest["model"]["weights"]["sha256"] == sha256_file(path)
    code, text = run_cli(capsys, "compare", str(run_lama), str(run_telea))
    assert code == 0, text
    assert "psnr" in text.lower() and "lama" in text and "telea" in text
