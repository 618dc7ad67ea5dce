"""`inpaintbench run` end to end with every metric (seeded random weights) and with MAT from a file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from run_paths import model_run_dir

from inpaintbench.cli import main
from inpaintbench.results import read_run_files as load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))


def test_run_with_all_metrics_and_cached_reference_features(capsys, tmp_path, fast_metric_weights_dir,
                                                           isolated_home, no_network):
    args = ["run", "--model", "telea,ns", "--limit", "6", "--batch-size", "3", "--offline",
            "--weights-dir", str(fast_metric_weights_dir), "--feature-extractor", "inception-stylegan2",
            "--metrics", "psnr,ssim,l1,psnr_hole,l1_hole,lpips,fid,kid,p_ids,u_ids",
            "--require-metrics", "lpips,fid", "--out", str(tmp_path / "runs")]
    code = main(args)
    text = capsys.readouterr()
    assert code == 0, text.out + text.err
    for model in ("telea", "ns"):
        run_dir = model_run_dir(tmp_path / "runs", model)
        manifest, rows, summary = load_run(run_dir)
        assert {"psnr", "ssim", "l1", "psnr_hole", "l1_hole", "lpips"} <= set(rows.columns)
        assert rows["lpips"].notna().all() and (rows["lpips"] > 0).all()
        for name in ("fid", "kid", "p_ids", "u_ids"):
            entry = summary["set_metrics"][name]
            assert entry["status"] == "ok" and entry["n"] == 6, (name, entry)
        # Every run directory is self-contained: the second model's reals came from the cache but are saved.
        for kind in ("fake", "real"):
            assert np.isfinite(np.load(run_dir / "features" / f"{kind}.npy")).all()
            assert np.load(run_dir / "features" / f"{kind}.npy").shape[0] == 6
        assert manifest["metrics"] and all(v == "ok" for v in manifest["metric_status"].values())
    # The ground-truth features of the first model were cached and reused by the second.
    assert any((isolated_home / "features").rglob("*.npy"))
    assert "FID" in text.out and "LPIPS" in text.out
    assert no_network == []


def test_missing_weights_degrade_and_require_fails(capsys, tmp_path, isolated_home):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["run", "--model", "telea", "--limit", "2", "--offline", "--weights-dir", str(empty)]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    _, rows, summary = load_run(model_run_dir(tmp_path / "a", "telea"))
    assert "lpips" not in rows.columns and "psnr" in rows.columns
    assert summary["unavailable"]["lpips"].startswith("unavailable")
    assert summary["set_metrics"]["fid"]["status"] == "unavailable"
    capsys.readouterr()
    assert main([*base, "--require-metrics", "lpips", "--out", str(tmp_path / "b")]) == 1
    assert "lpips" in capsys.readouterr().err


def test_preset_mat_selects_mat_conventions_and_explicit_flags_win(capsys, tmp_path, isolated_home):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["run", "--model", "telea", "--limit", "1", "--offline", "--weights-dir", str(empty), "--preset", "mat"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    manifest, _, summary = load_run(model_run_dir(tmp_path / "a", "telea"))
    assert list(manifest["config"]["metrics"]) == ["psnr", "ssim", "l1", "lpips", "fid", "p_ids", "u_ids"]
    assert manifest["config"]["feature_extractor"] == "inception-stylegan2"
    assert "inception-stylegan2" in summary["set_metrics"]["fid"]["reason"]
    assert main([*base, "--metrics", "psnr", "--lpips-net", "vgg", "--out", str(tmp_path / "b")]) == 0
    manifest, _, _ = load_run(model_run_dir(tmp_path / "b", "telea"))
    assert list(manifest["config"]["metrics"]) == ["psnr"] and manifest["config"]["lpips_net"] == "vgg"
    capsys.readouterr()
    assert main(["run", "--preset", "lama"]) == 2
    assert "no `lama` preset" in capsys.readouterr().err


def test_run_mat_from_a_safetensors_file_through_the_harness(capsys, tmp_path):
    from test_mat_fill import fill_module

    from inpaintbench.models.mat import Generator, save_mat_safetensors

    generator = Generator(256)
    fill_module(generator)
    weights = save_mat_safetensors(generator, tmp_path / "mat256.safetensors", {"fill": "matfill-v1"})
    del generator
    code = main(["run", "--model", "mat", "--weights", str(weights), "--limit", "2", "--batch-size", "2",
                 "--metrics", "psnr,ssim,l1,l1_hole", "--device", "cpu", "--save-images",
                 "--out", str(tmp_path / "runs")])
    text = capsys.readouterr()
    assert code == 0, text.out + text.err
    run_dirs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(run_dirs) == 1
    manifest, rows, summary = load_run(run_dirs[0])
    assert summary["n_ok"] == 2 and rows["psnr"].notna().all()
    assert manifest["model"]["name"] == "mat" and manifest["model"]["weights"]["sha256"]
    assert len(list((run_dirs[0] / "images").glob("*_pred.png"))) == 2

    # model options reach the adapter and are recorded; a name the model cannot take is one clear line
    code = main(["run", "--model", "mat", "--weights", str(weights), "--limit", "1", "--resolution", "512",
                 "--masks", "box-512", "-O", "resize_policy=resize", "-O", "impl=reference",
                 "--metrics", "psnr", "--device", "cpu", "--out", str(tmp_path / "runs512")])
    text = capsys.readouterr()
    assert code == 0, text.out + text.err
    (run512,) = [p for p in (tmp_path / "runs512").iterdir() if p.is_dir()]
    manifest, rows, _ = load_run(run512)
    assert manifest["model"]["resize_policy"] == "resize" and manifest["model"]["impl"] == "reference"
    assert rows["psnr"].notna().all()
    code = main(["run", "--model", "mat", "--weights", str(weights), "--limit", "1", "-O", "bogus=1",
                 "--metrics", "psnr", "--device", "cpu", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 1 and "does not take the option 'bogus'" in err and "Traceback" not in err


def test_options_a_model_cannot_use_are_dropped_for_it_with_a_warning(capsys, tmp_path):
    with pytest.warns(UserWarning, match="model telea does not take option.s. truncation_psi; ignored"):
        code = main(["run", "--model", "telea", "--truncation-psi", "0.5", "--limit", "1", "--metrics", "psnr",
                     "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert load_run(run_dir)[2]["n_ok"] == 1


def test_opt_in_lama_ssim_column(capsys, tmp_path):
    code = main(["run", "--model", "telea", "--limit", "2", "--metrics", "ssim,ssim_lama", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    manifest, rows, summary = load_run(model_run_dir(tmp_path, "telea"))
    assert rows["ssim_lama"].between(0, 1).all() and (rows["ssim_lama"] != rows["ssim"]).all()
    assert "ssim_lama" in summary["metrics"] and "SSIM (LaMa)" in out
    assert "zero padding" in manifest["metrics"]["variants"]["ssim_lama"]
