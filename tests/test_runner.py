"""The harness: compositing, quantisation, failures, resume after a kill, torchrun sharding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_paths import model_run_dir

from inpaintbench.errors import InputError
from inpaintbench.models.base import register_model
from inpaintbench.results import read_run_files as load_run
from inpaintbench.runner import (
    PIXEL_METRICS,
    RunConfig,
    batches_of,
    composite,
    evaluate_model,
    pad_to_multiple,
    plan_samples,
    quantize,
)

ROOT = Path(__file__).resolve().parent.parent


def test_quantize_rounds_half_to_even_and_clamps():
    values = np.array([-0.1, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 254.6 / 255, 1.2])
    assert quantize(values).tolist() == [0, 0, 0, 2, 2, 255, 255]


def test_composite_keeps_known_pixels_exactly():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    pred = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    holes = rng.random((2, 8, 8)) < 0.3
    out = composite(pred, gt, holes)
    assert np.array_equal(out[~holes], gt[~holes])
    assert np.array_equal(out[holes], pred[holes])


def test_pad_to_multiple_reflects_and_marks_pad_known():
    images = np.arange(2 * 5 * 6 * 3, dtype=np.uint8).reshape(2, 5, 6, 3)
    holes = np.ones((2, 5, 6), dtype=bool)
    padded, padded_holes = pad_to_multiple(images, holes, 4)
    assert padded.shape == (2, 8, 8, 3) and padded_holes.shape == (2, 8, 8)
    assert np.array_equal(padded[:, :5, :6], images)
    assert not padded_holes[:, 5:, :].any() and not padded_holes[:, :, 6:].any()
    assert np.array_equal(padded[:, 5, :6], images[:, 3])  # reflect, not edge


def test_plan_pairs_image_i_with_mask_i_and_cycles():
    samples = plan_samples(["a", "b", "c"], ["m0", "m1"], None)
    assert [(s.image_id, s.mask_id) for s in samples] == [("a", "m0"), ("b", "m1"), ("c", "m0")]
    assert len(plan_samples(["a", "b", "c"], ["m0"], 2)) == 2
    assert [len(b) for b in batches_of(samples, 2)] == [2, 1]


class _BrokenModel:
    """Returns NaN for the first sample of each batch and garbage shape when asked."""

    name = "broken"
    native_resolution = None
    pad_multiple = 1
    value_range = (0.0, 1.0)

    def __init__(self, mode: str = "nan"):
        self.mode = mode

    def inpaint(self, images, holes, ids=None):
        out = images.astype(np.float32) / 255
        if self.mode == "shape":
            return out[:, :-1]
        if self.mode == "raise":
            raise RuntimeError("CUDA out of memory (simulated)")
        out[0, 0, 0, 0] = np.nan
        return out

    def describe(self):
        return {"mode": self.mode}


@pytest.mark.parametrize("mode", ["nan", "shape", "raise"])
def test_bad_model_output_fails_rows_not_run(tmp_path, mode):
    config = RunConfig(model="broken", limit=6, batch_size=3, metrics=PIXEL_METRICS)
    outcome = evaluate_model(config, tmp_path / "run", model=_BrokenModel(mode))
    rows = outcome.rows
    assert len(rows) == 6
    failed = rows[rows.status == "failed"]
    expected_failed = 2 if mode == "nan" else 6
    assert len(failed) == expected_failed
    assert outcome.summary["n_failed"] == expected_failed
    assert failed["error"].str.len().min() > 10
    assert failed["psnr"].isna().all()
    if mode == "nan":
        assert rows.loc[rows.status == "ok", "psnr"].notna().all()
        assert "NaN" in failed["error"].iloc[0]


def test_run_writes_schema_and_is_reproducible(tmp_path):
    config = RunConfig(model="telea", limit=8, batch_size=4, metrics=PIXEL_METRICS, save_images=True)
    a = evaluate_model(config, tmp_path / "a")
    b = evaluate_model(config, tmp_path / "b")
    manifest, rows, summary = load_run(tmp_path / "a")
    assert manifest["comparable"] is False and "limit" in manifest["not_comparable_reason"]
    assert manifest["dataset"]["digest"] and manifest["masks"]["digest"]
    assert manifest["model"]["name"] == "telea"
    assert list(rows.columns[:10]) == ["sample_id", "image_id", "mask_id", "image_sha256", "hole_sha256",
                                       "hole_ratio", "bin", "status", "error", "seconds"]
    assert set(PIXEL_METRICS) <= set(rows.columns)
    assert summary["n"] == 8 and summary["n_ok"] == 8
    for name in PIXEL_METRICS:
        stats = summary["metrics"][name]
        assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    assert summary["bins"]
    pd.testing.assert_frame_equal(a.rows.drop(columns="seconds"), b.rows.drop(columns="seconds"))
    assert len(list((tmp_path / "a" / "images").glob("*_pred.png"))) == 8
    assert not (tmp_path / "a" / "partial").exists()


class _TeleaThatMustNotRun:
    """Describes itself as telea (same identity) but fails if asked to inpaint."""

    def __init__(self) -> None:
        from inpaintbench.models.base import create_model

        self._telea = create_model("telea")

    def describe(self) -> dict:
        return self._telea.describe()

    def inpaint(self, *args, **kwargs):
        raise AssertionError("a finished run was recomputed")


def test_finished_run_is_not_recomputed_and_config_change_is_refused(tmp_path):
    config = RunConfig(model="telea", limit=4, metrics=PIXEL_METRICS)
    first = evaluate_model(config, tmp_path / "r")
    again = evaluate_model(config, tmp_path / "r", model=_TeleaThatMustNotRun())  # would fail if recomputed
    pd.testing.assert_frame_equal(first.rows, again.rows)
    with pytest.raises(InputError, match="different configuration"):
        evaluate_model(RunConfig(model="telea", limit=4, seed=1, metrics=PIXEL_METRICS), tmp_path / "r")


def test_mask_set_of_wrong_size_is_a_clear_error(tmp_path):
    config = RunConfig(model="telea", limit=2, masks="box-512", metrics=PIXEL_METRICS)
    with pytest.raises(InputError, match="mask set"):
        evaluate_model(config, tmp_path / "r")


# ---------------------------------------------------------------------------------------------
# Subprocess tests: kill and resume, torchrun

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from inpaintbench.models.base import register_model
    from inpaintbench.models.base import create_model

    class Sleepy:
        name = "sleepy"; native_resolution = None; pad_multiple = 1; value_range = (0.0, 1.0)
        def __init__(self):
            self.inner = create_model("telea")
        def inpaint(self, images, holes, ids=None):
            log = os.environ.get("SLEEPY_LOG")
            if log:
                with open(log, "a") as fh:
                    fh.write(",".join(ids) + "\\n")
            time.sleep(float(os.environ.get("SLEEPY_SECONDS", "0")))
            return self.inner.inpaint(images, holes, ids)
        def describe(self):
            return {"wraps": "telea"}

    register_model("sleepy", Sleepy, "telea that sleeps", overwrite=True)
    from inpaintbench.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "bench_cli.py"
    path.write_text(SCRIPT)
    return path


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "INPAINTBENCH_OFFLINE": "1", **extra})
    return env


RUN_ARGS = ["run", "--model", "sleepy", "--limit", "16", "--batch-size", "2", "--metrics", "psnr,ssim,l1,l1_hole",
            "--device", "cpu", "--offline"]


def _comparable(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    _, rows, summary = load_run(run_dir)
    return rows.drop(columns="seconds"), summary


def test_killed_run_resumes_without_recomputing(tmp_path):
    script = _script(tmp_path)
    log = tmp_path / "calls.log"
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), *RUN_ARGS, "--out", str(out)],
                            env=_env(SLEEPY_LOG=str(log), SLEEPY_SECONDS="0.4"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("sleepy-*/partial/batch-*.parquet"))) < 3:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = model_run_dir(out, "sleepy") / "partial"
    done_before = len(list(partial.glob("batch-*.parquet")))
    assert 3 <= done_before < 8, "the run should have been killed half-way"
    calls_before = len(log.read_text().splitlines())

    resumed = subprocess.run([sys.executable, str(script), *RUN_ARGS, "--out", str(out)],
                             env=_env(SLEEPY_LOG=str(log)), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    calls = log.read_text().splitlines()
    recomputed = calls[calls_before:]
    # Nothing already written is computed again: only the batches without a chunk ran.
    assert len(recomputed) == 8 - done_before
    assert not set(recomputed) & set(calls[:done_before])

    clean = tmp_path / "clean"
    straight = subprocess.run([sys.executable, str(script), *RUN_ARGS, "--out", str(clean)], env=_env(),
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    rows_a, summary_a = _comparable(model_run_dir(out, "sleepy"))
    rows_b, summary_b = _comparable(model_run_dir(clean, "sleepy"))
    pd.testing.assert_frame_equal(rows_a, rows_b)
    assert summary_a == summary_b


def test_torchrun_two_processes_match_one(tmp_path):
    script = _script(tmp_path)
    single = subprocess.run([sys.executable, str(script), *RUN_ARGS, "--out", str(tmp_path / "one")], env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    dist = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         *RUN_ARGS, "--out", str(tmp_path / "two")],
        env=_env(), capture_output=True, text=True, timeout=300,
    )
    assert dist.returncode == 0, dist.stdout[-3000:] + dist.stderr[-3000:]
    manifest, _, _ = load_run(model_run_dir(tmp_path / "two", "sleepy"))
    assert manifest["world_size"] == 2
    rows_a, summary_a = _comparable(model_run_dir(tmp_path / "one", "sleepy"))
    rows_b, summary_b = _comparable(model_run_dir(tmp_path / "two", "sleepy"))
    pd.testing.assert_frame_equal(rows_a, rows_b)
    assert summary_a == summary_b


def test_register_model_refuses_duplicates():
    with pytest.raises(ValueError):
        register_model("telea", lambda: None, "dup")
