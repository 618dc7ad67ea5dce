"""End-to-end flows that must give a correct verdict or refuse: set-metric significance for every pair
of a multi-model command, export -> external fill -> score -> compare, runs that are not comparable,
and model outputs that break the Inpainter contract."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from run_paths import model_run_dir, run_cli

from inpaintbench.analysis.compare import compare_runs, render_comparison
from inpaintbench.analysis.leaderboard import leaderboard_table
from inpaintbench.analysis.load import load_run as load_analysis_run
from inpaintbench.errors import InputError
from inpaintbench.models.base import register_model
from inpaintbench.results import read_run_files as load_run

SET = ("fid", "kid", "p_ids", "u_ids")


def test_set_metrics_are_tested_for_every_pair_of_a_multi_model_run(capsys, tmp_path, fast_metric_weights_dir,
                                                                     isolated_home, no_network):
    out = tmp_path / "runs"
    code, text = run_cli(capsys, "run", "--model", "telea,ns,biharmonic", "--limit", "8", "--offline",
                       "--weights-dir", str(fast_metric_weights_dir), "--feature-extractor", "inception-stylegan2",
                       "--out", str(out))
    assert code == 0, text
    dirs = {m: model_run_dir(out, m) for m in ("telea", "ns", "biharmonic")}
    # The first model filled the reference cache; every directory still holds its own reals.
    reals = [np.load(d / "features" / "real.npy") for d in dirs.values()]
    assert all(np.array_equal(reals[0], r) for r in reals[1:])
    for a, b in (("telea", "ns"), ("ns", "telea"), ("ns", "biharmonic"), ("biharmonic", "telea")):
        c = compare_runs(dirs[a], dirs[b], set_n_boot=50, ids_n_boot=5)
        rows = c.table.set_index("metric")
        for m in SET:
            assert rows.loc[m, "verdict"] != "not tested", (a, b, m, rows.loc[m, "note"])
            assert rows.loc[m, "n"] == 8 and np.isfinite(rows.loc[m, "p"])
        csv = pd.read_csv(pd.io.common.StringIO(render_comparison(c, "csv")))
        assert not csv["verdict"].str.startswith("not tested").any()
    # The CLI paths too: compare and report name no "not tested" set metric.
    code, text = run_cli(capsys, "compare", str(dirs["ns"]), str(dirs["biharmonic"]), "--format", "csv")
    assert code == 0, text
    assert "no saved features" not in text
    code, text = run_cli(capsys, "report", str(out), "-o", str(tmp_path / "report.html"))
    assert code == 0, text
    assert "no saved features" not in (tmp_path / "report.html").read_text()


def _telea_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """What another tool would do: cv2's Telea on the masked image (radius 3, as inpaintbench's telea)."""
    shown = np.where(hole[..., None], 255, image).astype(np.uint8)
    return cv2.inpaint(shown, hole.astype(np.uint8) * 255, 3.0, cv2.INPAINT_TELEA)


def test_export_external_fill_score_compares_with_run(capsys, tmp_path):
    exported = tmp_path / "bench"
    code, text = run_cli(capsys, "export", "--out", str(exported), "--limit", "5", "--hole-value", "255")
    assert code == 0, text
    manifest = json.loads((exported / "export.json").read_text())
    assert manifest["n"] == 5 and len(list((exported / "images").glob("*.png"))) == 5
    pred = tmp_path / "pred"
    pred.mkdir()
    for rec in manifest["samples"]:
        image = np.asarray(Image.open(exported / "images" / f"{rec['stem']}.png"))
        hole = np.asarray(Image.open(exported / "masks" / f"{rec['stem']}.png")) == 255
        Image.fromarray(_telea_fill(image, hole)).save(pred / f"{rec['stem']}.png")
    code, text = run_cli(capsys, "score", "--pred", str(pred), "--gt", str(exported / "images"), "--masks",
                       str(exported / "masks"), "--hole-value", "255", "--name", "external-telea",
                       "--metrics", "psnr,ssim,l1", "--out", str(tmp_path / "scored"))
    assert code == 0, text
    code, text = run_cli(capsys, "run", "--model", "telea", "--limit", "5", "--metrics", "psnr,ssim,l1",
                       "--out", str(tmp_path / "runs"))
    assert code == 0, text
    ran = model_run_dir(tmp_path / "runs", "telea")
    scored_manifest, scored_rows, _ = load_run(tmp_path / "scored")
    run_manifest, run_rows, _ = load_run(ran)
    assert scored_manifest["comparison"] == run_manifest["comparison"]
    assert sorted(scored_rows["sample_id"]) == sorted(run_rows["sample_id"])
    c = compare_runs(tmp_path / "scored", ran)
    assert c.n_shared == 5 and c.n_only_a == 0 and c.n_only_b == 0 and not c.mixed
    rows = c.table.set_index("metric")
    assert (rows["n"] == 5).all()
    # The same fill of the same pixels: identical per-image values, so no difference can be called.
    a = scored_rows.set_index("sample_id").sort_index()
    b = run_rows.set_index("sample_id").sort_index()
    np.testing.assert_array_equal(a["psnr"].to_numpy(), b["psnr"].to_numpy())
    assert (rows["diff"] == 0).all()

    # Edited exported files are refused: they would claim the export's comparability.
    edited = exported / "images" / f"{manifest['samples'][0]['stem']}.png"
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(edited)
    code, text = run_cli(capsys, "score", "--pred", str(pred), "--gt", str(exported / "images"), "--masks",
                       str(exported / "masks"), "--hole-value", "255", "--out", str(tmp_path / "scored2"))
    assert code == 1 and "sha256 mismatch" in text


def test_resize_policies_are_never_ranked_together(capsys, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (300, 340, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    common = ["run", "--model", "telea", "--data", f"folder:{folder}", "--metrics", "psnr,l1"]
    for policy in ("center-crop", "resize"):
        code, text = run_cli(capsys, *common, "--resize-policy", policy, "--out", str(tmp_path / policy))
        assert code == 0, text
    crop, resized = model_run_dir(tmp_path / "center-crop", "telea"), model_run_dir(tmp_path / "resize", "telea")
    with pytest.raises(InputError, match="not scored on the same samples"):
        leaderboard_table([crop, resized])
    with pytest.raises(InputError, match="not scored on the same samples"):
        compare_runs(crop, resized)
    df = leaderboard_table([crop, resized], allow_mixed=True)
    assert df["group"].nunique() == 2 and df.attrs["mixed"]


def test_lpips_vgg_never_shares_the_lpips_column(capsys, tmp_path, random_weights_dir_vgg):
    base = ["run", "--model", "telea", "--limit", "3", "--offline", "--metrics", "psnr,lpips"]
    code, text = run_cli(capsys, *base, "--weights-dir", str(random_weights_dir_vgg), "--out", str(tmp_path / "alex"))
    assert code == 0, text
    code, text = run_cli(capsys, *base, "--weights-dir", str(random_weights_dir_vgg), "--lpips-net", "vgg",
                       "--out", str(tmp_path / "vgg"))
    assert code == 0, text
    alex = load_analysis_run(model_run_dir(tmp_path / "alex", "telea"))
    vgg = load_analysis_run(model_run_dir(tmp_path / "vgg", "telea"))
    assert "lpips" in alex.rows and "lpips_vgg" not in alex.rows
    assert "lpips_vgg" in vgg.rows and "lpips" not in vgg.rows
    df = leaderboard_table([alex, vgg])
    by_run = df.set_index("run_id")
    assert np.isnan(by_run.loc[vgg.run_id, "lpips"]) and np.isnan(by_run.loc[alex.run_id, "lpips_vgg"])
    assert not df["lpips_best"].any() and not df["lpips_vgg_best"].any()
    c = compare_runs(alex, vgg)
    assert "lpips" not in set(c.table["metric"]) and "lpips_vgg" not in set(c.table["metric"])


class _ContractBreaker:
    """Returns a plausible picture in the wrong form: uint8, or floats in [-1, 1]."""

    def __init__(self, mode: str):
        self.mode = mode

    def describe(self) -> dict:
        return {"name": f"breaker-{self.mode}"}

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids=None) -> np.ndarray:
        if self.mode == "uint8":
            return images.copy()
        return images.astype(np.float32) / 127.5 - 1.0


@pytest.mark.parametrize("mode,reason", [("uint8", "is uint8, expected floating point"),
                                         ("minus1to1", "outside [0, 1]")])
def test_outputs_that_break_the_contract_fail_their_rows(capsys, tmp_path, mode, reason):
    register_model(f"breaker-{mode}", lambda mode=mode: _ContractBreaker(mode), "test model", overwrite=True)
    code, text = run_cli(capsys, "run", "--model", f"breaker-{mode}", "--limit", "3", "--metrics", "psnr",
                       "--out", str(tmp_path))
    assert code == 0, text
    _, rows, summary = load_run(model_run_dir(tmp_path, f"breaker-{mode}"))
    assert (rows["status"] == "failed").all() and rows["error"].str.contains(reason, regex=False).all()
    assert summary["n_failed"] == 3 and "3 sample(s) failed" in text


def test_a_set_metric_that_cannot_be_computed_is_unavailable_and_the_run_finishes(
        capsys, tmp_path, fast_metric_weights_dir, isolated_home):
    code, text = run_cli(capsys, "run", "--model", "telea", "--limit", "2", "--offline", "--weights-dir",
                       str(fast_metric_weights_dir), "--feature-extractor", "inception-stylegan2",
                       "--metrics", "psnr,fid,fid_inf", "--out", str(tmp_path))
    assert code == 0, text
    _, _, summary = load_run(model_run_dir(tmp_path, "telea"))
    assert summary["set_metrics"]["fid"]["status"] == "ok"
    entry = summary["set_metrics"]["fid_inf"]
    assert entry["status"] == "unavailable" and entry["reason"].startswith("unavailable:")


def test_metric_typo_is_refused_before_anything_is_built(capsys, tmp_path, monkeypatch):
    import inpaintbench.masks as masks

    def boom(*args, **kwargs):
        raise AssertionError("the mask set was built before the metric names were checked")

    monkeypatch.setattr(masks, "resolve_mask_set", boom)
    code, text = run_cli(capsys, "run", "--metrics", "psnr,fdi", "--out", str(tmp_path))
    assert code == 1 and "unknown metric 'fdi'" in text and "fid" in text


def test_plain_mask_folder_is_refused_with_the_import_command(capsys, tmp_path):
    folder = tmp_path / "mymasks"
    folder.mkdir()
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(folder / "a.png")
    code, text = run_cli(capsys, "run", "--masks", f"folder:{folder}", "--limit", "1", "--out", str(tmp_path / "o"))
    assert code == 1 and "masks import" in text and "--hole-value" in text


def test_score_on_a_finished_directory_prints_its_path(capsys, tmp_path):
    exported = tmp_path / "bench"
    assert run_cli(capsys, "export", "--out", str(exported), "--limit", "2")[0] == 0
    args = ["score", "--pred", str(exported / "images"), "--gt", str(exported / "images"), "--masks",
            str(exported / "masks"), "--hole-value", "255", "--metrics", "psnr", "--out", "scored"]
    monkey_cwd = Path.cwd()
    try:
        import os

        os.chdir(tmp_path)
        assert run_cli(capsys, *args)[0] == 0
        code, text = run_cli(capsys, *args)
    finally:
        os.chdir(monkey_cwd)
    assert code == 0 and "Results: scored" in text and "Results: ." not in text


def test_unavailable_set_metrics_say_why_they_were_not_tested(capsys, tmp_path, isolated_home):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text = run_cli(capsys, "run", "--model", "telea,ns", "--limit", "3", "--offline", "--weights-dir", str(empty),
                       "--metrics", "psnr,fid,kid", "--out", str(tmp_path / "runs"))
    assert code == 0, text
    c = compare_runs(model_run_dir(tmp_path / "runs", "telea"), model_run_dir(tmp_path / "runs", "ns"))
    rows = c.table.set_index("metric")
    for m in ("fid", "kid"):
        assert rows.loc[m, "verdict"] == "not tested"
        assert "unavailable in telea and ns" in rows.loc[m, "note"] and "features" not in rows.loc[m, "note"]
    csv = render_comparison(c, "csv")
    assert csv.count("not tested") >= 2 and "no detectable" not in csv.split("fid", 1)[1].splitlines()[0]


def test_score_accepts_unverified_weights_only_when_asked(capsys, tmp_path, random_weights_dir, isolated_home):
    import dataclasses

    from inpaintbench import weights as W

    exported = tmp_path / "bench"
    assert run_cli(capsys, "export", "--out", str(exported), "--limit", "2")[0] == 0
    spec = W.get_weight_spec("torchvision-alexnet")
    W.register_weights(dataclasses.replace(spec, sha256="0" * 64), replace=True)  # the file no longer matches
    try:
        args = ["score", "--pred", str(exported / "images"), "--gt", str(exported / "images"), "--masks",
                str(exported / "masks"), "--hole-value", "255", "--metrics", "psnr,lpips", "--offline",
                "--weights-dir", str(random_weights_dir)]
        assert run_cli(capsys, *args, "--out", str(tmp_path / "a"))[0] == 0
        _, rows, summary = load_run(tmp_path / "a")
        assert "lpips" not in rows and "sha256" in summary["unavailable"]["lpips"]
        code, text = run_cli(capsys, *args, "--allow-unverified-weights", "--out", str(tmp_path / "b"))
        assert code == 0, text
        manifest, rows, _ = load_run(tmp_path / "b")
        assert rows["lpips"].notna().all()
        assert "unverified" in json.dumps(manifest["metrics"]["lpips"])
    finally:
        W.register_weights(spec, replace=True)
