"""Figures: each one is produced, non-empty, of the expected size and not uniform."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from analysis_fixture import ground_truth_image, write_run
from PIL import Image

from inpaintbench.analysis.load import load_runs
from inpaintbench.analysis.plots import (
    OKABE_ITO,
    plot_bins,
    plot_correlation_heatmap,
    plot_correlations,
    plot_grid,
    plot_training,
    poly_fit_band,
    read_training_log,
    save_figure,
    select_samples,
)
from inpaintbench.errors import InputError


def gt(run, image_id: str) -> np.ndarray:
    return ground_truth_image(image_id)


def check_png(path: Path, min_w: int = 300, min_h: int = 200) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as im:
        assert im.format == "PNG"
        arr = np.asarray(im.convert("RGB"), dtype=np.float64)
    h, w, _ = arr.shape
    assert w >= min_w and h >= min_h
    assert arr.std() > 10, "figure is (almost) uniform"
    return arr


def check_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg") and path.stat().st_size > 5_000


@pytest.fixture
def runs(tmp_path: Path):
    paths = [
        write_run(tmp_path, "a", model="baseline", noise_seed=1, save_images=True, perfect=(4,)),
        write_run(tmp_path, "b", model="finetuned", noise_seed=2, effect=0.5, save_images=True),
    ]
    return load_runs(paths)


def test_bins_figure_png_and_svg(runs, tmp_path: Path) -> None:
    fig = plot_bins(runs)
    written = save_figure(fig, tmp_path / "out" / "bins.png", also=("svg",))
    assert [p.suffix for p in written] == [".png", ".svg"]
    arr = check_png(written[0], 900, 500)
    check_svg(written[1])
    # Okabe-Ito blue and vermillion lines are actually drawn.
    for hex_color in OKABE_ITO[:2]:
        rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(arr - rgb).sum(axis=2) < 30).sum() > 50, hex_color


def test_correlation_figures(runs, tmp_path: Path) -> None:
    fig = plot_correlations(runs)
    (p,) = save_figure(fig, tmp_path / "scatter.png")
    check_png(p, 900, 900)
    assert "non-finite" in fig._suptitle.get_text()  # the +inf PSNR sample is left out and said so
    import pandas as pd

    m = pd.DataFrame(np.array([[1, 0.5], [0.5, 1]]), index=["psnr", "lpips"], columns=["psnr", "lpips"])
    (p,) = save_figure(plot_correlation_heatmap({"a": m, "b": m}), tmp_path / "heat.png")
    check_png(p, 300, 150)


def test_grid_automatic_and_chosen(runs, tmp_path: Path) -> None:
    fig, notes = plot_grid(runs, n_auto=2, ground_truth=gt)
    assert notes == []
    (p,) = save_figure(fig, tmp_path / "grid.png")
    arr = check_png(p, 500, 600)
    assert arr.shape[0] > arr.shape[1]  # 4 rows x 4 columns of cells plus labels
    fig, _ = plot_grid(runs, sample_ids=["img001|mask001"], ground_truth=gt)
    assert len(fig.axes) == 4  # ground truth, input, two models
    assert [ax.get_title() for ax in fig.axes] == ["ground truth", "masked input", "baseline", "finetuned"]


def test_grid_without_ground_truth_still_draws(runs) -> None:
    fig, notes = plot_grid(runs, sample_ids=["img001|mask001"], ground_truth=lambda r, i: None)
    assert len(fig.axes) == 3 and "ground truth not shown" in notes[0]


def test_select_samples_most_and_least(runs) -> None:
    most, least, metric = select_samples(runs, "psnr", n=3)
    assert metric == "psnr" and len(most) == 3 and len(least) == 3 and not set(most) & set(least)
    a = runs[0].rows.set_index("sample_id")["psnr"]
    b = runs[1].rows.set_index("sample_id")["psnr"]
    spread = (a - b).abs()
    spread = spread[np.isfinite(spread)]
    assert set(most) == set(spread.nlargest(3).index)
    assert set(least) == set(spread.nsmallest(3).index)


def test_grid_errors(tmp_path: Path) -> None:
    runs = load_runs([write_run(tmp_path, "a"), write_run(tmp_path, "b", noise_seed=2)])
    with pytest.raises(InputError, match="no saved images") as exc:
        plot_grid(runs)
    assert "--save-images" in (exc.value.fix or "")
    runs = load_runs([write_run(tmp_path, "c", save_images=True)])
    with pytest.raises(InputError, match="not in"):
        plot_grid(runs, sample_ids=["nope"])


def _write_log(path: Path) -> Path:
    lines = []
    for tick in range(6):
        rec = {
            "kimg": tick * 4.0,
            "tick": tick,
            "val": {"psnr": 20 + tick, "ssim": 0.6 + 0.02 * tick, "lpips": 0.3 - 0.02 * tick, "fid": None},
            "loss": {"G": 2.0 - 0.1 * tick, "D": 0.5},
            "note": "text is ignored",
        }
        lines.append(json.dumps(rec))
    lines.insert(3, "")
    lines.append('{"kimg": 24.0, "val": {"psnr": 2')  # a line cut off by a crash
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def test_training_log_reader_is_tolerant(tmp_path: Path) -> None:
    df = read_training_log(_write_log(tmp_path / "run1" / "metrics.jsonl"))
    assert len(df) == 6 and df.attrs["skipped"] == 1
    assert {"kimg", "tick", "val.psnr", "val.ssim", "val.lpips", "loss.G", "loss.D"} <= set(df.columns)
    assert "val.fid" not in df.columns and "note" not in df.columns
    with pytest.raises(InputError, match="does not exist"):
        read_training_log(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text("garbage\n[1, 2]\n")
    with pytest.raises(InputError, match="no numeric records"):
        read_training_log(tmp_path / "bad.jsonl")


def test_training_figure(tmp_path: Path) -> None:
    a = _write_log(tmp_path / "baseline" / "metrics.jsonl")
    b = _write_log(tmp_path / "finetune" / "metrics.jsonl")
    fig = plot_training([a, b.parent])  # a folder holding metrics.jsonl works too
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[:3] == [
        "val PSNR ↑ (higher is better)",
        "val SSIM ↑ (higher is better)",
        "val LPIPS ↓ (lower is better)",
    ]
    assert fig.axes[0].get_xlabel() == "kimg"
    (p,) = save_figure(fig, tmp_path / "train.svg")
    check_svg(p)
    (p,) = save_figure(fig, tmp_path / "train.png")
    check_png(p, 900, 400)
    # by default only the validation metrics: no loss or bookkeeping panels
    assert all(t.startswith("val ") for t in titles), titles
    fig = plot_training([a], keys=["val.psnr"])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    fig = plot_training([a], keys=["loss.*", "val.psnr"])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [
        "loss.D", "loss.G", "val PSNR ↑ (higher is better)"]
    with pytest.raises(InputError, match="not in the training log"):
        plot_training([a], keys=["val.nope"])


def test_bad_figure_extension(runs, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write a figure"):
        save_figure(plot_bins(runs), tmp_path / "fig.jpg")


def test_poly_fit_band_contains_true_curve() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 400)
    y = 1 + 2 * x - 3 * x**2 + rng.normal(0, 0.1, x.size)
    gx, fit, lo, hi = poly_fit_band(x, y)
    truth = 1 + 2 * gx - 3 * gx**2
    assert np.mean((lo <= truth) & (truth <= hi)) > 0.9
    assert np.all(lo <= fit) and np.all(fit <= hi)
    assert poly_fit_band(np.ones(5), np.arange(5.0)) is None
