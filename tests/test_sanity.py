"""`sanity`: degradations touch only the holes, are deterministic and damage more with severity;
the command runs end to end on the embedded samples in every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from run_paths import run_cli

from inpaintbench.analysis.sanity import DEGRADATIONS, SEVERITIES, degrade

IMAGES = st.tuples(st.integers(8, 40), st.integers(8, 40), st.integers(0, 2**31 - 1))


def _case(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w, seed = shape
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    hole = rng.random((h, w)) < rng.uniform(0.1, 0.9)
    hole[0, 0], hole[-1, -1] = True, False  # some hole, some context
    return gt, hole


@settings(max_examples=25, deadline=None)
@given(IMAGES, st.sampled_from(DEGRADATIONS), st.sampled_from(SEVERITIES), st.integers(0, 5))
def test_degradations_change_only_hole_pixels_and_are_deterministic(shape, name, severity, seed) -> None:
    gt, hole = _case(shape)
    out = degrade(name, gt, hole, severity, seed=seed, key="img|mask")
    assert out.dtype == np.uint8 and out.shape == gt.shape
    np.testing.assert_array_equal(out[~hole], gt[~hole])
    np.testing.assert_array_equal(out, degrade(name, gt, hole, severity, seed=seed, key="img|mask"))
    np.testing.assert_array_equal(degrade(name, gt, hole, 0, seed=seed, key="img|mask"), gt)  # severity 0: identity


@settings(max_examples=25, deadline=None)
@given(IMAGES, st.sampled_from(("noise", "colour", "mean")), st.integers(0, 5))
def test_pointwise_damage_is_monotone_in_severity(shape, name, seed) -> None:
    """Same draw, growing scale: |degraded − gt| never shrinks at any pixel (module docstring)."""
    gt, hole = _case(shape)
    damage = [np.abs(degrade(name, gt, hole, s, seed=seed, key="k").astype(int) - gt) for s in (0, *SEVERITIES)]
    for lo, hi in zip(damage, damage[1:], strict=False):
        assert (hi >= lo).all()


def test_every_degradation_damages_more_with_severity_on_the_samples() -> None:
    """Blur, shuffle and copy are monotone on average over natural images: mean |error| in the holes
    of the embedded photographs (with the default mask set) grows strictly with severity."""
    from inpaintbench.datasets import load_dataset
    from inpaintbench.masks import resolve_mask_set

    data = load_dataset("samples")
    masks = resolve_mask_set("mat-large-256")
    for name in DEGRADATIONS:
        mae = np.zeros(len(SEVERITIES) + 1)
        for i in range(6):
            gt, hole = data[i][1], masks.get(i)
            for s in (0, *SEVERITIES):
                mae[s] += np.abs(degrade(name, gt, hole, s, key=str(i)).astype(float) - gt)[hole].mean()
        assert mae[0] == 0 and (np.diff(mae) > 0).all(), (name, mae)


@pytest.mark.slow
def test_sanity_command_end_to_end_all_formats(capsys, tmp_path: Path, fast_metric_weights_dir, isolated_home,
                                               no_network) -> None:
    base = ["sanity", "samples", "--limit", "4", "--offline", "--weights-dir", str(fast_metric_weights_dir),
            "--feature-extractor", "inception-stylegan2", "--metrics", "psnr,l1_hole,lpips,fid",
            "--degradations", "noise,mean", "--n-boot", "200", "--set-boot", "20", "--ids-boot", "0",
            "--runs-dir", str(tmp_path / "sets")]
    code, out = run_cli(capsys, *base, "--plot", str(tmp_path / "s.png"))
    assert code == 0, out
    assert "Metric sanity checks" in out and "LPIPS" in out and "FID" in out
    assert (tmp_path / "s.png").stat().st_size > 5000
    assert len(list((tmp_path / "sets").glob("noise-s*-*"))) == 4  # one scored run directory per severity
    for ext in ("md", "csv", "html"):
        code, out = run_cli(capsys, *base, "-o", str(tmp_path / f"s.{ext}"))  # reuses the scored sets
        assert code == 0, out
    import pandas as pd

    table = pd.read_csv(tmp_path / "s.csv")
    assert set(table["metric"]) == {"psnr", "l1_hole", "lpips", "fid"}
    assert set(table["degradation"]) == {"noise", "mean"}
    # Pixel metrics follow added noise and the blend to the mean strictly, on every image.
    pix = table[table["metric"].isin(["psnr", "l1_hole"])]
    assert (pix["rho"] == 1).all() and (pix["kept"] == 1).all()
    assert "Detected at" in (tmp_path / "s.md").read_text() and "<table" in (tmp_path / "s.html").read_text()
    code, out = run_cli(capsys, *base, "--degradations", "smear")
    assert code == 1 and "unknown degradation" in out
    assert no_network == []
