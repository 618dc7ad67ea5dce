"""Read run directories for analysis, validating the schema so bad input fails with one clear line.

The layout and the writer live in :mod:`inpaintbench.results`; this module only reads. It checks
more than the writer's own resume reader does (required keys, column types, duplicate samples),
because analysis is where runs from different machines and versions meet.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.errors import InputError
from inpaintbench.metrics.info import METRICS, feature_files
from inpaintbench.results import (
    FEATURES,
    IMAGES,
    MANIFEST,
    PER_IMAGE,
    RUN_SCHEMA,
    SCHEMA_VERSION,
    SUMMARY,
    SUMMARY_SCHEMA,
    read_json,
    sanitize_sample_id,
)

#: Per-image metric columns, in display order (the order of :data:`METRICS`).
PER_IMAGE_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if m.per_image)
#: Set-level metrics, in display order.
SET_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS.values() if not m.per_image)

REQUIRED_COLUMNS = ("sample_id", "image_id", "mask_id", "hole_ratio", "bin", "status")
_SKIP_DIRS = {FEATURES, IMAGES, "partial"}
_MAX_DEPTH = 4


class AnalysisWarning(UserWarning):
    """Something the user should see but that does not stop the analysis (a skipped folder...)."""


def as_float(value: Any) -> float:
    """A JSON number as float; ``None`` and the writer's ``"nan"``/``"inf"`` strings decoded."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        try:
            return float(value)  # "nan", "inf", "-inf"
        except ValueError:
            return math.nan
    return float(value)


@dataclass
class Run:
    """One validated run directory: manifest, per-image rows and summary, plus lazy extras."""

    path: Path
    manifest: dict[str, Any]
    rows: pd.DataFrame
    summary: dict[str, Any]
    label: str = field(default="")

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.model_name

    # --- identity -----------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """The manifest's ``run_id``, or the directory name for writers that do not record one."""
        return str(self.manifest.get("run_id") or self.path.name)

    @property
    def model_name(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def dataset_name(self) -> str:
        return str(self.manifest["dataset"].get("name", "?"))

    @property
    def mask_name(self) -> str:
        return str(self.manifest["masks"].get("name", "?"))

    @property
    def dataset_digest(self) -> str:
        return str(self.manifest["dataset"]["digest"])

    @property
    def masks_digest(self) -> str:
        return str(self.manifest["masks"]["digest"])

    @property
    def group_key(self) -> tuple[str, ...]:
        """Runs are only ranked together when they share this key.

        For runs that record it (``manifest.comparison``): the digest of the scored samples (ids,
        image and hole hashes: the same for `run`, `score` and `export`, and different for another
        resolution or resize policy) and the Inception network behind FID/KID/IDS. Older runs fall
        back to (dataset digest, mask-set digest).
        """
        comparison = self.manifest.get("comparison")
        if isinstance(comparison, dict) and comparison.get("samples_digest"):
            return (str(comparison["samples_digest"]), str(comparison.get("feature_extractor")))
        return (self.dataset_digest, self.masks_digest)

    def group_description(self) -> str:
        """The group key in words, for refusals and table notes."""
        comparison = self.manifest.get("comparison")
        data = self.manifest.get("dataset", {})
        where = (f"dataset {self.dataset_name} ({self.dataset_digest[:12]}, resolution {data.get('resolution')}, "
                 f"{data.get('resize_policy')}), masks {self.mask_name} ({self.masks_digest[:12]})")
        if isinstance(comparison, dict) and comparison.get("samples_digest"):
            fx = comparison.get("feature_extractor") or "none"
            return f"{where}, samples {str(comparison['samples_digest'])[:12]}, Inception {fx}"
        return where

    @property
    def comparable(self) -> bool:
        """False for quick looks (``--limit``): their numbers are not the protocol's."""
        return bool(self.manifest.get("comparable", True))

    @property
    def finished(self) -> bool:
        return self.manifest.get("finished") is not None

    # --- contents -----------------------------------------------------------------------------
    @cached_property
    def per_image_metrics(self) -> list[str]:
        """Per-image metric columns present in this run, in display order."""
        return [m for m in PER_IMAGE_METRICS if m in self.rows.columns]

    @property
    def ok_rows(self) -> pd.DataFrame:
        return self.rows[self.rows["status"] == "ok"]

    @property
    def n(self) -> int:
        return int(self.summary.get("n", len(self.rows)))

    @property
    def n_failed(self) -> int:
        return int(self.summary.get("n_failed", int((self.rows["status"] != "ok").sum())))

    def set_metric(self, name: str) -> dict[str, Any] | None:
        """The summary's entry for a set-level metric, numbers decoded; None when absent."""
        entry = (self.summary.get("set_metrics") or {}).get(name)
        if not isinstance(entry, dict):
            return None
        out = dict(entry)
        for key in ("value", "ci_low", "ci_high"):
            out[key] = as_float(entry.get(key))
        return out

    @property
    def features_dir(self) -> Path | None:
        """``features/`` when it holds the Inception arrays (``fake.npy``, ``real.npy``), else None."""
        return self.features_dir_for("inception")

    def features_dir_for(self, space: str) -> Path | None:
        """``features/`` when it holds both arrays of ``space`` (inception, dinov2, clip), else None."""
        fake, real = feature_files(space)
        d = self.path / FEATURES
        return d if (d / f"{fake}.npy").is_file() and (d / f"{real}.npy").is_file() else None

    def load_features(self, space: str = "inception") -> tuple[np.ndarray, np.ndarray]:
        """(fake, real) features of ``space``, float64, row order = :attr:`rows` order."""
        d = self.features_dir_for(space)
        stems = feature_files(space)
        if d is None:
            raise InputError(
                f"{self.path} has no {FEATURES}/{stems[0]}.npy and {stems[1]}.npy",
                "re-run with the set metrics of that feature space enabled so features are saved",
            )
        arrays = []
        for stem in stems:
            p = d / f"{stem}.npy"
            try:
                a = np.load(p, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read {p}: {exc}", "re-run the evaluation to rewrite it") from None
            if a.ndim != 2 or a.shape[0] != len(self.rows):
                raise InputError(
                    f"{p} has shape {a.shape}, expected ({len(self.rows)}, D) to match {PER_IMAGE}",
                    "re-run the evaluation; features and rows must come from the same run",
                )
            arrays.append(a.astype(np.float64))
        return arrays[0], arrays[1]

    @property
    def images_dir(self) -> Path | None:
        d = self.path / IMAGES
        return d if d.is_dir() else None

    def image_path(self, sample_id: str, kind: str) -> Path | None:
        """Path of a saved image (``kind`` in pred/input/mask) or None when it was not saved."""
        d = self.images_dir
        if d is None:
            return None
        p = d / f"{sanitize_sample_id(sample_id)}_{kind}.png"
        return p if p.is_file() else None


# --- validation ---------------------------------------------------------------------------------
def _require(cond: bool, path: Path, what: str) -> None:
    if not cond:
        raise InputError(
            f"{path} is not a valid inpaintbench file: {what}",
            "re-run the evaluation with this inpaintbench version to rewrite it",
        )


def _check_schema(obj: Any, path: Path, schema: str) -> None:
    _require(isinstance(obj, dict), path, "top level is not a JSON object")
    if obj.get("schema") != schema or obj.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            f"{path} has schema {obj.get('schema')!r} version {obj.get('schema_version')!r}; "
            f"this inpaintbench reads {schema!r} version {SCHEMA_VERSION}",
            "re-run the evaluation with this inpaintbench version, or use the version that wrote it",
        )


def validate_manifest(manifest: Any, path: Path) -> None:
    _check_schema(manifest, path, RUN_SCHEMA)
    if "run_id" in manifest:
        _require(isinstance(manifest["run_id"], str), path, "'run_id' is not a string")
    for section, keys in (("model", ("name",)), ("dataset", ("digest",)), ("masks", ("digest",))):
        block = manifest.get(section)
        _require(isinstance(block, dict), path, f"missing object {section!r}")
        for key in keys:
            _require(isinstance(block.get(key), str), path, f"missing string '{section}.{key}'")
    if "comparable" in manifest:
        _require(isinstance(manifest["comparable"], bool), path, "'comparable' is not true/false")


def validate_rows(rows: pd.DataFrame, path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    _require(not missing, path, f"missing column(s) {', '.join(missing)}")
    for name in PER_IMAGE_METRICS + ("hole_ratio",):
        if name in rows.columns:
            _require(pd.api.types.is_numeric_dtype(rows[name]), path, f"column {name!r} is not numeric")
    bad = sorted(set(rows["status"].astype(str)) - {"ok", "failed"})
    _require(not bad, path, f"unknown status value(s) {bad[:3]}")
    dup = rows["sample_id"][rows["sample_id"].duplicated()]
    _require(dup.empty, path, f"duplicate sample_id {dup.iloc[0]!r}" if not dup.empty else "")


def validate_summary(summary: Any, path: Path) -> None:
    _check_schema(summary, path, SUMMARY_SCHEMA)
    for key in ("metrics", "set_metrics", "bins"):
        if key in summary:
            _require(isinstance(summary[key], dict), path, f"{key!r} is not an object")


# --- loading ------------------------------------------------------------------------------------
def load_run(path: str | os.PathLike[str]) -> Run:
    """Load and validate one run directory; any problem is an :class:`InputError` naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(
            f"{path} does not exist or is not a directory",
            "pass a run directory written by `inpaintbench run`",
        )
    if not (path / MANIFEST).is_file():
        raise InputError(
            f"{path} is not an inpaintbench run directory (no {MANIFEST})",
            "pass a run directory written by `inpaintbench run`, or a folder containing them",
        )
    manifest = read_json(path / MANIFEST)
    validate_manifest(manifest, path / MANIFEST)
    if not (path / PER_IMAGE).is_file():
        raise InputError(
            f"{path} is an unfinished run (no {PER_IMAGE})",
            "re-run the same `inpaintbench run` command to resume and finish it",
        )
    try:
        rows = pd.read_parquet(path / PER_IMAGE)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(
            f"cannot read {path / PER_IMAGE}: {exc}", "re-run the evaluation to rewrite it"
        ) from None
    validate_rows(rows, path / PER_IMAGE)
    rows = rows.reset_index(drop=True)
    rows["sample_id"] = rows["sample_id"].astype(str)
    summary = read_json(path / SUMMARY)
    validate_summary(summary, path / SUMMARY)
    return Run(path=path, manifest=manifest, rows=rows, summary=summary)


def _is_run_manifest(manifest_path: Path) -> bool:
    """True when a manifest.json found while walking is an inpaintbench run (any version)."""
    try:
        obj = read_json(manifest_path)
    except InputError:
        return True  # let load_run report the broken file
    return isinstance(obj, dict) and obj.get("schema") == RUN_SCHEMA


def find_run_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` itself if it is a run, else the run directories below it (sorted, a few levels deep).

    Folders holding some other ``manifest.json`` (a mask set, say) are skipped, so a results tree
    can be passed as a whole.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist", "pass run directories or a folder containing them")
    if not path.is_dir():
        raise InputError(f"{path} is not a directory", "pass run directories or a folder containing them")
    if (path / MANIFEST).is_file():
        return [path]
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        try:
            children = sorted(p for p in d.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if child.name.startswith(".") or child.name in _SKIP_DIRS:
                continue
            if (child / MANIFEST).is_file():
                if _is_run_manifest(child / MANIFEST):
                    found.append(child)
                continue
            walk(child, depth + 1)

    walk(path, 1)
    if not found:
        raise InputError(
            f"{path} is not a run directory and contains no run directories",
            "pass folders written by `inpaintbench run` (each holds a manifest.json)",
        )
    return found


def load_runs(paths: Iterable[str | os.PathLike[str] | Run]) -> list[Run]:
    """Load runs from run directories and/or parent folders (already-loaded :class:`Run` pass through).

    Runs found by walking a parent folder that are unfinished are skipped with an
    :class:`AnalysisWarning`; a directory named explicitly must be a valid, finished run.
    Labels are assigned so that every run has a distinct, readable name.
    """
    runs: list[Run] = []
    seen: set[Path] = set()
    for item in paths:
        if isinstance(item, Run):
            runs.append(item)
            continue
        base = Path(item)
        dirs = find_run_dirs(base)
        explicit = dirs == [base]
        for d in dirs:
            key = d.resolve()
            if key in seen:
                continue
            seen.add(key)
            if not explicit and not (d / PER_IMAGE).is_file():
                warnings.warn(f"skipping unfinished run {d} (no {PER_IMAGE})", AnalysisWarning, stacklevel=2)
                continue
            runs.append(load_run(d))
    if not runs:
        raise InputError("no finished runs to analyse", "pass run directories written by `inpaintbench run`")
    assign_labels(runs)
    return runs


def as_runs(runs: Sequence[Run | str | os.PathLike[str]]) -> list[Run]:
    """``runs`` as a list of :class:`Run`: loaded ones are kept as they are (labels included),
    otherwise everything goes through :func:`load_runs`."""
    if all(isinstance(r, Run) for r in runs):
        return list(runs)  # type: ignore[arg-type]
    return load_runs(runs)


def assign_labels(runs: Sequence[Run]) -> None:
    """Model name as label; when names collide, add what tells them apart: the mask set if that
    differs, else the run id (then a counter as a last resort)."""

    def refine(labels: list[str], extra: Callable[[int], str]) -> list[str]:
        groups: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            groups.setdefault(lab, []).append(i)
        out = list(labels)
        for lab, idx in groups.items():
            if len(idx) < 2:
                continue
            extras = [extra(i) for i in idx]
            if len(set(extras)) > 1:
                for i, x in zip(idx, extras, strict=True):
                    out[i] = f"{lab} {x}"
        return out

    labels = [r.model_name for r in runs]
    labels = refine(labels, lambda i: f"· {runs[i].mask_name}")
    labels = refine(labels, lambda i: f"({runs[i].run_id})")
    labels = refine(labels, lambda i: f"#{i + 1}")
    for r, lab in zip(runs, labels, strict=True):
        r.label = lab


def digest_groups(runs: Sequence[Run]) -> list[list[Run]]:
    """Runs grouped by (dataset digest, mask digest), in first-seen order."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault(r.group_key, []).append(r)
    return list(groups.values())


def check_same_data(runs: Sequence[Run], allow_mixed: bool, what: str) -> bool:
    """Refuse runs on different data unless ``allow_mixed``; returns True when they are mixed."""
    groups = digest_groups(runs)
    if len(groups) <= 1:
        return False
    if allow_mixed:
        return True
    desc = "; ".join(f"{', '.join(r.label for r in g)}: {g[0].group_description()}" for g in groups)
    raise InputError(
        f"cannot {what}: the runs were not scored on the same samples with the same feature extractor ({desc})",
        "pass runs evaluated on the same images, resolution policy and masks with the same --feature-extractor, "
        "or add --allow-mixed to show them side by side without ranking across groups",
    )
