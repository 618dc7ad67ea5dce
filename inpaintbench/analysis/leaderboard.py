"""Leaderboard: one row per run (model and mask set), mean [95% bootstrap CI] per metric, best marked
only where it is statistically distinguishable.

The tables are built in :mod:`inpaintbench.analysis.tables` (pure data), the "best"/"tied" test is in
:mod:`inpaintbench.analysis.ranking` and the text outputs (md, csv, latex, html, rich) are rendered by
:mod:`inpaintbench.analysis.leaderboard_render`. This module prints the leaderboard at the end of a
run and re-exports the public names of the three, so ``inpaintbench.analysis.leaderboard`` stays the
one import for users.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd
from rich.console import Console

from inpaintbench.analysis.leaderboard_render import (
    FORMATS,
    bins_html,
    leaderboard_html,
    render_leaderboard,
    rich_tables,
)
from inpaintbench.analysis.load import Run
from inpaintbench.analysis.ranking import (
    ALPHA,
    PAIRED_N_BOOT,
    RULE,
    SET_N_BOOT,
    SET_TEST_MAX_N,
)
from inpaintbench.analysis.tables import bins_table, leaderboard_table

__all__ = [
    "ALPHA",
    "FORMATS",
    "PAIRED_N_BOOT",
    "RULE",
    "SET_N_BOOT",
    "SET_TEST_MAX_N",
    "bins_html",
    "bins_table",
    "leaderboard_html",
    "leaderboard_table",
    "print_leaderboard",
    "render_leaderboard",
    "rich_tables",
]


def print_leaderboard(
    runs: Sequence[Run | str | os.PathLike[str]],
    console: Console | None = None,
    bins: bool = False,
    allow_mixed: bool = True,
) -> pd.DataFrame:
    """Print the leaderboard of ``runs`` (run dirs or :class:`Run`) to a rich console; returns the table.

    This is what ``inpaintbench run`` calls at the end: ``print_leaderboard([run_dir, ...],
    console=console)``. Mixed datasets/mask sets are allowed by default here (a finished run must
    not fail at its last line): they are shown in separate groups, never ranked together.
    """
    console = console or Console()
    df = leaderboard_table(runs, allow_mixed=allow_mixed)
    b = bins_table(runs, allow_mixed=allow_mixed) if bins else None
    for item in rich_tables(df, b):
        console.print(item)
    return df
