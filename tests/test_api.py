"""The Python API (inpaintbench.evaluate / score / load / Results / from_callable / metrics): the same
numbers and run directories as the CLI, nothing left behind without out=, in-memory model identity."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from run_paths import model_run_dir, run_cli

import inpaintbench as ib
from inpaintbench.errors import InputError

QUICK = {"limit": 6, "metrics": "psnr,ssim,l1,psnr_hole,l1_hole", "device": "cpu", "batch_size": 3}


def _evaluate(model, **kw):  # noqa: ANN001, ANN202
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ib.evaluate(model, **{**QUICK, **kw})


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


# ------------------------------------------------------------------------------------------ evaluate


def test_import_is_cheap_and_names_are_public() -> None:
    import subprocess
    import sys

    code = ("import sys, inpaintbench, inpaintbench.models, inpaintbench.metrics; "
            "print(sorted(m for m in ('torch', 'datasets', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(ib.__all__) >= {"evaluate", "score", "load", "Results", "from_callable"}
    assert ib.models.from_callable is ib.from_callable
    assert ib.metrics.__all__ == ["cmmd", "fid", "frechet_distance", "ids", "inception_features", "kid", "l1", "lpips",
                                  "prdc", "psnr", "ssim"]


def test_evaluate_without_out_leaves_nothing_and_equals_the_cli(tmp_path, monkeypatch, capsys, isolated_home):  # noqa: ANN001, ANN201
    """What "nothing left behind" means here: after the shared caches exist (the standard mask set,
    built on first use, exactly as the CLI builds it), evaluate(out=None) creates no file or directory
    in the working directory, under $INPAINTBENCH_HOME or in the temporary directory."""
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    _evaluate("telea")  # warms the mask-set cache
    before = (_files(work), _files(isolated_home), _files(tmp))
    r = _evaluate("ns")
    assert (_files(work), _files(isolated_home), _files(tmp)) == before == (set(), before[1], set())
    assert r.path is None and isinstance(r, ib.Results) and "in memory" in repr(r)

    code, text = run_cli(capsys, "run", "--model", "ns", "--limit", "6", "--metrics", QUICK["metrics"],
                         "--device", "cpu", "--batch-size", "3", "--out", str(tmp_path / "cli"))
    assert code == 0, text
    cli = ib.load(model_run_dir(tmp_path / "cli", "ns"))
    pd.testing.assert_frame_equal(r.per_image.drop(columns="seconds"), cli.per_image.drop(columns="seconds"))
    pd.testing.assert_frame_equal(r.summary, cli.summary)
    assert r.run_id == cli.run_id  # the same identity as the CLI's run


def test_evaluate_with_out_is_the_cli_run_directory_and_resumes(tmp_path, capsys) -> None:  # noqa: ANN001
    root = tmp_path / "runs"
    code, text = run_cli(capsys, "run", "--model", "telea", "--limit", "6", "--metrics", QUICK["metrics"],
                         "--device", "cpu", "--batch-size", "3", "--out", str(root))
    assert code == 0, text
    run_dir = model_run_dir(root, "telea")
    stamp = (run_dir / "per_image.parquet").stat().st_mtime_ns
    r = _evaluate("telea", out=root)
    assert r.path == run_dir and (run_dir / "per_image.parquet").stat().st_mtime_ns == stamp  # reused, not redone
    assert sorted(p.name for p in root.iterdir()) == [run_dir.name]
    fresh = _evaluate("ns", out=root)  # and a new one is written where the CLI would write it
    assert fresh.path == model_run_dir(root, "ns") and fresh.manifest["command"][1] == "inpaintbench.evaluate"


def test_lambda_model_numbers_are_the_harness_contract(tmp_path) -> None:  # noqa: ANN001
    """A constant 0.5 fill: the harness quantises it to 128 (round half to even of 127.5) inside the
    hole and keeps the ground truth outside; PSNR restated in float64 from the dataset and mask set."""
    from inpaintbench.datasets import load_dataset
    from inpaintbench.masks import resolve_mask_set

    r = _evaluate(lambda images, holes: np.full(images.shape, 0.5, np.float32), metrics="psnr,l1_hole")
    assert r.manifest["model"]["in_memory"] is True and r.manifest["model"]["callable"].endswith("<lambda>")
    assert r.in_memory_model and r.name == "lambda"
    ds, ms = load_dataset("samples"), resolve_mask_set("mat-large-256")
    for i, row in r.per_image.iterrows():
        gt = ds[i][1].astype(np.float64)
        hole = ms.get(i)
        pred = np.where(hole[..., None], 128.0, gt)
        mse = np.mean((pred - gt) ** 2)
        assert row["psnr"] == pytest.approx(min(100.0, 20 * np.log10(255 / np.sqrt(mse))), rel=1e-12)
        assert row["l1_hole"] == pytest.approx(np.abs(128.0 - gt[hole]).mean() / 255, rel=1e-12)


def test_in_memory_models_never_silently_share_a_run_directory(tmp_path) -> None:  # noqa: ANN001
    def constant(c: float):  # noqa: ANN202 - same code, different closure: same fingerprint
        return lambda images, holes: np.full(images.shape, c, np.float32)

    root = tmp_path / "runs"
    with pytest.raises(InputError, match="needs name="):
        _evaluate(constant(0.5), out=root)
    first = _evaluate(constant(0.5), out=root, name="flat")
    assert first.path.parent == root and first.path.name.startswith("flat-")
    with pytest.raises(InputError, match="cannot verify that it is the same model"):
        _evaluate(constant(0.2), out=root, name="flat")
    reused = _evaluate(constant(0.2), out=root, name="flat", resume=True)  # the caller vouches for it
    pd.testing.assert_frame_equal(reused.per_image, first.per_image)
    redone = _evaluate(constant(0.2), out=root, name="flat", overwrite=True)
    assert redone.path == first.path and not np.allclose(redone.per_image["psnr"], first.per_image["psnr"])
    # Different code: a different identity, so a different directory (nothing is reused).
    other = _evaluate(lambda images, holes: np.zeros(images.shape, np.float32) + 0.2, out=root, name="flat")
    assert other.path != first.path
    assert other.manifest["model"]["code_sha256"] != first.manifest["model"]["code_sha256"]


def test_from_callable_conventions_nchw_range_mask_channels_device() -> None:
    import torch

    seen = {}

    class Recorder(torch.nn.Module):
        """Records what it is given; fills with pure blue in its own (BGR, [-1, 1]) convention."""

        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.train()

        def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            seen.update(x=x.clone(), m=m.clone(), training=self.training, grad=torch.is_grad_enabled())
            blue_bgr = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)  # B=+1, G=R=-1
            return blue_bgr.expand_as(x) * self.scale

    net = Recorder()
    adapter = ib.from_callable(net, layout="NCHW", value_range=(-1, 1), mask="known", channels="BGR")
    images = np.zeros((2, 4, 5, 3), np.uint8)
    images[..., 0] = 255  # red in RGB
    holes = np.zeros((2, 4, 5), bool)
    holes[:, 1:3, 1:3] = True
    out = adapter.inpaint(images, holes)
    assert seen["x"].shape == (2, 3, 4, 5) and seen["x"].dtype == torch.float32 and seen["x"].device.type == "cpu"
    assert torch.equal(seen["x"][:, 2], torch.ones(2, 4, 5)) and torch.equal(seen["x"][:, 0], -torch.ones(2, 4, 5))
    assert seen["m"].shape == (2, 1, 4, 5) and torch.equal(seen["m"][:, 0], torch.from_numpy(~holes).float())
    assert seen["training"] is False and seen["grad"] is False and net.training  # eval inside, restored after
    np.testing.assert_array_equal(out, np.broadcast_to(np.array([0, 0, 1], np.float32), out.shape))  # blue, RGB, [0,1]
    assert adapter.device == "cpu" and ib.from_callable(net, layout="NCHW", device="meta").device == "meta"
    d = adapter.describe()
    assert d["in_memory"] and d["state_sha256"] and d["mask"] == "1 = known pixel" and d["channels"] == "BGR"
    with torch.no_grad():
        net.scale.mul_(2)
    assert adapter.describe()["state_sha256"] != d["state_sha256"]  # weights are part of a module's identity

    with pytest.raises(InputError, match="conventions stated"):
        _evaluate(net)
    with pytest.raises(InputError, match="mask polarity"):
        ib.from_callable(net, mask="white")


def test_wrong_value_range_fails_samples_instead_of_scoring_them() -> None:
    # A [-1, 1] model declared as (0, 1): its outputs leave [0, 1] and every sample fails with the reason.
    adapter = ib.from_callable(lambda x, m: x * 2 - 1, value_range=(0, 1), name="wrong-range")
    r = _evaluate(adapter, metrics="psnr")
    rows = r.per_image
    assert (rows["status"] == "failed").all() and rows["error"].str.contains("outside").all()


# ------------------------------------------------------------------------------------------ score


def _random_arrays(n: int = 5, size: int = 32, seed: int = 0):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-40, 41, gt.shape), 0, 255).astype(np.uint8)
    holes = np.zeros((n, size, size), bool)
    for i in range(n):
        y, x = rng.integers(2, size // 2, 2)
        holes[i, y:y + 10, x:x + 12] = True
    return pred, gt, holes


def test_score_arrays_equals_the_cli_on_the_same_files(tmp_path, capsys) -> None:  # noqa: ANN001
    pred, gt, holes = _random_arrays()
    metrics = "psnr,ssim,l1,psnr_hole,l1_hole"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ib.score(pred, gt, holes, hole_value=True, metrics=metrics, device="cpu", name="noisy")
    # The same arrays as PNG files, written here (MAT's polarity: 0 = hole), scored by the CLI.
    for i in range(len(gt)):
        for folder, arr in (("pred", pred[i]), ("gt", gt[i]), ("masks", np.where(holes[i], 0, 255).astype(np.uint8))):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(arr).save(tmp_path / folder / f"{i:06d}.png")
    code, text = run_cli(capsys, "score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--masks",
                         str(tmp_path / "masks"), "--hole-value", "0", "--metrics", metrics, "--device", "cpu",
                         "--name", "noisy", "--out", str(tmp_path / "cli"))
    assert code == 0, text
    cli = ib.load(tmp_path / "cli")
    cols = ["sample_id", "image_sha256", "hole_sha256", "hole_ratio", "status", *metrics.split(",")]
    pd.testing.assert_frame_equal(r.per_image[cols], cli.per_image[cols])  # exactly equal, per image
    pd.testing.assert_frame_equal(r.summary, cli.summary)
    assert r.manifest["comparison"]["samples_digest"] == cli.manifest["comparison"]["samples_digest"]
    # Folders through the API give the same again; bad polarity arguments are refused.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = ib.score(tmp_path / "pred", tmp_path / "gt", tmp_path / "masks", hole_value=0, metrics=metrics)
    pd.testing.assert_frame_equal(f.per_image[cols], cli.per_image[cols])
    with pytest.raises(InputError, match="bool masks need hole_value"):
        ib.score(pred, gt, holes, hole_value=255)
    with pytest.raises(InputError, match="only 0 and 255"):
        ib.score(pred, gt, holes.astype(np.uint8), hole_value=1)

    # The functional metrics are the suite's numbers.
    for name in ("psnr", "ssim", "l1"):
        np.testing.assert_array_equal(getattr(ib.metrics, name)(pred, gt), cli.per_image[name].to_numpy())
    assert ib.metrics.psnr(pred[0], gt[0]) == cli.per_image["psnr"].iloc[0]


def test_functional_deep_metrics_match_a_scored_run(fast_metric_weights_dir) -> None:  # noqa: ANN001
    pred, gt, holes = _random_arrays(n=6, size=64, seed=3)
    kw = {"weights_dir": fast_metric_weights_dir, "offline": True, "device": "cpu"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ib.score(pred, gt, holes, hole_value=True, metrics="lpips,fid,kid,p_ids,u_ids",
                     feature_extractor="inception-stylegan2", **kw)
        lp = ib.metrics.lpips(pred, gt, **kw)
        fake = ib.metrics.inception_features(pred, "inception-stylegan2", **kw)
        real = ib.metrics.inception_features(gt, "inception-stylegan2", **kw)
    np.testing.assert_allclose(lp, r.per_image["lpips"].to_numpy(), rtol=0, atol=0)
    f_run, r_run = r.run.load_features()
    np.testing.assert_array_equal(fake, f_run.astype(np.float32))
    np.testing.assert_array_equal(real, r_run.astype(np.float32))
    sm = r.set_metrics
    assert ib.metrics.fid(real, fake) == pytest.approx(sm.loc["fid", "value"], rel=1e-12)
    assert ib.metrics.kid(real, fake)[0] == pytest.approx(sm.loc["kid", "value"], rel=1e-12)
    assert ib.metrics.ids(real, fake) == pytest.approx((sm.loc["p_ids", "value"], sm.loc["u_ids", "value"]))
    assert np.isfinite(sm.loc["fid", ["ci_low", "ci_high"]].astype(float)).all() and sm.loc["fid", "n"] == 6


# ------------------------------------------------------------------------------------------ Results


@pytest.mark.slow
def test_results_compare_leaderboard_save_and_repr_equal_the_cli(tmp_path, capsys, fast_metric_weights_dir):  # noqa: ANN001, ANN201
    kw = {"metrics": "psnr,l1,fid", "feature_extractor": "inception-stylegan2", "weights_dir": fast_metric_weights_dir,
          "offline": True, "limit": 8}
    a, b = _evaluate("telea", **kw), _evaluate(lambda im, h: np.full(im.shape, 0.5, np.float32), name="flat", **kw)
    da, db = a.save(tmp_path / "a"), b.save(tmp_path / "b")
    with pytest.raises(InputError, match="not empty"):
        a.save(da)
    pd.testing.assert_frame_equal(ib.load(da).per_image, a.per_image)

    table = a.compare(b)
    code, text = run_cli(capsys, "compare", str(da), str(db), "--format", "csv", "-o", str(tmp_path / "c.csv"))
    assert code == 0, text
    cli = pd.read_csv(tmp_path / "c.csv")
    assert list(cli["metric"]) == list(table["metric"]) == ["psnr", "l1", "fid", "kid"]  # KID: features saved
    for col in ("n", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p", "p_holm"):
        np.testing.assert_allclose(table[col].to_numpy(float), cli[col].to_numpy(float), rtol=1e-9)  # %.10g in csv
    assert list(table["verdict"]) == list(cli["verdict"])
    assert table.attrs["verdicts"] and table.loc[2, "note"].startswith("200 resamples")  # FID from in-memory features

    board = a.leaderboard(b)
    code, text = run_cli(capsys, "leaderboard", str(da), str(db), "--format", "csv", "-o", str(tmp_path / "l.csv"))
    assert code == 0, text
    lcli = pd.read_csv(tmp_path / "l.csv")
    for m in ("psnr", "l1", "fid"):
        np.testing.assert_allclose(board[m].to_numpy(float), lcli[m].to_numpy(float), rtol=1e-9)
        np.testing.assert_allclose(board[f"{m}_ci_low"].to_numpy(float), lcli[f"{m}_ci_low"].to_numpy(float), rtol=1e-9)

    html = a._repr_html_()
    ci = a.summary.loc["psnr"]
    assert "<table" in html and "telea" in html and f"{ci['ci_low']:.2f}" in html and "in memory" in html
    assert a.set_metrics.loc["fid", "status"] == "ok"
    assert a.plot_bins(b).axes and a.plot_correlations(b)._repr_png_().startswith(b"\x89PNG")
    saved = json.loads((da / "manifest.json").read_text())
    assert saved["model"]["name"] == "telea" and json.loads((db / "manifest.json").read_text())["model"]["in_memory"]


def test_progress_is_silent_off_terminal_and_renders_for_notebooks(capsys) -> None:  # noqa: ANN001
    from inpaintbench.api_progress import NotebookProgress, api_progress

    with api_progress(None) as bar:  # pytest's captured stderr is not a terminal
        assert bar is None
    _evaluate("telea", limit=3, metrics="psnr")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # no banner, no bar
    nb = NotebookProgress()
    nb._show = lambda force=False: None  # no IPython here: check what would be displayed
    task = nb.add_task("telea", total=8)
    nb.advance(task, 3)
    text, html = nb.render()
    assert "telea" in text and "3/8" in text and "<pre" in html and "3/8" in html
