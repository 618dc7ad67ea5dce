"""Analysis of finished runs: leaderboard, significance, correlations, figures and the HTML report.

Public entry points (see each module for details)::

    load_runs(paths) -> list[Run]                        # run dirs or parent folders, validated
    leaderboard_table(runs) -> DataFrame                 # one row per run, CI columns, best flags
    bins_table(runs) -> DataFrame                        # per hole-ratio bin, long format
    render_leaderboard(df, "md"|"csv"|"latex"|"html"|"rich", bins=None) -> str
    print_leaderboard(runs, console=None, bins=False)    # what `inpaintbench run` prints at the end
    compare_runs(a, b) -> Comparison                     # paired tests, Holm, verdicts
    correlation_table(runs) / ranking_agreement(runs)
    plot_bins / plot_training / plot_grid / plot_correlations (inpaintbench.analysis.plots)
    write_report(runs, "report.html")
"""

from __future__ import annotations

from inpaintbench.analysis.compare import Comparison, compare_many, compare_runs, render_comparison
from inpaintbench.analysis.correlate import (
    correlation_matrix,
    correlation_table,
    ranking_agreement,
    render_correlations,
)
from inpaintbench.analysis.leaderboard import (
    bins_table,
    leaderboard_table,
    print_leaderboard,
    render_leaderboard,
)
from inpaintbench.analysis.load import AnalysisWarning, Run, find_run_dirs, load_run, load_runs
from inpaintbench.analysis.report import build_report, write_report

__all__ = [
    "AnalysisWarning",
    "Comparison",
    "Run",
    "bins_table",
    "build_report",
    "compare_many",
    "compare_runs",
    "correlation_matrix",
    "correlation_table",
    "find_run_dirs",
    "leaderboard_table",
    "load_run",
    "load_runs",
    "print_leaderboard",
    "ranking_agreement",
    "render_comparison",
    "render_correlations",
    "render_leaderboard",
    "write_report",
]
