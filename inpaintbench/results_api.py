"""``Results``: one evaluated run for notebooks, backed by a run directory or held in memory.

Every number comes from the code the CLI uses on the same run: :meth:`Results.compare` is
``inpaintbench compare`` (:func:`inpaintbench.analysis.compare.compare_runs` with the command's
defaults), :meth:`Results.leaderboard` is ``inpaintbench leaderboard``
(:func:`~inpaintbench.analysis.leaderboard.leaderboard_table`), and the plots are
``inpaintbench plot bins|correlations``. A run evaluated without ``out=`` keeps its manifest, rows,
summary and Inception features in memory (its temporary directory is already gone);
:meth:`Results.save` writes it as a normal run directory.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.analysis.load import PER_IMAGE_METRICS, SET_METRICS, Run, as_float, assign_labels, load_run
from inpaintbench.errors import InputError
from inpaintbench.results import (
    FEATURES,
    IMAGES,
    MANIFEST,
    PER_IMAGE,
    SUMMARY,
    atomic_write_json,
    atomic_write_npy,
    atomic_write_parquet,
)

#: the defaults of ``inpaintbench compare`` (analysis/cli.py), so that both give the same table
COMPARE_DEFAULTS: dict[str, Any] = {"alpha": 0.05, "n_boot": 1000, "set_n_boot": 200, "ids_n_boot": 50, "seed": 0,
                                     "power": True}  # the CLI's defaults (`compare --power` is on)


@dataclass
class InMemoryRun(Run):
    """A :class:`Run` whose directory no longer exists: features are held in memory."""

    #: (fake, real) per feature space (inception, dinov2, clip) that the run saved
    features: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def features_dir(self) -> Path | None:  # compare/ranking only test it for None
        return self.features_dir_for("inception")

    def features_dir_for(self, space: str) -> Path | None:
        return self.path / FEATURES if self.features and space in self.features else None

    def load_features(self, space: str = "inception") -> tuple[np.ndarray, np.ndarray]:
        if not self.features or space not in self.features:
            raise InputError(f"{self.label} has no saved {space} features",
                             "evaluate with the set metrics of that feature space so that features are kept")
        return self.features[space]

    @property
    def images_dir(self) -> Path | None:
        return None


def detach(run: Run) -> InMemoryRun:
    """Copy a run directory's contents into memory (before its temporary directory is removed)."""
    from inpaintbench.metrics.info import FEATURE_SPACES

    feats = {space: run.load_features(space) for space in FEATURE_SPACES if run.features_dir_for(space) is not None}
    return InMemoryRun(path=Path(f"<in memory: {run.run_id}>"), manifest=run.manifest, rows=run.rows.copy(),
                       summary=run.summary, features=feats or None)


def _runs_of(items: Sequence[Any]) -> list[Run]:
    out = []
    for item in items:
        if isinstance(item, Results):
            out.append(item.run)
        elif isinstance(item, Run):
            out.append(item)
        elif isinstance(item, (str, os.PathLike)):
            out.append(load_run(item))
        else:
            raise InputError(f"cannot compare with a {type(item).__name__}",
                             "pass Results (from evaluate/score/load) or run directories")
    return out


def _labelled(runs: Sequence[Run]) -> list[Run]:
    """Shallow copies labelled as ``load_runs`` labels them for the CLI (distinct, readable names)."""
    copies = [copy.copy(r) for r in runs]
    assign_labels(copies)
    return copies


class Results:
    """One evaluated run. Build with :func:`inpaintbench.evaluate`, :func:`inpaintbench.score` or
    :func:`inpaintbench.load`."""

    def __init__(self, run: Run):
        self.run = run

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self.run.model_name

    @property
    def path(self) -> Path | None:
        """The run directory, or None for a run held in memory (see :meth:`save`)."""
        return None if isinstance(self.run, InMemoryRun) else self.run.path

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def manifest(self) -> dict[str, Any]:
        return self.run.manifest

    @property
    def in_memory_model(self) -> bool:
        """True when the model was a Python object (its identity is stated, not hashed)."""
        return bool(self.run.manifest.get("model", {}).get("in_memory"))

    # ------------------------------------------------------------------ numbers
    @property
    def per_image(self) -> pd.DataFrame:
        """One row per (image, mask) sample: ids, hashes, hole ratio, bin, status and every metric."""
        return self.run.rows.copy()

    @property
    def set_metrics(self) -> pd.DataFrame:
        """FID, KID, IDS...: ``value, ci_low, ci_high, n, status, reason`` per metric."""
        records = []
        for m in SET_METRICS:
            e = self.run.set_metric(m)
            if e is None:
                continue
            records.append({"metric": m, "value": e["value"], "ci_low": e["ci_low"], "ci_high": e["ci_high"],
                            "n": int(e.get("n") or 0), "status": e.get("status", "ok"), "reason": e.get("reason")})
        cols = ["metric", "value", "ci_low", "ci_high", "n", "status", "reason"]
        return pd.DataFrame.from_records(records, columns=cols).set_index("metric")

    @property
    def summary(self) -> pd.DataFrame:
        """Every metric of the run: mean (per-image) or value (set), 95% CI, N and status."""
        records = []
        stats = self.run.summary.get("metrics") or {}
        for m in PER_IMAGE_METRICS:
            e = stats.get(m)
            if isinstance(e, dict):
                records.append({"metric": m, "kind": "per-image", "value": as_float(e.get("mean")),
                                "ci_low": as_float(e.get("ci_low")), "ci_high": as_float(e.get("ci_high")),
                                "n": int(e.get("n") or 0), "status": "ok"})
        for m, row in self.set_metrics.iterrows():
            records.append({"metric": m, "kind": "set", "value": row["value"], "ci_low": row["ci_low"],
                            "ci_high": row["ci_high"], "n": int(row["n"]), "status": row["status"]})
        for m, why in (self.run.summary.get("unavailable") or {}).items():
            if m in PER_IMAGE_METRICS:
                records.append({"metric": m, "kind": "per-image", "value": np.nan, "ci_low": np.nan,
                                "ci_high": np.nan, "n": 0, "status": str(why)})
        cols = ["metric", "kind", "value", "ci_low", "ci_high", "n", "status"]
        return pd.DataFrame.from_records(records, columns=cols).set_index("metric")

    @property
    def summary_dict(self) -> dict[str, Any]:
        """``summary.json`` as written (bins, bootstrap settings, failures...)."""
        return self.run.summary

    # ------------------------------------------------------------------ analysis
    def comparison(self, other: Results | Run | str | os.PathLike[str], **kwargs: Any) -> Any:
        """The :class:`~inpaintbench.analysis.compare.Comparison` object (A = self, B = other)."""
        from inpaintbench.analysis.compare import compare_runs

        a, b = _labelled([self.run, *_runs_of([other])])
        options = {**COMPARE_DEFAULTS, **kwargs}
        return compare_runs(a, b, **options)

    def compare(self, other: Results | Run | str | os.PathLike[str], **kwargs: Any) -> pd.DataFrame:
        """Paired test of self (A) against ``other`` (B): the table of ``inpaintbench compare``.

        ``df.attrs["verdicts"]`` holds the plain-words verdict lines, ``df.attrs["notes"]`` the notes.
        Options: ``alpha, n_boot, set_n_boot, ids_n_boot, seed, metrics, allow_mixed, power`` (the
        "to detect Δ = … you would need about N = … images" lines, on by default as in the CLI).
        """
        c = self.comparison(other, **kwargs)
        table = c.table.copy()
        table.attrs = {"a": c.label_a, "b": c.label_b, "verdicts": c.verdict_lines(), "notes": list(c.notes)}
        return table

    def power(self, other: Results | Run | str | os.PathLike[str], deltas: dict[str, float] | None = None, *,
              power: float = 0.8, alpha: float = 0.05, family: int | None = None, metrics: Sequence[str] | None = None,
              set_boot: int = 50) -> pd.DataFrame:
        """``inpaintbench power A B``: per metric the N needed to detect the observed difference (or
        ``deltas={"psnr": 0.18}``) with compare's paired test, and the smallest detectable difference
        at the current N. ``df.attrs["lines"]`` holds the "to detect Δ = …" sentences."""
        from inpaintbench.analysis import power as pw
        from inpaintbench.analysis.power_report import power_lines, power_runs

        a, b = _labelled([self.run, *_runs_of([other])])
        report = power_runs(a, b, pw.PowerSettings(power=power, alpha=alpha), deltas=deltas, family=family,
                            metrics=list(metrics) if metrics else None, set_boot=set_boot)
        table = report.table.copy()
        table.attrs = {"a": report.label_a, "b": report.label_b, "lines": power_lines(report),
                       "notes": list(report.notes)}
        return table

    def leaderboard(self, *others: Results | Run | str | os.PathLike[str], allow_mixed: bool = False,
                    metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """The table of ``inpaintbench leaderboard`` for self and ``others`` (best only when significant)."""
        from inpaintbench.analysis.leaderboard import leaderboard_table

        return leaderboard_table(_labelled([self.run, *_runs_of(others)]), allow_mixed=allow_mixed,
                                 metrics=list(metrics) if metrics else None)

    def plot_bins(self, *others: Results | Run | str | os.PathLike[str], metrics: Sequence[str] | None = None,
                  allow_mixed: bool = False) -> Any:
        """Mean and 95% CI per hole-ratio bin (``inpaintbench plot bins``); a matplotlib Figure."""
        from inpaintbench.analysis.plots import plot_bins

        return _shown(plot_bins(_labelled([self.run, *_runs_of(others)]), metrics=metrics, allow_mixed=allow_mixed))

    def plot_correlations(self, *others: Results | Run | str | os.PathLike[str],
                          metrics: Sequence[str] | None = None, seed: int = 0) -> Any:
        """Scatter matrix of per-image metrics and hole ratio (``inpaintbench plot correlations``)."""
        from inpaintbench.analysis.plots import plot_correlations

        return _shown(plot_correlations(_labelled([self.run, *_runs_of(others)]), metrics=metrics, seed=seed))

    # ------------------------------------------------------------------ output
    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the run as a run directory (readable by every CLI command and :func:`inpaintbench.load`)."""
        target = Path(directory)
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise InputError(f"{target} exists and is not empty", "choose a new directory or pass overwrite=True")
            shutil.rmtree(target)
        atomic_write_parquet(target / PER_IMAGE, self.run.rows)
        atomic_write_json(target / SUMMARY, self.run.summary)
        from inpaintbench.metrics.info import FEATURE_SPACES, feature_files

        for space in FEATURE_SPACES:  # every feature space the run saved, so compare can test its set metrics
            if self.run.features_dir_for(space) is not None:
                for stem, array in zip(feature_files(space), self.run.load_features(space), strict=True):
                    atomic_write_npy(target / FEATURES / f"{stem}.npy", array.astype(np.float32))
        images = self.run.images_dir
        if images is not None:
            shutil.copytree(images, target / IMAGES)
        atomic_write_json(target / MANIFEST, self.run.manifest)  # last: a manifest marks a complete copy
        return target

    def _repr_html_(self) -> str:
        from inpaintbench.analysis.fmt import html_escape
        from inpaintbench.analysis.leaderboard import leaderboard_html, leaderboard_table

        where = str(self.path) if self.path is not None else "in memory (save with .save(dir))"
        head = (f"<p><b>{html_escape(self.name)}</b> · {html_escape(self.run.dataset_name)} · "
                f"{html_escape(self.run.mask_name)} · N = {self.run.n} · {html_escape(where)}</p>")
        return head + leaderboard_html(leaderboard_table([self.run], allow_mixed=True))

    def __repr__(self) -> str:
        s = self.summary
        parts = [f"{m} {v:.4g}" for m, v in s["value"].items() if np.isfinite(v)]
        where = self.path if self.path is not None else "in memory"
        return f"<Results {self.name}: N={self.run.n} ({self.run.n_failed} failed), {', '.join(parts)}; {where}>"


def _shown(fig: Any) -> Any:
    """Attach a PNG repr so that a notebook cell ending in the figure shows it on any backend."""
    from inpaintbench.analysis.plots import figure_bytes

    fig._repr_png_ = lambda: figure_bytes(fig, "png")  # type: ignore[attr-defined]
    return fig


def load(run_dir: str | os.PathLike[str]) -> Results:
    """Open a finished run directory written by ``inpaintbench run``/``score`` or :meth:`Results.save`."""
    return Results(load_run(run_dir))
