"""Correlations between per-image metrics (known values) and agreement between metric rankings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_fixture import golden_set, metric_values, write_run
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from test_analysis_leaderboard import check_golden

from inpaintbench.analysis.correlate import (
    correlation_matrix,
    correlation_table,
    metric_ranks,
    ranking_agreement,
    render_correlations,
)
from inpaintbench.analysis.load import load_runs
from inpaintbench.errors import InputError


def test_known_correlations(tmp_path: Path) -> None:
    n = 120  # <= 150: the vectorised Kendall bootstrap path
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    vals = {
        "psnr": 25 + x,  # psnr vs ssim: exactly monotone -> Spearman/Kendall 1
        "ssim": 0.5 + 0.1 * np.tanh(x),
        "l1": rng.uniform(0.01, 0.05, n),  # independent of everything
        "lpips": 0.2 - 0.05 * x + rng.normal(0, 0.05, n),  # Pearson with psnr: -1/sqrt(2)
    }
    run = load_runs([write_run(tmp_path, "r", n=n, values=vals, metrics=("psnr", "ssim", "l1", "lpips"))])
    t = correlation_table(run, n_boot=300).set_index(["x", "y", "method"])
    assert t.loc[("psnr", "ssim", "spearman"), "r"] == pytest.approx(1.0)
    assert t.loc[("psnr", "ssim", "kendall"), "r"] == pytest.approx(1.0)
    assert t.loc[("psnr", "l1", "pearson"), "ci_low"] < 0 < t.loc[("psnr", "l1", "pearson"), "ci_high"]
    row = t.loc[("psnr", "lpips", "pearson")]
    assert row["ci_low"] < -1 / np.sqrt(2) < row["ci_high"]
    assert row["r"] == pytest.approx(sps.pearsonr(vals["psnr"], vals["lpips"]).statistic)
    assert row["ci_method"] == "Fisher z"
    # Every pair of the 4 metrics + hole ratio, 3 methods each.
    assert len(t) == 10 * 3
    hole = t.loc[("psnr", "hole_ratio", "spearman")]
    assert hole["n"] == n


def test_nonfinite_pairs_excluded_and_counted(tmp_path: Path) -> None:
    run = load_runs([write_run(tmp_path, "r", perfect=(1, 2), failed=(3,))])
    t = correlation_table(run, methods=("pearson",), n_boot=10).set_index(["x", "y"])
    assert t.loc[("psnr", "ssim"), "n"] == 37 and t.loc[("psnr", "ssim"), "n_excluded"] == 2
    assert t.loc[("ssim", "l1"), "n"] == 39 and t.loc[("ssim", "l1"), "n_excluded"] == 0
    assert np.isfinite(t["r"]).all()
    md = render_correlations(correlation_table(run, n_boot=10), "md")
    assert "Non-finite values excluded" in md and "PSNR vs SSIM: 2 pair(s)" in md


def test_correlation_matrix_is_symmetric(tmp_path: Path) -> None:
    run = load_runs([write_run(tmp_path, "r")])
    t = correlation_table(run, methods=("spearman",), n_boot=20)
    m = correlation_matrix(t, run[0].label, "spearman")
    assert list(m.columns) == ["psnr", "ssim", "l1", "lpips", "hole_ratio"]
    np.testing.assert_allclose(m.to_numpy(), m.to_numpy().T)
    assert (np.diag(m.to_numpy()) == 1).all()


def test_ranking_agreement_known_answer(tmp_path: Path) -> None:
    # Four models; PSNR and LPIPS agree on the order, SSIM swaps the top two.
    base = metric_values(40, 0.0, 1)
    runs = []
    for k, (dp, ds, dl) in enumerate([(3, 2, -3), (2, 3, -2), (1, 1, -1), (0, 0, 0)]):
        v = {"psnr": base["psnr"] + dp, "ssim": base["ssim"] + 0.01 * ds, "lpips": base["lpips"] + 0.01 * dl}
        runs.append(write_run(tmp_path, f"r{k}", model=f"m{k}", values=v, metrics=("psnr", "ssim", "lpips")))
    ranks, tau, p = ranking_agreement(load_runs(runs))
    assert ranks["psnr"].tolist() == [1, 2, 3, 4] and ranks["lpips"].tolist() == [1, 2, 3, 4]
    assert ranks["ssim"].tolist() == [2, 1, 3, 4]
    assert tau.loc["psnr", "lpips"] == pytest.approx(1.0)
    # One discordant pair of six: tau = (5 - 1) / 6.
    assert tau.loc["psnr", "ssim"] == pytest.approx(sps.kendalltau([1, 2, 3, 4], [2, 1, 3, 4]).statistic)
    assert tau.loc["psnr", "ssim"] == pytest.approx(4 / 6)
    assert tau.loc["ssim", "psnr"] == tau.loc["psnr", "ssim"]


def test_ranking_refuses_mixed_data(tmp_path: Path) -> None:
    runs = load_runs([write_run(tmp_path, "a", masks_digest="x"), write_run(tmp_path, "b", masks_digest="y")])
    with pytest.raises(InputError, match="not scored on the same samples"):
        metric_ranks(runs)


def test_golden_correlations_csv(tmp_path: Path) -> None:
    golden_set(tmp_path)
    runs = load_runs([tmp_path])
    table = correlation_table(runs, metrics=("psnr", "ssim", "lpips"), n_boot=200, seed=0)
    check_golden("correlations.csv", render_correlations(table, "csv"))
    _, tau, _ = ranking_agreement(runs)
    check_golden("correlations.md", render_correlations(table, "md", tau))


def test_bad_method(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown correlation method"):
        correlation_table(load_runs([write_run(tmp_path, "a")]), methods=("cosine",))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(4, 200),
    slope=st.floats(-3, 3, allow_nan=False),
    seed=st.integers(0, 2**32 - 1),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_pearson_ci_equals_scipy_confidence_interval(n: int, slope: float, seed: int, alpha: float) -> None:
    """Our Pearson CI (Fisher z, se = 1/sqrt(n-3)) is scipy's ``pearsonr(...).confidence_interval()``.

    Both are tanh(atanh(r) -+ z_{1-alpha/2} / sqrt(n-3)) of the same r, so they may differ only by the
    rounding of a few float64 operations: atanh/tanh amplify an ulp of r by at most 1/(1-r^2) before
    tanh contracts it again; 1e-12 absolute is far above that and far below any real difference.
    (Where n <= 3 scipy returns (-1, 1) and we return NaN: the CI is undefined there; not compared.)
    """
    from inpaintbench.analysis.stats import correlation

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = slope * x + rng.normal(size=n)
    ours = correlation(x, y, "pearson", alpha=alpha)
    ci = sps.pearsonr(x, y).confidence_interval(confidence_level=1 - alpha)
    assert abs(ours.r) < 1
    assert ours.ci_low == pytest.approx(ci.low, abs=1e-12)
    assert ours.ci_high == pytest.approx(ci.high, abs=1e-12)
