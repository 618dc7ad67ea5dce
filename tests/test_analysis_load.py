"""Reading run directories: discovery, schema validation and clear errors for bad input."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest
from analysis_fixture import write_run

from inpaintbench.analysis.load import (
    AnalysisWarning,
    as_float,
    check_same_data,
    find_run_dirs,
    load_run,
    load_runs,
)
from inpaintbench.errors import InputError


def test_load_run_reads_all_parts(tmp_path: Path) -> None:
    p = write_run(tmp_path, "r1", model="telea", n=12, features_dim=8, save_images=True, perfect=(2,))
    run = load_run(p)
    assert run.run_id == "r1" and run.model_name == "telea" and run.label == "telea"
    assert len(run.rows) == 12 and run.n == 12 and run.n_failed == 0
    assert run.per_image_metrics == ["psnr", "ssim", "l1", "lpips"]
    assert math.isinf(run.rows["psnr"].iloc[2])
    fake, real = run.load_features()
    assert fake.shape == (12, 8) and real.shape == (12, 8)
    assert run.image_path("img000|mask000", "pred") is not None
    assert run.image_path("img000|mask000", "nope") is None
    assert run.set_metric("fid") is not None and run.set_metric("kid") is None


def test_as_float_decodes_writer_strings() -> None:
    assert math.isnan(as_float(None)) and math.isnan(as_float("nan"))
    assert as_float("inf") == math.inf and as_float("-inf") == -math.inf and as_float(2) == 2.0


def test_parent_folder_is_walked_and_other_manifests_skipped(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "b", model="m2")
    write_run(tmp_path / "runs" / "nested", "a", model="m1")
    (tmp_path / "runs" / "masks").mkdir()
    (tmp_path / "runs" / "masks" / "manifest.json").write_text(json.dumps({"schema": "inpaintbench.masks"}))
    found = find_run_dirs(tmp_path / "runs")
    assert [p.name for p in found] == ["b", "a"]
    runs = load_runs([tmp_path / "runs"])
    assert [r.model_name for r in runs] == ["m2", "m1"]


def test_unfinished_run_in_a_parent_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write_run(tmp_path, "done")
    p = write_run(tmp_path, "inprogress")
    (p / "per_image.parquet").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = load_runs([tmp_path])
    assert [r.run_id for r in runs] == ["done"]
    assert any(issubclass(w.category, AnalysisWarning) and "inprogress" in str(w.message) for w in caught)
    with pytest.raises(InputError, match="unfinished"):
        load_runs([p])


def test_not_a_run_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a run directory and contains no run"):
        load_runs([tmp_path / "empty"])
    with pytest.raises(InputError, match="does not exist"):
        load_runs([tmp_path / "missing"])
    with pytest.raises(InputError, match="no manifest.json"):
        load_run(tmp_path / "empty")


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    p = write_run(tmp_path, "future", schema_version=2)
    with pytest.raises(InputError, match="version 2") as exc:
        load_runs([p])
    assert exc.value.fix and "inpaintbench" in exc.value.fix
    # Also when found by walking a parent: a run of another version is reported, not ignored.
    with pytest.raises(InputError, match="version 2"):
        load_runs([tmp_path])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m.update(run_id=7), "run_id"),
        (lambda m: m["dataset"].pop("digest"), "dataset.digest"),
        (lambda m: m.update(comparable="yes"), "comparable"),
        (lambda m: m.update(schema="something.else"), "schema"),
    ],
)
def test_bad_manifest(tmp_path: Path, mutate, message: str) -> None:
    p = write_run(tmp_path, "r")
    m = json.loads((p / "manifest.json").read_text())
    mutate(m)
    (p / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match=message):
        load_run(p)


def test_bad_rows(tmp_path: Path) -> None:
    p = write_run(tmp_path, "r", n=6)
    df = pd.read_parquet(p / "per_image.parquet")
    df.drop(columns=["hole_ratio"]).to_parquet(p / "per_image.parquet")
    with pytest.raises(InputError, match="hole_ratio"):
        load_run(p)
    pd.concat([df, df.iloc[:1]]).to_parquet(p / "per_image.parquet")
    with pytest.raises(InputError, match="duplicate sample_id"):
        load_run(p)
    df.assign(psnr="high").to_parquet(p / "per_image.parquet")
    with pytest.raises(InputError, match="not numeric"):
        load_run(p)
    (p / "per_image.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read"):
        load_run(p)


def test_bad_summary_and_json(tmp_path: Path) -> None:
    p = write_run(tmp_path, "r", n=6)
    (p / "summary.json").write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        load_run(p)
    (p / "summary.json").write_text(json.dumps({"schema": "inpaintbench.summary", "schema_version": 7}))
    with pytest.raises(InputError, match="version 7"):
        load_run(p)


def test_features_must_match_rows(tmp_path: Path) -> None:
    import numpy as np

    p = write_run(tmp_path, "r", n=6, features_dim=4)
    np.save(p / "features" / "fake.npy", np.zeros((5, 4), np.float32))
    with pytest.raises(InputError, match="expected \\(6, D\\)"):
        load_run(p).load_features()


def test_labels_are_unique(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", model="mat")
    b = write_run(tmp_path, "b", model="mat")
    c = write_run(tmp_path, "c", model="telea")
    runs = load_runs([a, b, c])
    assert [r.label for r in runs] == ["mat (a)", "mat (b)", "telea"]


def test_mixed_digests_refused_unless_allowed(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", masks_digest="m1")
    b = write_run(tmp_path, "b", masks_digest="m2")
    runs = load_runs([a, b])
    with pytest.raises(InputError, match="not scored on the same samples") as exc:
        check_same_data(runs, False, "rank these runs together")
    assert "--allow-mixed" in (exc.value.fix or "")
    assert check_same_data(runs, True, "x") is True


def test_run_id_defaults_to_the_folder_name(tmp_path: Path) -> None:
    p = write_run(tmp_path, "my-run")
    m = json.loads((p / "manifest.json").read_text())
    del m["run_id"]
    (p / "manifest.json").write_text(json.dumps(m))
    assert load_run(p).run_id == "my-run"
