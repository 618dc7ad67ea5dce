"""A finished run asked again with --save-images gets its images (same identity, same numbers)."""

from __future__ import annotations

import json

import pandas as pd
from run_paths import model_run_dir, run_cli


def test_rerun_with_save_images_adds_them_and_keeps_the_numbers(tmp_path, capsys) -> None:  # noqa: ANN001
    args = ("run", "--model", "telea", "--limit", "3", "--metrics", "psnr,l1", "--out", str(tmp_path))
    code, out = run_cli(capsys, *args)
    assert code == 0, out
    run = model_run_dir(tmp_path, "telea")
    assert not (run / "images").exists()
    before = pd.read_parquet(run / "per_image.parquet")
    code, out = run_cli(capsys, *args, "--save-images")
    assert code == 0, out
    assert model_run_dir(tmp_path, "telea") == run  # the same identity, the same directory
    assert len(list((run / "images").glob("*_pred.png"))) == 3
    after = pd.read_parquet(run / "per_image.parquet")
    pd.testing.assert_frame_equal(before.drop(columns=["seconds"]), after.drop(columns=["seconds"]))
    assert json.loads((run / "manifest.json").read_text())["identity_hash"]
