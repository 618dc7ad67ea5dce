"""`compare`: paired tests on shared samples, Holm correction, plain verdicts, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_fixture import golden_set, metric_values, write_run
from test_analysis_leaderboard import check_golden

from inpaintbench.analysis.compare import NO_DIFF, NOT_TESTED, compare_many, compare_runs, render_comparison, verdict
from inpaintbench.analysis.load import load_runs
from inpaintbench.errors import InputError

NODIFF = NO_DIFF.format(alpha=0.05)


def _verdicts(c) -> dict[str, str]:
    return dict(zip(c.table["metric"], c.table["verdict"], strict=True))


def test_identical_runs_show_no_difference(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="m", noise_seed=1, features_dim=8)
    b = write_run(tmp_path, "b", model="m", noise_seed=1, features_dim=8)
    c = compare_runs(a, b, n_boot=200, set_n_boot=30, ids_n_boot=0)
    assert c.n_shared == 40 and c.label_a != c.label_b
    per_image = c.table[c.table["kind"] == "per-image"]
    assert (per_image["diff"] == 0).all() and (per_image["p"] == 1).all()
    assert set(_verdicts(c).values()) == {NODIFF}
    fid = c.table.set_index("metric").loc["fid"]
    assert fid["diff"] == pytest.approx(0, abs=1e-9) and fid["verdict"] == NODIFF


def test_shift_is_detected_in_the_right_direction(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="base", noise_seed=1, effect=0.0, features_dim=8)
    b = write_run(tmp_path, "b", model="tuned", noise_seed=1, effect=0.4, features_dim=8, feature_shift=0.4)
    c = compare_runs(a, b, n_boot=300, set_n_boot=60, ids_n_boot=0)
    v = _verdicts(c)
    # B is better on every per-image metric: higher PSNR/SSIM and lower L1/LPIPS alike.
    assert v == {
        "psnr": "B better",
        "ssim": "B better",
        "l1": "B better",
        "lpips": "B better",
        "fid": "A better",
        "kid": "A better",
    }
    t = c.table.set_index("metric")
    assert t.loc["psnr", "diff"] == pytest.approx(-0.4 * 1.2, rel=1e-6)  # effect enters PSNR with weight 1.2
    assert t.loc["psnr", "ci_high"] < 0 and t.loc["l1", "ci_low"] > 0
    assert (t["p_holm"] >= t["p"]).all()
    lines = c.verdict_lines()
    assert lines[0].startswith("PSNR ↑: B better (tuned)")


def test_swapping_runs_swaps_verdicts(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="base", noise_seed=1)
    b = write_run(tmp_path, "b", model="tuned", noise_seed=2, effect=0.5)
    ab, ba = compare_runs(a, b, n_boot=200), compare_runs(b, a, n_boot=200)
    flip = {"A better": "B better", "B better": "A better", NODIFF: NODIFF}
    assert [flip[v] for v in ab.table["verdict"]] == list(ba.table["verdict"])
    np.testing.assert_allclose(ab.table["diff"], -ba.table["diff"])


def test_only_shared_samples_are_compared(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", n=30)
    b = write_run(tmp_path, "b", n=30, id_offset=10, noise_seed=2)  # img010..img039
    c = compare_runs(a, b, n_boot=100)
    assert (c.n_shared, c.n_only_a, c.n_only_b) == (20, 10, 10)
    assert (c.table["n"] == 20).all()
    assert any("20 shared samples" in n for n in c.notes)


def test_failures_and_nonfinite_values_are_excluded_and_reported(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", perfect=(0, 1), failed=(7,))
    b = write_run(tmp_path, "b", noise_seed=2, failed=(8,))
    c = compare_runs(a, b, n_boot=100)
    t = c.table.set_index("metric")
    assert t.loc["psnr", "n"] == 36 and t.loc["psnr", "n_nonfinite"] == 2
    assert t.loc["ssim", "n"] == 38 and t.loc["ssim", "n_nonfinite"] == 0
    assert np.isfinite(t["mean_a"]).all()
    assert "2 pair(s) with a non-finite value excluded" in t.loc["psnr", "note"]
    assert any("2 shared sample(s) failed" in n for n in c.notes)


def test_no_overlap_is_a_clear_error(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", n=10)
    b = write_run(tmp_path, "b", n=10, id_offset=50)
    with pytest.raises(InputError, match="share no samples"):
        compare_runs(a, b)


def test_mixed_digests_refused_unless_allowed(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", dataset_digest="d1")
    b = write_run(tmp_path, "b", dataset_digest="d2")
    with pytest.raises(InputError, match="not scored on the same samples"):
        compare_runs(a, b)
    c = compare_runs(a, b, allow_mixed=True, n_boot=50)
    assert c.mixed and c.notes[0].startswith("MIXED DATA")


def test_set_metrics_without_features_are_reported_not_tested(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", features_dim=8)
    b = write_run(tmp_path, "b", noise_seed=2)
    c = compare_runs(a, b, n_boot=50)
    fid = c.table.set_index("metric").loc["fid"]
    assert fid["note"].startswith("not tested: no saved features in model-a (b)")
    assert any(line.startswith("FID ↓: not tested") for line in c.verdict_lines())


def test_verdict_requires_test_and_ci_to_agree() -> None:
    assert verdict(1.0, 0.5, 1.5, 0.001, "psnr", 0.05) == "A better"
    assert verdict(1.0, 0.5, 1.5, 0.001, "lpips", 0.05) == "B better"
    assert verdict(-1.0, -1.5, -0.5, 0.001, "lpips", 0.05) == "A better"
    assert verdict(1.0, -0.1, 1.5, 0.001, "psnr", 0.05) == NODIFF  # CI includes 0
    assert verdict(1.0, 0.5, 1.5, 0.2, "psnr", 0.05) == NODIFF  # not significant after Holm
    assert verdict(1.0, 0.5, 1.5, 0.04, "psnr", 0.01) == NO_DIFF.format(alpha=0.01)


def test_p_values_are_scipy_wilcoxon_and_holm_adjusted(tmp_path: Path) -> None:
    from scipy import stats as sps

    from inpaintbench.analysis.stats import holm

    vals_a = metric_values(40, 0.0, 1)
    vals_b = {k: v.copy() for k, v in vals_a.items()}
    rng = np.random.default_rng(0)
    vals_b["psnr"] = vals_a["psnr"] - 0.1 + rng.normal(0, 0.3, 40)  # a weak shift in one metric only
    a = write_run(tmp_path, "a", values=vals_a)
    b = write_run(tmp_path, "b", values=vals_b)
    c = compare_runs(a, b, n_boot=200)
    t = c.table.set_index("metric")
    assert t.loc["psnr", "p"] == pytest.approx(sps.wilcoxon(vals_a["psnr"] - vals_b["psnr"]).pvalue)
    np.testing.assert_allclose(c.table["p_holm"], holm(c.table["p"].to_numpy()))
    # Untouched metrics are identical: p = 1 and no call.
    assert (t.loc[["ssim", "l1", "lpips"], "p"] == 1).all()
    assert (t.loc[["ssim", "l1", "lpips"], "verdict"] == NODIFF).all()


def test_render_formats(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="base")
    b = write_run(tmp_path, "b", model="tuned", noise_seed=2, effect=0.5)
    c = compare_runs(a, b, n_boot=100)
    md = render_comparison(c, "md")
    assert "| PSNR ↑ |" in md and "## Verdicts" in md and "B better" in md
    csv = render_comparison(c, "csv")
    assert csv.splitlines()[0].startswith("a,b,metric,kind,test,n,")
    assert "<table" in render_comparison(c, "html")
    assert "Holm p" in render_comparison(c, "rich")
    with pytest.raises(InputError):
        render_comparison(c, "xml")


def test_compare_many_best_and_all(tmp_path: Path) -> None:
    runs = load_runs(
        [
            write_run(tmp_path, "a", model="a", effect=0.0),
            write_run(tmp_path, "b", model="b", effect=1.0, noise_seed=2),
            write_run(tmp_path, "c", model="c", effect=-1.0, noise_seed=3),
        ]
    )
    best = compare_many(runs, mode="best", n_boot=50)
    assert [(c.label_a, c.label_b) for c in best] == [("b", "a"), ("b", "c")]  # best by LPIPS
    assert len(compare_many(runs, mode="all", n_boot=50)) == 3


def test_golden_comparison_markdown(tmp_path: Path) -> None:
    golden_set(tmp_path)
    runs = load_runs([tmp_path])
    c = compare_runs(runs[0], runs[1], n_boot=500, seed=0)
    check_golden("compare.md", render_comparison(c, "md").replace(str(tmp_path), "<RESULTS>"))


def test_untested_rows_say_not_tested_in_every_format(tmp_path: Path) -> None:
    """The verdict of an untested row is "not tested" (CSV included) and its reason is shown."""
    import csv
    import io

    a = write_run(tmp_path, "a", features_dim=8)
    b = write_run(tmp_path, "b", noise_seed=2)  # no features: FID cannot be tested
    c = compare_runs(a, b, n_boot=50)
    t = c.table.set_index("metric")
    assert t.loc["fid", "verdict"] == NOT_TESTED
    assert t.loc["psnr", "verdict"] != NOT_TESTED
    reason = t.loc["fid", "note"]
    assert reason.startswith("not tested: no saved features in model-a (b)")
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(render_comparison(c, "csv")))}
    assert rows["fid"]["verdict"] == NOT_TESTED and rows["fid"]["note"] == reason
    assert rows["psnr"]["verdict"] in (NODIFF, "A better", "B better")
    md = render_comparison(c, "md")
    assert f"| {reason} |" in md.replace("\\|", "|") and f"- FID ↓: {reason}" in md
    html = render_comparison(c, "html")
    assert f'<td class="nodiff untested">{reason}</td>' in html
    rich = render_comparison(c, "rich")
    assert sum("not tested: no saved features" in line for line in rich.splitlines()) == 1


def test_per_image_row_without_pairs_is_not_tested(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", n=3, failed=(0, 1))
    b = write_run(tmp_path, "b", n=3, noise_seed=2)
    c = compare_runs(a, b, n_boot=50)
    assert (c.table["verdict"] == NOT_TESTED).all()
    assert c.table["note"].str.startswith("not tested: fewer than 2 usable pairs").all()


def test_set_metrics_equal_the_summary_at_n_above_1000(tmp_path: Path) -> None:
    """compare's FID and KID values are the runner's for the same features: KID with the subsets,
    subset size (summary set_metrics.kid.extra) and seed (manifest) the run recorded, N > 1000."""
    import json

    from inpaintbench.metrics.fid import frechet_distance
    from inpaintbench.metrics.kid import kernel_inception_distance

    n = 1100
    paths = [write_run(tmp_path, m, model=m, n=n, noise_seed=s, features_dim=12) for m, s in (("a", 1), ("b", 2))]
    expected = {}
    for path, seed in zip(paths, (5, 9), strict=True):
        fake = np.load(path / "features" / "fake.npy")
        real = np.load(path / "features" / "real.npy")
        kid, std = kernel_inception_distance(real, fake, subsets=10, subset_size=min(1000, n), seed=seed)
        summary = json.loads((path / "summary.json").read_text())
        summary["set_metrics"]["fid"]["value"] = frechet_distance(real, fake)  # as the runner writes it
        summary["set_metrics"]["kid"] = {"value": kid, "ci_low": None, "ci_high": None, "n": n, "status": "ok",
                                         "reason": None, "extra": {"std": std, "subsets": 10, "subset_size": 1000}}
        (path / "summary.json").write_text(json.dumps(summary))
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["seed"] = seed
        (path / "manifest.json").write_text(json.dumps(manifest))
        expected[path.name] = summary["set_metrics"]
    c = compare_runs(paths[0], paths[1], n_boot=50, set_n_boot=3, ids_n_boot=0, metrics=["fid", "kid"])
    t = c.table.set_index("metric")
    for m in ("fid", "kid"):
        assert (t.loc[m, "mean_a"], t.loc[m, "mean_b"]) == (expected["a"][m]["value"], expected["b"][m]["value"])
        assert t.loc[m, "verdict"] != NOT_TESTED and int(t.loc[m, "n"]) == n
