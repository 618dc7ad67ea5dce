"""End to end: a diffusers pipeline directory through `inpaintbench run`, `compare` and `models`.

The tiny random pipeline (tests/diffusion_fixtures.py) is saved with ``save_pretrained`` and evaluated at
256 px on the embedded samples with 2 denoising steps, so each run takes seconds on CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from diffusion_fixtures import save_tiny_pipeline  # noqa: E402
from run_paths import model_run_dir, run_cli  # noqa: E402

from inpaintbench.results import read_run_files as load_run  # noqa: E402
from inpaintbench.results import sanitize_sample_id


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipe")


def _run(capsys, root: Path, model: str, *extra: str, limit: int = 2) -> Path:
    code, text = run_cli(capsys, "run", "--model", model, "--limit", str(limit), "--metrics", "psnr", "--device", "cpu",
                         "--out", str(root), *extra)
    assert code == 0, text
    return model_run_dir(root, sanitize_sample_id(model))


@pytest.mark.slow
def test_run_and_compare_with_telea(capsys, tmp_path: Path, pipe_dir: Path, isolated_home: Path) -> None:
    model = f"diffusers:{pipe_dir}"
    run_dir = _run(capsys, tmp_path / "runs", model, "-O", "steps=2")
    manifest, rows, summary = load_run(run_dir)
    assert summary["n_failed"] == 0 and len(rows) == 2
    assert np.isfinite(rows["psnr"]).all()
    described = manifest["model"]
    assert described["pipeline"] == "StableDiffusionInpaintPipeline"
    assert described["pad_multiple"] == 8 and described["options"]["steps"] == 2
    assert {f["file"] for f in described["weights"]["files"]} >= {"model_index.json",
                                                                 "unet/diffusion_pytorch_model.safetensors"}
    telea = _run(capsys, tmp_path / "runs", "telea")
    code, text = run_cli(capsys, "compare", str(run_dir), str(telea), "--format", "csv", "--n-boot", "50")
    assert code == 0, text
    assert "telea" in text and "diffusers" in text and "psnr" in text.lower()


@pytest.mark.slow
def test_results_do_not_depend_on_batch_size(capsys, tmp_path: Path, pipe_dir: Path, isolated_home: Path) -> None:
    model = f"diffusers:{pipe_dir}"
    one = _run(capsys, tmp_path / "b1", model, "-O", "steps=1", "--batch-size", "1", limit=3)
    three = _run(capsys, tmp_path / "b3", model, "-O", "steps=1", "--batch-size", "3", limit=3)
    assert one.name == three.name  # same run identity
    _, rows1, _ = load_run(one)
    _, rows3, _ = load_run(three)
    assert list(rows1["sample_id"]) == list(rows3["sample_id"])
    np.testing.assert_array_equal(rows1["psnr"].to_numpy(), rows3["psnr"].to_numpy())


def test_text_to_image_pipeline_is_a_one_line_error(capsys, tmp_path: Path, isolated_home: Path) -> None:
    t2i = save_tiny_pipeline(tmp_path / "t2i", in_channels=4, text_to_image=True)
    code, text = run_cli(capsys, "run", "--model", f"diffusers:{t2i}", "--limit", "1", "--metrics", "psnr",
                         "--out", str(tmp_path / "runs"))
    assert code == 1
    assert "text-to-image" in text and "fix:" in text and "Traceback" not in text


def test_unknown_scheduler_is_a_one_line_error(capsys, tmp_path: Path, pipe_dir: Path, isolated_home: Path) -> None:
    code, text = run_cli(capsys, "run", "--model", f"diffusers:{pipe_dir}", "--limit", "1", "--metrics", "psnr",
                         "-O", "scheduler=bogus", "--out", str(tmp_path / "runs"))
    assert code == 1 and "scheduler" in text and "DDIMScheduler" in text and "Traceback" not in text


def test_models_lists_the_family(capsys) -> None:
    code, text = run_cli(capsys, "models")
    assert code == 0 and "diffusers:<id>" in text
