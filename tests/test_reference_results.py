"""The committed reference leaderboard (results/reference) is what the main job produces today."""

from __future__ import annotations

from pathlib import Path

import pytest

from inpaintbench.analysis.leaderboard import leaderboard_table, render_leaderboard
from inpaintbench.analysis.load import load_runs
from inpaintbench.runner import CLASSICAL_MODELS, RunConfig, evaluate_model

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


@pytest.mark.slow
def test_reference_leaderboard_is_reproduced(tmp_path):
    empty_weights = tmp_path / "no-weights"
    empty_weights.mkdir()
    run_dirs = []
    for name in CLASSICAL_MODELS:
        # Offline with an empty weights folder: the deep metrics are unavailable, as when the
        # reference was made.
        config = RunConfig(model=name, offline=True, weights_dir=str(empty_weights), device="cpu")
        outcome = evaluate_model(config, tmp_path / "reference" / name)
        run_dirs.append(outcome.run_dir)
    runs = load_runs([tmp_path / "reference"])  # a parent folder, exactly as the CLI is given it
    assert sorted(r.path for r in runs) == sorted(run_dirs)
    table = leaderboard_table(runs)
    assert render_leaderboard(table, "csv") == (REFERENCE / "leaderboard.csv").read_text()
    from inpaintbench.analysis.leaderboard import bins_table

    md = render_leaderboard(table, "md", bins=bins_table(runs))
    # The note explaining why the deep metrics are missing names machine-specific paths: not compared.
    def stable(text: str) -> list[str]:
        return [line for line in text.splitlines() if "unavailable for" not in line]

    assert stable(md) == stable((REFERENCE / "leaderboard.md").read_text())
