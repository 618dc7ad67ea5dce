"""The analysis commands, through typer, on fixture runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from analysis_fixture import golden_set, write_run
from typer.testing import CliRunner

from inpaintbench.analysis.cli import register
from inpaintbench.analysis.leaderboard import bins_table, leaderboard_table, render_leaderboard
from inpaintbench.analysis.load import load_runs
from inpaintbench.errors import InputError


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def invoke(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True, env={"COLUMNS": "200"})


def test_commands_are_registered(app) -> None:
    res = invoke(app, "--help")
    assert res.exit_code == 0
    for name in ("leaderboard", "compare", "correlate", "plot", "report"):
        assert name in res.output
    res = invoke(app, "plot", "--help")
    for name in ("bins", "training", "grid", "correlations"):
        assert name in res.output


def test_leaderboard_formats(app, tmp_path: Path) -> None:
    golden_set(tmp_path / "runs")
    runs = load_runs([tmp_path / "runs"])
    out = tmp_path / "lb.md"
    res = invoke(app, "leaderboard", tmp_path / "runs", "-o", out)
    assert res.exit_code == 0, res.output
    assert out.read_text() == render_leaderboard(leaderboard_table(runs), "md", bins_table(runs))
    res = invoke(app, "leaderboard", tmp_path / "runs", "-o", tmp_path / "lb.csv")
    assert (tmp_path / "lb.csv").read_text() == render_leaderboard(leaderboard_table(runs), "csv")
    res = invoke(
        app, "leaderboard", tmp_path / "runs", "--by-bin", "--format", "csv", "-o", tmp_path / "b.csv"
    )
    assert (tmp_path / "b.csv").read_text().startswith("model,run_id,group,bin,n,metric,")
    for ext in ("tex", "html"):
        res = invoke(app, "leaderboard", tmp_path / "runs", "-o", tmp_path / f"lb.{ext}")
        assert res.exit_code == 0 and (tmp_path / f"lb.{ext}").stat().st_size > 1000
    res = invoke(app, "leaderboard", tmp_path / "runs")
    assert res.exit_code == 0 and "mat-finetuned" in res.output and "PSNR" in res.output
    res = invoke(app, "leaderboard", tmp_path / "runs", "--format", "xml")
    assert isinstance(res.exception, InputError)


def test_leaderboard_mixed_refusal(app, tmp_path: Path) -> None:
    write_run(tmp_path, "a", dataset_digest="d1")
    write_run(tmp_path, "b", dataset_digest="d2")
    res = invoke(app, "leaderboard", tmp_path)
    assert isinstance(res.exception, InputError) and "--allow-mixed" in (res.exception.fix or "")
    res = invoke(app, "leaderboard", tmp_path, "--allow-mixed", "--format", "md")
    assert res.exit_code == 0 and "MIXED DATA" in res.output


def test_compare_command(app, tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="base")
    b = write_run(tmp_path, "b", model="tuned", effect=0.5, noise_seed=2)
    res = invoke(app, "compare", a, b, "--n-boot", "200")
    assert res.exit_code == 0, res.output
    assert "PSNR ↑: B better (tuned)" in res.output
    res = invoke(app, "compare", a, b, "--n-boot", "100", "-o", tmp_path / "c.md")
    assert "## Verdicts" in (tmp_path / "c.md").read_text()
    res = invoke(app, "compare", a, a)
    assert isinstance(res.exception, InputError)
    res = invoke(app, "compare", a, b, "--alpha", "2")
    assert isinstance(res.exception, InputError)
    c = write_run(tmp_path, "c", n=5, id_offset=100)
    res = invoke(app, "compare", a, c)
    assert isinstance(res.exception, InputError) and "share no samples" in res.exception.message


def test_correlate_command(app, tmp_path: Path) -> None:
    golden_set(tmp_path / "runs")
    fig = tmp_path / "scatter.png"
    res = invoke(
        app,
        "correlate",
        tmp_path / "runs",
        "--n-boot",
        "50",
        "--metrics",
        "psnr,lpips",
        "--format",
        "md",
        "--figure",
        fig,
    )
    assert res.exit_code == 0, res.output
    assert "Spearman r [95% CI]" in res.output and "Agreement between metric rankings" in res.output
    assert fig.stat().st_size > 10_000


def test_plot_commands(app, tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "a", model="base", n=16, save_images=True)
    write_run(tmp_path / "runs", "b", model="tuned", n=16, save_images=True, noise_seed=2)
    res = invoke(app, "plot", "bins", tmp_path / "runs", "-o", tmp_path / "f" / "bins.png", "--svg")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "f" / "bins.png").is_file() and (tmp_path / "f" / "bins.svg").is_file()
    res = invoke(
        app,
        "plot",
        "grid",
        tmp_path / "runs",
        "-o",
        tmp_path / "f" / "grid.png",
        "--ids",
        "img001|mask001,img002|mask002",
    )
    assert res.exit_code == 0, res.output  # no dataset to reload: drawn without ground truth, with a note
    assert "ground truth not shown" in res.output
    res = invoke(
        app,
        "plot",
        "correlations",
        tmp_path / "runs",
        "-o",
        tmp_path / "f" / "c.svg",
        "--metrics",
        "psnr,ssim",
    )
    assert res.exit_code == 0 and (tmp_path / "f" / "c.svg").stat().st_size > 5000
    log = tmp_path / "train" / "metrics.jsonl"
    log.parent.mkdir()
    log.write_text('{"kimg": 0, "val": {"psnr": 20}}\n{"kimg": 4, "val": {"psnr": 21}}\n')
    res = invoke(app, "plot", "training", log, "-o", tmp_path / "f" / "t.png")
    assert res.exit_code == 0 and (tmp_path / "f" / "t.png").is_file()
    res = invoke(app, "plot", "training", log, "-o", tmp_path / "f" / "t.png", "--labels", "x,y")
    assert isinstance(res.exception, InputError)


def test_report_command_wiring(app, tmp_path: Path, monkeypatch) -> None:
    """The command passes its options to write_report (the report itself: test_analysis_report.py)."""
    import inpaintbench.analysis.report as report_mod

    seen = {}

    def fake_write_report(runs, out, **kwargs):
        seen.update(kwargs, runs=[r.label for r in runs])
        Path(out).write_text("<!DOCTYPE html>")
        return Path(out)

    monkeypatch.setattr(report_mod, "write_report", fake_write_report)
    write_run(tmp_path / "runs", "a", model="base", n=8)
    write_run(tmp_path / "runs", "b", model="tuned", n=8, noise_seed=2)
    res = invoke(
        app,
        "report",
        tmp_path / "runs",
        "-o",
        tmp_path / "r.html",
        "--n-boot",
        "50",
        "--pairs",
        "all",
        "--grid-ids",
        "x,y",
    )
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and (tmp_path / "r.html").exists()
    assert seen["runs"] == ["base", "tuned"] and seen["n_boot"] == 50 and seen["pairs"] == "all"
    assert seen["grid_ids"] == ["x", "y"]
    res = invoke(app, "report", tmp_path / "runs", "--pairs", "some")
    assert isinstance(res.exception, InputError)


def test_not_a_results_dir(app, tmp_path: Path) -> None:
    res = invoke(app, "leaderboard", tmp_path)
    assert isinstance(res.exception, InputError) and "contains no run directories" in res.exception.message


def test_correlate_skips_ranking_on_mixed_data(app, tmp_path: Path) -> None:
    for k, digest in enumerate(["m1", "m1", "m2"]):
        write_run(tmp_path, f"r{k}", model=f"m{k}", masks_digest=digest, noise_seed=k)
    res = invoke(app, "correlate", tmp_path, "--n-boot", "20", "--methods", "pearson", "--format", "md")
    assert res.exit_code == 0, res.output
    assert "ranking agreement skipped" in res.output and "Agreement between metric rankings" not in res.output
    assert "| m2 | PSNR | SSIM |" in res.output
