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
    df = leaderboard_table(golden_runs).set_index("run_id")
    for m in ("psnr", "ssim", "l1", "lpips"):
        cand = df[df["comparable"]]
        best = cand[m].idxmax() if m in ("psnr", "ssim") else cand[m].idxmin()
        assert df.loc[best, f"{m}_best"] and df[f"{m}_best"].sum() == 1
    assert not df.loc["run-telea", [f"{m}_best" for m in ("psnr", "ssim", "l1", "lpips")]].any()
    notes = leaderboard_table(golden_runs).attrs["notes"]
    assert any(n.startswith("† telea") for n in notes)


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
    with pytest.raises(InputError, match="different datasets or mask sets"):
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
