"""The command line: bad input gives one clear line and exit code 1, usage errors exit 2, `score` pairs by name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from run_paths import model_run_dir

from inpaintbench.cli import main
from inpaintbench.results import read_run_files as load_run

PIXEL = ["--metrics", "psnr,ssim,l1,psnr_hole,l1_hole"]


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_unknown_model_lists_known(capsys, tmp_path):
    code, text = _run(capsys, "run", "--model", "nope", "--out", str(tmp_path), *PIXEL)
    assert code == 1
    assert "unknown model 'nope'" in text and "telea" in text and "Traceback" not in text


def test_unknown_mask_set_lists_known(capsys, tmp_path):
    code, text = _run(capsys, "run", "--model", "telea", "--masks", "mat-huge-999", "--out", str(tmp_path), *PIXEL)
    assert code == 1
    assert "mat-huge-999" in text and "mat-large-256" in text and "Traceback" not in text


def test_empty_dataset_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, text = _run(capsys, "run", "--model", "telea", "--data", f"folder:{tmp_path / 'empty'}",
                      "--out", str(tmp_path / "o"), *PIXEL)
    assert code == 1 and "empty" in text.lower() and "Traceback" not in text


def test_corrupt_image_names_the_file(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(data / "good.png")
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    code, text = _run(capsys, "run", "--model", "telea", "--data", f"folder:{data}", "--out", str(tmp_path / "o"),
                      *PIXEL)
    assert code == 1 and "bad.png" in text and "Traceback" not in text


def test_image_smaller_than_resolution(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.zeros((100, 120, 3), np.uint8)).save(data / "small.png")
    code, text = _run(capsys, "run", "--model", "telea", "--data", f"folder:{data}", "--out", str(tmp_path / "o"),
                      *PIXEL)
    assert code == 1 and "small.png" in text and "--resize-policy" in text


def test_permission_denied_output_directory(capsys, tmp_path, monkeypatch):
    # Root ignores directory permissions, so simulate EACCES where the results are created.
    import errno

    import inpaintbench.results as results

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(results.tempfile, "mkstemp", denied)
    code, text = _run(capsys, "run", "--model", "telea", "--limit", "2", "--out", str(tmp_path / "x"), *PIXEL)
    assert code == 1 and "permission denied" in text and "writable --out" in text


def test_unwritable_output_is_a_clear_error(capsys, tmp_path):
    # Works as root too: a regular file where a directory is needed.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, text = _run(capsys, "run", "--model", "telea", "--limit", "2", "--out", str(blocker / "x"), *PIXEL)
    assert code == 1 and "cannot write" in text and "Traceback" not in text


def test_disk_full_keeps_completed_rows(capsys, tmp_path, monkeypatch):
    import errno

    import inpaintbench.results as results

    real = results.os.fdopen
    calls = {"n": 0}

    def failing_fdopen(fd, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:  # let the manifest and the first chunk through, then the disk is "full"
            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, *args, **kwargs)

    monkeypatch.setattr(results.os, "fdopen", failing_fdopen)
    out = tmp_path / "o"
    code, text = _run(capsys, "run", "--model", "telea", "--limit", "6", "--batch-size", "2", "--out", str(out),
                      *PIXEL)
    assert code == 1 and "disk full" in text
    chunks = list((model_run_dir(out, "telea") / "partial").glob("batch-*.parquet"))
    assert chunks, "the completed chunk must survive"
    monkeypatch.setattr(results.os, "fdopen", real)
    code, text = _run(capsys, "run", "--model", "telea", "--limit", "6", "--batch-size", "2", "--out", str(out),
                      *PIXEL)
    assert code == 0, text


def test_usage_error_exit_code_two(capsys):
    code, _ = _run(capsys, "run", "--batch-size", "zero")
    assert code == 2


def test_help_lists_commands(capsys):
    code, text = _run(capsys, "--help")
    assert code == 0
    for command in ("run", "score", "masks", "models", "datasets", "env", "weights", "leaderboard"):
        assert command in text


# ---------------------------------------------------------------------------------------------
# score


def _write_set(root: Path, n: int = 4, size: int = 64, hole_value: int = 255, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for sub in ("gt", "pred", "masks"):
        (root / sub / "nested").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stem = f"nested/img{i}" if i % 2 else f"img{i}"
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        hole = np.zeros((size, size), bool)
        hole[8 : 8 + 10 + i, 16:40] = True
        pred = gt.copy()
        pred[hole] = rng.integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
        Image.fromarray(gt).save(root / "gt" / f"{stem}.png")
        Image.fromarray(pred).save(root / "pred" / f"{stem}.png")
        mask = np.where(hole, hole_value, 255 - hole_value).astype(np.uint8)
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")


def test_score_pairs_by_relative_path(capsys, tmp_path):
    _write_set(tmp_path)
    out = tmp_path / "scored"
    code, text = _run(capsys, "score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                      "--masks", str(tmp_path / "masks"), "--hole-value", "255", "--name", "mine", "--out", str(out),
                      *PIXEL)
    assert code == 0, text
    manifest, rows, summary = load_run(out)
    assert manifest["model"]["name"] == "mine"
    assert sorted(rows.image_id) == ["img0", "img2", "nested/img1", "nested/img3"]
    # Only hole pixels differ, so the hole-only L1 is larger than the whole-image L1.
    assert (rows.l1_hole > rows.l1).all()
    expected_ratio = [(10 + int(s[-1])) * 24 / 64**2 for s in rows.image_id]
    assert np.allclose(rows.hole_ratio, expected_ratio)
    assert summary["n_ok"] == 4


def test_score_takes_the_metric_variants_and_the_mat_preset(capsys, tmp_path, isolated_home):
    _write_set(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ["score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--masks",
              str(tmp_path / "masks"), "--hole-value", "255", "--offline", "--weights-dir", str(empty)]
    code, text = _run(capsys, *common, "--preset", "mat", "--seed", "5", "--out", str(tmp_path / "a"))
    assert code == 0, text
    manifest, _, summary = load_run(tmp_path / "a")
    assert manifest["config"]["feature_extractor"] == "inception-stylegan2" and manifest["config"]["seed"] == 5
    assert list(manifest["config"]["metrics"]) == ["psnr", "ssim", "l1", "lpips", "fid", "p_ids", "u_ids"]
    assert summary["set_metrics"]["fid"]["status"] == "unavailable"
    code, text = _run(capsys, *common, "--metrics", "psnr,lpips", "--lpips-net", "vgg", "--require-metrics",
                      "lpips", "--out", str(tmp_path / "b"))
    assert code == 1 and "lpips" in text


def test_score_refuses_missing_and_duplicate_stems(capsys, tmp_path):
    _write_set(tmp_path)
    (tmp_path / "pred" / "img0.png").unlink()
    code, text = _run(capsys, "score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                      "--masks", str(tmp_path / "masks"), "--hole-value", "255", "--out", str(tmp_path / "o"), *PIXEL)
    assert code == 1 and "img0" in text and "missing" in text
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "pred" / "img0.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "pred" / "img0.jpg")
    code, text = _run(capsys, "score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                      "--masks", str(tmp_path / "masks"), "--hole-value", "255", "--out", str(tmp_path / "o"), *PIXEL)
    assert code == 1 and "two files" in text


def test_score_wrong_polarity_is_caught(capsys, tmp_path):
    _write_set(tmp_path, hole_value=0)  # masks written with 0 = hole ...
    code, text = _run(capsys, "score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                      "--masks", str(tmp_path / "masks"), "--hole-value", "255",  # ... read as 255 = hole
                      "--out", str(tmp_path / "o"), *PIXEL)
    assert code == 1 and "polarity" in text.lower() and "--hole-value" in text


def test_score_mask_of_wrong_size(capsys, tmp_path):
    _write_set(tmp_path)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "masks" / "img0.png")
    code, text = _run(capsys, "score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                      "--masks", str(tmp_path / "masks"), "--hole-value", "255", "--out", str(tmp_path / "o"), *PIXEL)
    assert code == 1 and "img0" in text and "32" in text


def test_score_empty_mask(capsys, tmp_path):
    _write_set(tmp_path)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "masks" / "img0.png")  # no 255 = no hole
    code, text = _run(capsys, "score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                      "--masks", str(tmp_path / "masks"), "--hole-value", "255", "--out", str(tmp_path / "o"), *PIXEL)
    # The same mask-validity rule as `run`: the sample fails with the reason, the others are scored.
    assert code == 0 and "1 sample(s) failed" in text
    _, rows, summary = load_run(tmp_path / "o")
    bad = rows.set_index("image_id").loc["img0"]
    assert bad["status"] == "failed" and "no hole" in bad["error"]
    assert summary["n_failed"] == 1 and summary["n_ok"] == len(rows) - 1


def test_models_lists_and_offers_register(capsys):
    code, text = _run(capsys, "models")
    assert code == 0 and "telea" in text and "mat-celebahq-256" in text
    code, text = _run(capsys, "models", "register", "--help")
    assert code == 0 and "RUN_DIR" in text.upper()
    code, text = _run(capsys, "models", "register", "x", "/nonexistent/run")
    assert code == 1 and "Traceback" not in text


def test_env_lists_weight_files_with_recorded_hashes(capsys, isolated_home):
    from inpaintbench import weights as W

    code, text = _run(capsys, "env")
    assert code == 0 and "INPAINTBENCH_HOME" in text
    assert "inception-tf" in text and "mat-celebahq-256" in text and "missing" in text
    path = W.expected_path("inception-tf")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not really inception")
    code, text = _run(capsys, "env")
    assert "not checked yet" in text  # env never hashes a file itself
    digest = W.cached_sha256(path)
    assert W.recorded_sha256(path) == digest
    code, text = _run(capsys, "env")
    assert digest[:12] in text
    path.write_bytes(b"changed")  # a changed file has no recorded hash any more
    assert W.recorded_sha256(path) is None
