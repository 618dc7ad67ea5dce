"""Run directories: manifest, per-image rows, summary — written atomically, readable for resume.

Layout of one run (documented for users in ``results/README.md``)::

    RUN/
      manifest.json        config, versions, digests, model description, timings
      per_image.parquet    one row per (image, mask) sample
      summary.json         means with bootstrap CIs, counts, per-bin means, set-level metrics
      features/fake.npy    Inception features of the predictions (when deep metrics ran)
      features/real.npy    ... and of the ground truths, same row order
      images/              optional PNGs (--save-images)
      partial/             resume state while a run is in progress (chunk files), removed at the end

Every file is written to a temporary name in the same folder, fsync'ed and renamed into place
(:mod:`inpaintbench.atomic`), so a killed run never leaves a half-written file that a later resume
would trust.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import tempfile  # noqa: F401 - tests/test_cli.py patches results.tempfile.mkstemp to simulate EACCES
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.atomic import atomic_write_bytes as _atomic_write_bytes
from inpaintbench.errors import InputError
from inpaintbench.masks.bins import BIN_LABELS

RUN_SCHEMA = "inpaintbench.run"
SUMMARY_SCHEMA = "inpaintbench.summary"
SCHEMA_VERSION = 1

MANIFEST = "manifest.json"
PER_IMAGE = "per_image.parquet"
SUMMARY = "summary.json"
PARTIAL = "partial"
FEATURES = "features"
IMAGES = "images"

#: ``image_sha256``/``hole_sha256`` identify the arrays a row was scored on (see identity.py)
ROW_COLUMNS = ("sample_id", "image_id", "mask_id", "image_sha256", "hole_sha256", "hole_ratio", "bin", "status",
               "error", "seconds")


def _write_error(path: Path, exc: OSError) -> InputError:
    if exc.errno == errno.ENOSPC:
        fix = "free disk space or choose another --out; completed rows are kept and the run resumes"
        return InputError(f"disk full while writing {path}", fix)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return InputError(f"cannot write {path}: permission denied", "choose a writable --out directory")
    return InputError(f"cannot write {path}: {exc.strerror or exc}", "check the --out directory")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`inpaintbench.atomic.atomic_write_bytes`: temp file,
    fsync, rename, fsync of the folder; mode 0o666 minus the umask), with clear errors for full or
    read-only disks."""
    try:
        _atomic_write_bytes(path, data)
    except OSError as exc:
        raise _write_error(Path(path), exc) from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _json_safe(obj: Any) -> Any:
    """JSON has no inf/NaN: store them as strings so that readers see them explicitly."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.floating):
        return _json_safe(float(obj))
    return obj


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    text = json.dumps(_json_safe(obj), indent=2, sort_keys=False, default=_json_default)
    atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_parquet(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | os.PathLike[str]) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} does not exist", "pass a run directory written by `inpaintbench run`") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})", "re-run to rewrite it") from None


def sanitize_sample_id(sample_id: str) -> str:
    """A filesystem-safe, still readable version of a sample id (``a/b|000001`` -> ``a_b__000001``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id.replace("|", "__"))


def rows_frame(rows: Iterable[dict[str, Any]], metric_names: Iterable[str]) -> pd.DataFrame:
    """Rows as a DataFrame with the schema's column order and dtypes (metrics float64)."""
    metric_names = list(metric_names)
    df = pd.DataFrame(list(rows))
    for col in ROW_COLUMNS:
        if col not in df:
            df[col] = pd.Series(dtype="object")
    for name in metric_names:
        if name not in df:
            df[name] = np.nan
        df[name] = df[name].astype("float64")
    df["hole_ratio"] = df["hole_ratio"].astype("float64")
    df["seconds"] = df["seconds"].astype("float64")
    return df[list(ROW_COLUMNS) + metric_names]


class PartialStore:
    """Chunked resume state: one parquet (+ optional features) file per finished batch.

    A chunk is the unit of atomicity: it is written only after its whole batch was scored, so a
    run killed at any moment loses at most the batch in flight.
    """

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / PARTIAL

    def chunk_path(self, batch_index: int) -> Path:
        return self.dir / f"batch-{batch_index:06d}.parquet"

    def features_path(self, batch_index: int, kind: str) -> Path:
        return self.dir / f"batch-{batch_index:06d}.{kind}.npy"

    def done_batches(self) -> set[int]:
        if not self.dir.is_dir():
            return set()
        done = set()
        for p in self.dir.glob("batch-*.parquet"):
            done.add(int(p.stem.split("-")[1]))
        return done

    def write(self, batch_index: int, df: pd.DataFrame, features: dict[str, np.ndarray]) -> None:
        # Features first: a chunk's parquet is the commit marker for the whole batch.
        for kind, array in features.items():
            atomic_write_npy(self.features_path(batch_index, kind), np.asarray(array, dtype=np.float32))
        atomic_write_parquet(self.chunk_path(batch_index), df)

    def read(self, batch_index: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        df = pd.read_parquet(self.chunk_path(batch_index))
        feats = {}
        for kind in ("fake", "real"):
            p = self.features_path(batch_index, kind)
            if p.exists():
                feats[kind] = np.load(p, allow_pickle=False)
        return df, feats

    def clear(self) -> None:
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                p.unlink()
            self.dir.rmdir()


def read_run_files(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Read a finished run: (manifest, per-image rows, summary), with schema checks."""
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file():
        raise InputError(f"{run_dir} is not an inpaintbench run directory (no {MANIFEST})",
                         "pass a directory written by `inpaintbench run` or `inpaintbench score`")
    manifest = read_json(run_dir / MANIFEST)
    if manifest.get("schema") != RUN_SCHEMA or manifest.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            f"{run_dir} has schema {manifest.get('schema')} v{manifest.get('schema_version')}, "
            f"this inpaintbench reads {RUN_SCHEMA} v{SCHEMA_VERSION}",
            "re-run the evaluation with this version",
        )
    if not (run_dir / PER_IMAGE).is_file():
        raise InputError(f"{run_dir} is unfinished (no {PER_IMAGE})", "re-run the same command to resume it")
    rows = pd.read_parquet(run_dir / PER_IMAGE)
    summary = read_json(run_dir / SUMMARY)
    return manifest, rows, summary


__all__ = [
    "BIN_LABELS",
    "FEATURES",
    "IMAGES",
    "MANIFEST",
    "PER_IMAGE",
    "PartialStore",
    "RUN_SCHEMA",
    "ROW_COLUMNS",
    "SCHEMA_VERSION",
    "SUMMARY",
    "SUMMARY_SCHEMA",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_npy",
    "atomic_write_parquet",
    "read_run_files",
    "read_json",
    "rows_frame",
    "sanitize_sample_id",
]
