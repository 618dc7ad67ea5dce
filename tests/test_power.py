"""`power`: the N compare needs, validated by re-running compare's own test on simulated studies."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from analysis_fixture import write_run
from run_paths import run_cli

from inpaintbench.analysis import power as pw
from inpaintbench.analysis.compare import NO_DIFF, compare_runs, verdict
from inpaintbench.analysis.stats import paired_bootstrap_diff_ci, wilcoxon_signed_rank


def test_vectorised_wilcoxon_equals_compares_test_exactly() -> None:
    """Rows with ties and zeros at every size where scipy's automatic method changes (13, 50)."""
    rng = np.random.default_rng(0)
    for n in (2, 5, 13, 14, 30, 50, 51, 90):
        base = np.round(rng.normal(0.2, 1, size=12), 1)
        k = 6 if n <= 13 else 40  # scipy's reference permutation test is slow: fewer rows there
        rows = np.vstack([base[rng.integers(0, 12, size=(k, n))], rng.normal(0.2, 1, size=(5, n)), np.zeros((1, n))])
        ours = pw.wilcoxon_rows(rows)
        theirs = np.array([wilcoxon_signed_rank(r, np.zeros(n))[1] for r in rows])
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_predicted_n_reaches_the_target_power_under_compares_real_test() -> None:
    """Resample the shifted differences at the predicted N, run compare's test (Wilcoxon, paired BCa
    bootstrap with compare's 1000 resamples, ``verdict``) K times: the rejection rate is the power.

    Tolerance, derived: the validation rate and the predictor's estimate are independent binomial
    proportions (K and n_sim studies), so their difference has SE √(p(1−p)(1/K + 1/n_sim)); 3 SE.
    Discretisation: N* is the smallest integer whose predicted power is >= the target, so the
    power there exceeds the target by up to pred(N*) − target (measured, not chosen). Method: the
    predictor takes the bootstrap CI in its normal form; on the validation studies themselves the
    two rules disagree on a share ``disagree`` of studies, which bounds the difference of the two
    rates exactly (and must itself be small for the method to be meaningful).
    """
    rng = np.random.default_rng(3)
    d = rng.gamma(2.0, 0.5, size=60) - 0.8  # skewed paired differences, mean ≈ 0.2
    settings = pw.PowerSettings(power=0.8, alpha=0.05, family=1, n_sim=400, seed=1)
    pp = pw.PairedPower(d, settings)
    delta = float(d.mean())
    n_star, extrapolated = pp.n_needed(delta)
    n_star = int(n_star)
    assert not extrapolated and 20 < n_star < 1000
    pred = pp.power(n_star, delta)
    assert pred >= 0.8 > pp.power(n_star - 1, delta)
    x = pp.centered + delta
    vr = np.random.default_rng(99)
    k_val = 300
    hits = rule_hits = disagree = 0
    z = pw.z(0.975)
    for k in range(k_val):
        s = x[vr.integers(0, x.size, size=n_star)]
        zero = np.zeros_like(s)
        diff, lo, hi, _ = paired_bootstrap_diff_ci(s, zero, n_boot=1000, seed=k)
        _, p = wilcoxon_signed_rank(s, zero)
        real = verdict(diff, lo, hi, p, "psnr", 0.05) == "A better"
        rule = bool(p < 0.05 and s.mean() > z * s.std() / math.sqrt(n_star))
        hits += real
        rule_hits += rule
        disagree += real != rule
    rate, share = hits / k_val, disagree / k_val
    assert share <= 0.05
    se = math.sqrt(0.8 * 0.2 * (1 / k_val + 1 / settings.n_sim))
    assert abs(rate - 0.8) <= 3 * se + (pred - 0.8) + share, (rate, pred, share)


def test_holm_family_and_effect_size_move_n_the_right_way() -> None:
    d = np.random.default_rng(5).normal(0.1, 1.0, size=80)
    one = pw.PairedPower(d, pw.PowerSettings(family=1, n_sim=200))
    five = pw.PairedPower(d, pw.PowerSettings(family=5, n_sim=200))
    n1, n5 = one.n_needed(0.3)[0], five.n_needed(0.3)[0]
    assert n5 > n1
    assert one.n_needed(0.6)[0] < n1
    assert one.n_needed(0.0) == (math.inf, False)
    mdd = one.mdd(int(n1), 1.0)
    assert mdd <= 0.3 * 1.0001 and one.power(int(n1), mdd) >= 0.8  # MDD at N* is at most the Δ that gave N*
    assert one.mdd(40, -1.0) < 0  # signed like the requested direction


def test_tiny_effect_is_extrapolated_with_the_analytic_formula() -> None:
    d = np.random.default_rng(6).normal(0.0, 1.0, size=100)
    pp = pw.PairedPower(d, pw.PowerSettings(n_sim=50))
    n, extrapolated = pp.n_needed(0.02)
    # normal N for Δ/σ = 0.02: (1.96 + 0.84)² / 0.02² ≈ 19,600; Noether's ARE 3/π adds ~5 %
    assert extrapolated and 15_000 < n < 30_000


def test_set_metric_normal_model_is_self_consistent() -> None:
    s = pw.PowerSettings(family=2)
    fit = pw.fit_spread([10, 20, 40], [3.0 / math.sqrt(10), 3.0 / math.sqrt(20), 3.0 / math.sqrt(40)], 50)
    assert fit.c == pytest.approx(3.0, rel=1e-12) and fit.slope == pytest.approx(-0.5, abs=1e-12)
    n = pw.normal_n_needed(0.5, fit.c, s)
    assert pw.normal_power(0.5, fit.c, n, s) >= 0.8 > pw.normal_power(0.5, fit.c, n - 1, s)
    assert pw.normal_mdd(fit.c, n, s) <= 0.5 < pw.normal_mdd(fit.c, n - 1, s)


def test_bootstrap_spread_follows_the_inverse_square_root_law_for_a_mean() -> None:
    """For the mean of m draws the spread is sd/√m exactly in expectation: the fitted c estimates
    sd with relative SE ≈ 1/√(2·B·sizes) = 1/√(2·400·3) ≈ 0.02 (sd of a sample sd); 4 SE allowed."""
    d = np.random.default_rng(7).normal(0, 2.0, size=300)
    fit = pw.bootstrap_spread(lambda idx: float(d[idx].mean()), d.size, (50, 100, 200), 400, seed=1)
    assert fit.c == pytest.approx(d.std(), rel=0.08)
    assert fit.slope == pytest.approx(-0.5, abs=0.15)


@pytest.mark.slow
def test_power_command_end_to_end_all_formats(capsys, tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="base", n=30, features_dim=8)
    b = write_run(tmp_path, "b", model="tuned", n=30, noise_seed=2, effect=0.2, features_dim=8, feature_shift=0.3)
    base = ["power", str(a), str(b), "--n-sim", "60", "--set-boot", "8", "--metrics", "psnr,lpips,fid"]
    code, out = run_cli(capsys, *base, "--delta", "psnr=0.18", "--plot", str(tmp_path / "p.png"))
    assert code == 0, out
    assert "PSNR ↑: to detect Δ = +0.18 you would need about N =" in out
    assert (tmp_path / "p.png").stat().st_size > 5000
    for ext in ("md", "csv", "html"):
        code, out = run_cli(capsys, *base, "-o", str(tmp_path / f"p.{ext}"))
        assert code == 0, out
        text = (tmp_path / f"p.{ext}").read_text()
        assert "lpips" in text.lower() and "fid" in text.lower()
    csv = (tmp_path / "p.csv").read_text().splitlines()
    assert csv[0].startswith("a,b,metric") and len(csv) == 4
    assert "bootstrap spread" in (tmp_path / "p.md").read_text()
    code, out = run_cli(capsys, *base, "--delta", "nope=1")
    assert code == 1 and "not in the table" in out


def test_compare_gains_the_power_line_only_for_undetected_metrics(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="base", n=40)
    b = write_run(tmp_path, "b", model="tuned", n=40, noise_seed=2, effect=0.1)
    c = compare_runs(a, b, n_boot=200, power=True)
    no = NO_DIFF.format(alpha=0.05)
    undetected = [m for m, v in zip(c.table["metric"], c.table["verdict"], strict=True) if v == no]
    assert undetected and len(c.power_lines) == len(undetected)
    assert all("you would need about N =" in line for line in c.power_lines)
    assert c.verdict_lines()[len(c.table):] == c.power_lines
    plain = compare_runs(a, b, n_boot=200)
    assert plain.power_lines == [] and len(plain.verdict_lines()) == len(plain.table)
