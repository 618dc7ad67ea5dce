"""compare tests the DINOv2/CLIP set metrics from their saved features, like FID from Inception's,
and refuses to pair features made with different network weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from analysis_fixture import write_run

from inpaintbench.analysis.compare import compare_runs
from inpaintbench.analysis.load import load_run
from inpaintbench.metrics.fid import frechet_distance
from inpaintbench.metrics.mmd import cmmd

N, D = 40, 6


def _add_space(run: Path, space: str, shift: float, sha: str, metric: str, value_fn) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    real = rng.normal(0, 1, (N, D))
    fake = real + np.random.default_rng(50 + int(shift * 10)).normal(0, 0.5, real.shape) + shift
    if space == "clip":  # CLIP embeddings are L2-normalised by the extractor
        real, fake = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (real, fake))
    np.save(run / "features" / f"{space}_fake.npy", fake.astype(np.float32))
    np.save(run / "features" / f"{space}_real.npy", real.astype(np.float32))
    summary = json.loads((run / "summary.json").read_text())
    summary["set_metrics"][metric] = {"value": value_fn(real.astype(np.float32).astype(np.float64),
                                                        fake.astype(np.float32).astype(np.float64)),
                                      "ci_low": None, "ci_high": None, "n": N, "status": "ok", "reason": None,
                                      "extra": {}}
    (run / "summary.json").write_text(json.dumps(summary))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.setdefault("metrics", {}).setdefault("embedders", {})[space] = {"weights": {"sha256": sha}}
    (run / "manifest.json").write_text(json.dumps(manifest))


def _pair(tmp_path: Path, sha_b: str = "ab" * 32) -> tuple:
    runs = []
    for name, shift, sha in (("a", 0.0, "ab" * 32), ("b", 0.6, sha_b)):
        run = write_run(tmp_path, name, model=f"model-{name}", n=N, features_dim=D)
        _add_space(run, "dinov2", shift, sha, "fd_dinov2", lambda r, f: float(frechet_distance(r, f)))
        _add_space(run, "clip", shift, sha, "cmmd", lambda r, f: float(cmmd(r, f)))
        runs.append(load_run(run))
    return runs[0], runs[1]


def test_fd_dinov2_and_cmmd_are_tested_from_their_own_features(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    table = compare_runs(a, b, n_boot=200, set_n_boot=200, power=False).table.set_index("metric")
    for metric in ("fd_dinov2", "cmmd"):
        row = table.loc[metric]
        assert row["verdict"] != "not tested", row["note"]
        assert row["n"] == N
        # the point values are the runs' own summary values, recomputed from the saved features
        assert np.isclose(row["mean_a"], a.set_metric(metric)["value"], rtol=1e-9)
        assert np.isclose(row["mean_b"], b.set_metric(metric)["value"], rtol=1e-9)
    # B's fakes are shifted by 0.6 in every dimension: clearly worse on FD-DINOv2
    assert table.loc["fd_dinov2", "diff"] < 0 and table.loc["fd_dinov2", "verdict"].startswith("A better")


def test_features_from_different_weights_are_not_compared(tmp_path: Path) -> None:
    a, b = _pair(tmp_path, sha_b="cd" * 32)
    table = compare_runs(a, b, n_boot=200, set_n_boot=200, power=False).table.set_index("metric")
    for metric in ("fd_dinov2", "cmmd"):
        assert table.loc[metric, "verdict"] == "not tested"
        assert "different weights" in table.loc[metric, "note"]
    assert table.loc["fid", "verdict"] != "not tested"  # Inception is unaffected


def test_leaderboard_marks_fd_dinov2_from_dinov2_features(tmp_path: Path) -> None:
    from inpaintbench.analysis.leaderboard import leaderboard_table

    a, b = _pair(tmp_path)
    df = leaderboard_table([a, b], metrics=["fd_dinov2", "cmmd", "fid"]).set_index("model")
    assert bool(df.loc["model-a", "fd_dinov2_best"]) and not bool(df.loc["model-b", "fd_dinov2_best"])
