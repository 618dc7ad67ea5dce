"""Leaderboard: golden outputs for a fixed results set, best marks, mixed-data refusal, NaN/inf.

Golden files live in tests/golden/analysis/. After an intended change of the output, regenerate
them with::

    INPAINTBENCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_analysis_*.py

and review the diff before committing.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
from analysis_fixture import golden_set, write_run
from rich.console import Console

from inpaintbench.analysis.leaderboard import (
    bins_table,
    leaderboard_html,
    leaderboard_table,
    print_leaderboard,
    render_leaderboard,
)
from inpaintbench.analysis.load import load_runs
from inpaintbench.errors import InputError

GOLDEN = Path(__file__).parent / "golden" / "analysis"
UPDATE = os.environ.get("INPAINTBENCH_UPDATE_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: regenerate with INPAINTBENCH_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from the golden file (INPAINTBENCH_UPDATE_GOLDEN=1 to accept)"


@pytest.fixture
def golden_runs(tmp_path: Path):
    golden_set(tmp_path)
    return load_runs([tmp_path])


def test_golden_markdown(golden_runs) -> None:
    df = leaderboard_table(golden_runs)
    check_golden("leaderboard.md", render_leaderboard(df, "md", bins_table(golden_runs)))


def test_golden_csv(golden_runs) -> None:
    df = leaderboard_table(golden_runs)
    check_golden("leaderboard.csv", render_leaderboard(df, "csv"))
    check_golden("leaderboard_bins.csv", render_leaderboard(df, "csv", bins_table(golden_runs)))


def test_golden_latex(golden_runs) -> None:
    df = leaderboard_table(golden_runs)
    tex = render_leaderboard(df, "latex", bins_table(golden_runs))
    check_golden("leaderboard.tex", tex)
    assert tex.count("\\toprule") == 2 and tex.count("\\bottomrule") == 2
    assert "$\\uparrow$" in tex and "\\textbf{" in tex


def test_numbers_are_the_summary_numbers(golden_runs, tmp_path: Path) -> None:
    """The CSV carries each run's summary.json values unchanged (the runner's numbers)."""
    df = pd.read_csv(io.StringIO(render_leaderboard(leaderboard_table(golden_runs), "csv")))
    for run in golden_runs:
        summary = json.loads((run.path / "summary.json").read_text())
        row = df[df["run_id"] == run.run_id].iloc[0]
        for m, entry in summary["metrics"].items():
            assert row[m] == pytest.approx(entry["mean"], rel=1e-9)
            assert row[f"{m}_ci_low"] == pytest.approx(entry["ci_low"], rel=1e-9)
            assert row[f"{m}_n_nonfinite"] == entry["n_nonfinite"]
        assert row["n_failed"] == summary["n_failed"]


def test_best_marks_direction_and_noncomparable(golden_runs) -> None:
    """Every metric: either the best comparable mean is marked best alone, or it is marked tied."""
    df = leaderboard_table(golden_runs).set_index("run_id")
    cand = df[df["comparable"]]
    for m in ("psnr", "ssim", "l1", "psnr_hole", "l1_hole", "lpips"):
        top = cand[m].idxmax() if m in ("psnr", "ssim", "psnr_hole") else cand[m].idxmin()
        assert not (df[f"{m}_best"] & df[f"{m}_tied"]).any()
        if df[f"{m}_best"].any():
            assert df[f"{m}_best"].sum() == 1 and df.loc[top, f"{m}_best"] and not df[f"{m}_tied"].any()
        else:
            assert df.loc[top, f"{m}_tied"]
    # mat-finetuned is better by +0.25 "quality" on every image: PSNR (1.2 dB per unit) must show it
    assert df.loc["run-finetuned", "psnr_best"]
    marks = [f"{m}_{k}" for m in ("psnr", "ssim", "l1", "lpips") for k in ("best", "tied")]
    assert not df.loc["run-telea", marks].any()  # a --limit quick look is never ranked
    notes = leaderboard_table(golden_runs).attrs["notes"]
    assert any(n.startswith("† telea") for n in notes)


def _noise_runs(root: Path, effects: tuple[float, ...], **kw) -> list:
    """Runs on the same data whose per-image values differ by independent noise (+ ``effects``)."""
    return [
        write_run(root, f"r{i}", model=f"m{i}", effect=e, noise_seed=10 + i, **kw) for i, e in enumerate(effects)
    ]


def test_runs_differing_only_by_noise_mark_no_best(tmp_path: Path) -> None:
    df = leaderboard_table(load_runs(_noise_runs(tmp_path, (0.0, 0.0, 0.0))))
    for m in ("psnr", "ssim", "l1", "lpips"):
        assert not df[f"{m}_best"].any(), m
        assert df[f"{m}_tied"].sum() >= 2, m  # the best mean and at least one run within noise
    md = render_leaderboard(df, "md")
    assert "≈" in md and "**" not in md.split("Notes:")[0].split("\n", 4)[-1]
    assert "bold = significantly best at α=0.05 (paired test, Holm)" in md
    csv = pd.read_csv(io.StringIO(render_leaderboard(df, "csv")))
    assert csv["psnr_tied"].dtype == bool and csv["psnr_tied"].sum() == df["psnr_tied"].sum()
    assert "$\\approx$" in render_leaderboard(df, "latex")
    assert 'class="num tied"' in leaderboard_html(df)
    assert "≈" in render_leaderboard(df, "rich")


def test_clearly_better_run_is_marked_best(tmp_path: Path) -> None:
    df = leaderboard_table(load_runs(_noise_runs(tmp_path, (0.0, 1.5, 0.0))))
    for m in ("psnr", "ssim", "l1", "lpips"):
        assert df[f"{m}_best"].tolist() == [False, True, False], m
        assert not df[f"{m}_tied"].any(), m
    assert "**" in render_leaderboard(df, "md") and "★" in render_leaderboard(df, "rich")


def test_best_needs_every_comparison_after_holm(tmp_path: Path) -> None:
    """A run clearly better than one run but within noise of another is not "best": both tie."""
    df = leaderboard_table(load_runs(_noise_runs(tmp_path, (1.5, 1.5, 0.0))))
    assert not df["psnr_best"].any()
    assert df["psnr_tied"].tolist() == [True, True, False]


def test_untestable_comparison_marks_nothing(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="a", effect=3.0)
    b = write_run(tmp_path, "b", model="b", id_offset=40)  # same digests, no sample in common
    df = leaderboard_table(load_runs([a, b]))
    assert not df["psnr_best"].any() and not df["psnr_tied"].any()
    assert any("no best marked (fewer than 2 shared samples)" in n for n in df.attrs["notes"])


def test_set_metric_best_and_tie(tmp_path: Path) -> None:
    """FID from saved features: a clear shift is marked best; two runs equal up to noise tie."""
    shifts = (0.0, 0.8, 0.8)  # fake = real + noise + shift: the unshifted run has the lowest FID
    runs = [
        write_run(tmp_path, f"r{i}", model=f"m{i}", noise_seed=20 + i, features_dim=6, feature_shift=sh)
        for i, sh in enumerate(shifts)
    ]
    df = leaderboard_table(load_runs(runs))
    assert df["fid_best"].tolist() == [True, False, False] and not df["fid_tied"].any()
    df2 = leaderboard_table(load_runs(runs[1:]))
    assert not df2["fid_best"].any() and df2["fid_tied"].all()
    # no features on one run: FID untestable, nothing marked, and said so
    (runs[0] / "features" / "fake.npy").unlink()
    df3 = leaderboard_table(load_runs(runs))
    assert not df3["fid_best"].any() and not df3["fid_tied"].any()
    assert any(n.startswith("FID: no best marked (no saved features)") for n in df3.attrs["notes"])


def test_ids_is_not_marked_and_says_why(tmp_path: Path) -> None:
    paths = _noise_runs(tmp_path, (0.0, 2.0))
    for k, p in enumerate(paths):
        s = json.loads((p / "summary.json").read_text())
        s["set_metrics"]["p_ids"] = {"value": 0.1 * (k + 1), "ci_low": None, "ci_high": None, "n": 40,
                                     "status": "ok", "reason": None, "extra": {}}
        (p / "summary.json").write_text(json.dumps(s))
    df = leaderboard_table(load_runs(paths))
    assert not df["p_ids_best"].any() and not df["p_ids_tied"].any()
    assert any(n.startswith("P-IDS: no best marked") and "SVM" in n for n in df.attrs["notes"])


def test_capped_psnr_is_noted(tmp_path: Path) -> None:
    p = write_run(tmp_path, "a")
    s = json.loads((p / "summary.json").read_text())
    s["metrics"]["psnr"]["n_capped"] = 2
    (p / "summary.json").write_text(json.dumps(s))
    df = leaderboard_table(load_runs([p]))
    assert df.loc[0, "psnr_n_capped"] == 2
    assert any("2 PSNR value(s) at the 100 dB cap" in n for n in df.attrs["notes"])


def test_nonfinite_values_are_counted_not_averaged(golden_runs) -> None:
    df = leaderboard_table(golden_runs).set_index("run_id")
    assert df.loc["run-baseline", "psnr_n_nonfinite"] == 1 and math.isfinite(df.loc["run-baseline", "psnr"])
    assert df.loc["run-baseline", "psnr_n"] == 39
    md = render_leaderboard(leaderboard_table(golden_runs), "md")
    assert "1 non-finite PSNR value(s) excluded" in md and "‡" in md


def test_mixed_digests_refused_then_grouped(tmp_path: Path) -> None:
    write_run(tmp_path, "a", model="a", masks_digest="m1", effect=0.5)
    write_run(tmp_path, "b", model="b", masks_digest="m1")
    write_run(tmp_path, "c", model="c", masks_digest="m2", effect=3.0)  # best overall, other mask set
    runs = load_runs([tmp_path])
    with pytest.raises(InputError, match="not scored on the same samples"):
        leaderboard_table(runs)
    df = leaderboard_table(runs, allow_mixed=True)
    assert df.attrs["mixed"] and df.attrs["notes"][0].startswith("MIXED DATA")
    assert df["group"].tolist() == [1, 1, 2]
    # Best marked within each group only: c is alone in its group, so not marked at all.
    assert df["psnr_best"].tolist() == [True, False, False]
    md = render_leaderboard(df, "md")
    assert "| Group |" in md and "MIXED DATA" in md


def test_missing_summary_metric_is_recomputed(tmp_path: Path) -> None:
    p = write_run(tmp_path, "a", perfect=(0,))
    s = json.loads((p / "summary.json").read_text())
    del s["metrics"]["psnr"]
    (p / "summary.json").write_text(json.dumps(s))
    df = leaderboard_table(load_runs([p]))
    rows = pd.read_parquet(p / "per_image.parquet")
    finite = rows["psnr"][rows["psnr"].map(math.isfinite)]
    assert df.loc[0, "psnr"] == pytest.approx(finite.mean())
    assert df.loc[0, "psnr_ci_low"] < df.loc[0, "psnr"] < df.loc[0, "psnr_ci_high"]
    assert df.loc[0, "psnr_n_nonfinite"] == 1
    assert any("recomputed from per_image.parquet" in n for n in df.attrs["notes"])


def test_set_metric_unavailable_is_noted(tmp_path: Path) -> None:
    p = write_run(tmp_path, "a", features_dim=4)
    s = json.loads((p / "summary.json").read_text())
    s["set_metrics"]["p_ids"] = {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "n": 40,
        "status": "unavailable",
        "reason": "needs N >= 2048",
        "extra": {},
    }
    (p / "summary.json").write_text(json.dumps(s))
    df = leaderboard_table(load_runs([p]))
    # No run has P-IDS, so it gets no column; the reason is stated once in the notes.
    assert "fid" in df.attrs["metrics"] and "p_ids" not in df.attrs["metrics"]
    assert math.isnan(df.loc[0, "p_ids"])
    assert any("P-IDS unavailable for" in n and n.endswith(": needs N >= 2048") for n in df.attrs["notes"])
    assert any("fewer than 2048 images" in n for n in df.attrs["notes"])


def test_unknown_metric_and_format(golden_runs) -> None:
    with pytest.raises(InputError, match="not found"):
        leaderboard_table(golden_runs, metrics=["fid"])
    with pytest.raises(InputError, match="unknown leaderboard format"):
        render_leaderboard(leaderboard_table(golden_runs), "xlsx")


def test_latex_and_html_escaping(tmp_path: Path) -> None:
    runs = load_runs(
        [write_run(tmp_path, "a", model="mat_ft&50%"), write_run(tmp_path, "b", model="<b>x</b>")]
    )
    df = leaderboard_table(runs)
    tex = render_leaderboard(df, "latex")
    assert "mat\\_ft\\&50\\%" in tex
    frag = leaderboard_html(df)
    assert "&lt;b&gt;x&lt;/b&gt;" in frag and "<b>x</b>" not in frag
    page = render_leaderboard(df, "html")
    assert page.startswith("<!DOCTYPE html>") and 'class="leaderboard"' in page


def test_print_leaderboard_for_the_runner(golden_runs) -> None:
    console = Console(record=True, width=220, color_system=None)
    df = print_leaderboard([golden_runs[0].path], console=console)
    text = console.export_text()
    assert "Leaderboard" in text and "mat-baseline" in text and "PSNR ↑" in text
    assert len(df) == 1
    text = render_leaderboard(leaderboard_table(golden_runs), "rich", bins_table(golden_runs))
    assert "By hole-ratio bin" in text and "★" in text


def test_print_leaderboard_never_fails_on_mixed_data(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="a", masks_digest="m1")
    b = write_run(tmp_path, "b", model="b", masks_digest="m2")
    console = Console(record=True, width=220, color_system=None)
    df = print_leaderboard([a, b], console=console)
    assert df.attrs["mixed"] and "MIXED DATA" in console.export_text()
    assert not df["psnr_best"].any()  # each group holds one run: nothing is ranked
