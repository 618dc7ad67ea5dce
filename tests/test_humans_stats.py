"""Statistics of human judgments against references and simulated raters with known preferences.

Tolerances are derived in each test from the binomial variance of the simulated votes (stated
there); every simulation is seeded, so a run is deterministic on any machine.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from inpaintbench.humans import agreement, stats


# --- Wilson and the sign test -------------------------------------------------------------------------
@pytest.mark.parametrize("k,n", [(0, 5), (3, 10), (7, 10), (50, 50), (123, 400)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = stats.wilson(k, n)
    # Both evaluate the same closed form in float64: a few ulps of the O(1) terms.
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_sign_test_is_the_two_sided_binomial_test_without_ties() -> None:
    assert stats.sign_test(9, 1) == pytest.approx(sps.binomtest(9, 10, 0.5).pvalue, rel=1e-12)
    assert stats.sign_test(5, 5) == pytest.approx(1.0)
    assert math.isnan(stats.sign_test(0, 0))


# --- Krippendorff's alpha ------------------------------------------------------------------------------
def test_krippendorff_alpha_reproduces_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal example: 4 observers,
    # 12 units, missing values; the paper reports alpha = 0.743.
    n = None
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3]
    c = [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]
    assert stats.krippendorff_alpha_nominal(list(zip(a, b, c, d, strict=True))) == pytest.approx(0.743, abs=5e-4)


def _alpha_by_pairs(units: list[list[int | None]]) -> float:
    """Independent formulation: α = 1 − D_o / D_e with D_o the within-unit disagreement of pairable
    values (each unit's ordered pairs weighted 1/(m_u − 1)) and D_e that of all pairs of the pooled values."""
    vals = [[v for v in u if v is not None] for u in units]
    vals = [v for v in vals if len(v) >= 2]
    pooled = [x for v in vals for x in v]
    n = len(pooled)
    d_o = sum(sum(x != y for i, x in enumerate(v) for j, y in enumerate(v) if i != j) / (len(v) - 1)
              for v in vals) / n
    d_e = sum(x != y for i, x in enumerate(pooled) for j, y in enumerate(pooled) if i != j) / (n * (n - 1))
    return 1 - d_o / d_e


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=3, max_size=3), min_size=2, max_size=12))
def test_krippendorff_alpha_equals_the_pairwise_definition(units: list[list[int | None]]) -> None:
    pairable = [[v for v in u if v is not None] for u in units]
    pooled = [x for v in pairable if len(v) >= 2 for x in v]
    got = stats.krippendorff_alpha_nominal(units)
    if len(set(pooled)) < 2:
        assert math.isnan(got)
    else:
        # Same sums in another order: float64 rounding of O(n²) terms of size 1.
        assert got == pytest.approx(_alpha_by_pairs(units), rel=1e-9, abs=1e-9)


def test_krippendorff_alpha_is_one_for_perfect_agreement() -> None:
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["b", "b", "b"], ["t", "t"]]) == pytest.approx(1.0)


# --- Bradley–Terry -------------------------------------------------------------------------------------
def test_bradley_terry_solves_the_likelihood_equations() -> None:
    w = np.array([[0, 70, 80, 12], [30, 0, 60, 9], [20, 40, 0, 30], [3, 5, 11, 0]], float)
    s = stats.bradley_terry(w, prior=0.0)
    p = np.exp(s)
    n = w + w.T
    expected_wins = (n * p[:, None] / (p[:, None] + p[None, :])).sum(axis=1)
    # MLE score equations W_i = Σ_j n_ij π_i/(π_i+π_j) (Hunter 2004, eq. 3); the MM loop stops at a
    # log-step below 1e-10, so the residual is ~1e-10 × n_i (≤ 300 comparisons here).
    np.testing.assert_allclose(expected_wins, w.sum(axis=1), atol=1e-6)
    assert s.sum() == pytest.approx(0.0, abs=1e-12)


def test_bradley_terry_recovers_known_strengths_from_simulated_raters() -> None:
    rng = np.random.default_rng(1)
    true = np.array([0.8, 0.0, -0.3, -0.5])
    true -= true.mean()
    k, per_pair = len(true), 3000
    w = np.zeros((k, k))
    for i, j in itertools.combinations(range(k), 2):
        p = 1 / (1 + math.exp(true[j] - true[i]))
        wins = rng.binomial(per_pair, p)
        w[i, j], w[j, i] = wins, per_pair - wins
    est = stats.bradley_terry(w, prior=0.0)
    # A score difference has SE ≈ 1/sqrt(n·p(1−p)) per pair; with 3 pairs per model and n = 3000, each score's
    # SE is below 1/sqrt(3·3000·0.2) ≈ 0.024. 5 SE = 0.12 (the prior's O(prior/n) bias is 0 here).
    np.testing.assert_allclose(est, true, atol=0.12)
    assert list(np.argsort(-est)) == list(np.argsort(-true))


def test_bradley_terry_bootstrap_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(2)
    true = np.array([0.6, 0.0, -0.6])
    n_images, judgments = 60, 10
    per = np.zeros((n_images, 3, 3))
    for c in range(n_images):
        for i, j in itertools.combinations(range(3), 2):
            wins = rng.binomial(judgments, 1 / (1 + math.exp(true[j] - true[i])))
            per[c, i, j], per[c, j, i] = wins, judgments - wins
    score, lo, hi = stats.bootstrap_bradley_terry(per, n_boot=400, seed=0, alpha=0.01)
    # 99% intervals from 600 judgments per pair: each covers its true value except with probability ~1%.
    assert np.all((lo <= true) & (true <= hi)), (lo, true, hi)
    assert np.all(hi - lo < 0.6)  # width ≈ 2·2.58·SE with SE ≈ 1/sqrt(2·600·0.23) ≈ 0.06: well under 0.6
    assert np.all((lo <= score) & (score <= hi))


def test_bradley_terry_stays_finite_when_a_model_never_wins() -> None:
    w = np.array([[0, 10], [0, 0]], float)
    s = stats.bradley_terry(w)
    assert np.all(np.isfinite(s)) and s[0] > s[1]


# --- 2AFC agreement ------------------------------------------------------------------------------------
class _FakeRun:
    def __init__(self, values: dict[str, list[float]], ids: list[str]):
        self.rows = pd.DataFrame({"sample_id": ids, "status": "ok", **values})
        self.ok_rows = self.rows


def _simulated(n_units: int, n_votes: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Units where humans prefer A with known probability q (from a latent quality gap), and runs whose
    'psnr' follows that gap (an oracle), 'l1' the reverse sign convention of the same oracle, and 'ssim' is
    anti-correlated."""
    rng = np.random.default_rng(seed)
    ids = [f"img{u}" for u in range(n_units)]
    gap = rng.normal(0, 1.5, n_units)
    q = 1 / (1 + np.exp(-gap))
    votes = rng.binomial(n_votes, q)
    rows = []
    for u, sid in enumerate(ids):
        for v in range(n_votes):
            win_a = v < votes[u]
            rows.append({"sample_id": sid, "run_a": "A", "run_b": "B", "kind": "model", "choice": "left",
                         "winner_run": "A" if win_a else "B"})
    runs = {"A": _FakeRun({"psnr": list(gap), "l1": list(-gap), "ssim": list(-gap)}, ids),
            "B": _FakeRun({"psnr": [0.0] * n_units, "l1": [0.0] * n_units, "ssim": [0.0] * n_units}, ids)}
    return pd.DataFrame(rows), q, runs


def test_two_afc_matches_the_bapps_formula_and_known_preferences() -> None:
    judgments, q, runs = _simulated(n_units=400, n_votes=5, seed=3)
    units = agreement.unit_votes(judgments)
    table = agreement.two_afc(units, runs, metrics=["psnr", "l1", "ssim"], n_boot=300, seed=0).set_index("metric")
    # Parity with score_2afc_dataset (richzhang/PerceptualSimilarity lpips/trainer.py) on the same arrays:
    # d0/d1 are distances (lower = closer), gts the share of humans preferring p1 (here B).
    psnr_a = dict(zip(runs["A"].rows.sample_id, runs["A"].rows.psnr, strict=True))
    d0, d1 = -units["sample_id"].map(psnr_a).to_numpy(), np.zeros(len(units))
    gts = 1 - units["votes_a"].to_numpy() / units["n"].to_numpy()
    bapps = np.mean((d0 < d1) * (1.0 - gts) + (d1 < d0) * gts + (d1 == d0) * 0.5)
    assert table.loc["psnr", "agreement"] == pytest.approx(bapps, abs=1e-12)
    # L1 is lower-is-better: -gap as L1 is the same oracle once oriented.
    assert table.loc["l1", "agreement"] == pytest.approx(table.loc["psnr", "agreement"], abs=1e-12)
    # SSIM is higher-is-better, so -gap is the inverted oracle: exactly 1 - oracle (no metric ties).
    assert table.loc["ssim", "agreement"] == pytest.approx(1 - table.loc["psnr", "agreement"], abs=1e-12)
    # Expected oracle score E[max(q, 1-q)]: the estimate averages 400 units of 5 votes, SD ≤ 1/sqrt(4·5·400)
    # ≈ 0.011; 4 SD = 0.045.
    assert table.loc["psnr", "agreement"] == pytest.approx(np.maximum(q, 1 - q).mean(), abs=0.045)
    lo, hi = table.loc["psnr", ["ci_low", "ci_high"]]
    assert lo < table.loc["psnr", "agreement"] < hi and hi - lo < 0.1
    assert list(table.index[:2]) == ["psnr", "l1"]  # ranked best first


def test_two_afc_metric_ties_score_one_half() -> None:
    judgments, _, runs = _simulated(n_units=50, n_votes=3, seed=4)
    for r in runs.values():
        r.rows["psnr"] = 1.0
    t = agreement.two_afc(agreement.unit_votes(judgments), runs, metrics=["psnr"], n_boot=0)
    assert t.loc[0, "agreement"] == pytest.approx(0.5) and t.loc[0, "metric_ties"] == 50


def test_human_ceiling_is_the_pairwise_agreement_of_votes() -> None:
    judgments, q, runs = _simulated(n_units=300, n_votes=4, seed=5)
    t = agreement.two_afc(agreement.unit_votes(judgments), runs, metrics=["psnr"], n_boot=0).set_index("metric")
    # Two independent votes on a unit agree with probability q² + (1-q)² (BAPPS' human score). 300 units,
    # per-unit estimate bounded in [0, 1] with SD ≤ 0.5 / sqrt(300) ≈ 0.029 averaged; 4 SD ≈ 0.115.
    assert t.loc["human", "agreement"] == pytest.approx(np.mean(q**2 + (1 - q) ** 2), abs=0.115)


def test_kendall_tau_is_scipys() -> None:
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]
    tau, p = stats.kendall_tau(x, y)
    ref = sps.kendalltau(x, y)
    assert tau == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
