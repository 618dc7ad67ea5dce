"""Figures: metric by hole-ratio bin, training curves, comparison grids, scatter matrix, heatmaps.

Rendering only. The style and saving are in :mod:`inpaintbench.analysis.figures`, the training-log
parser in :mod:`~inpaintbench.analysis.training_log`, ground truth and sample selection for grids in
:mod:`~inpaintbench.analysis.samples`, and the OLS band in :mod:`~inpaintbench.analysis.fits`; their
public names are re-exported here.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as sps

from inpaintbench.analysis import fmt
from inpaintbench.analysis.figures import (
    FIGURE_FORMATS,
    MARKERS,
    OKABE_ITO,
    STYLE,
    color,
    figure_bytes,
    grid_shape,
    legend,
    marker,
    new_figure,
    save_figure,
    style,
)
from inpaintbench.analysis.fits import poly_fit_band
from inpaintbench.analysis.load import PER_IMAGE_METRICS, Run, as_runs
from inpaintbench.analysis.samples import (
    DatasetGroundTruth,
    GroundTruth,
    dataset_ground_truth,
    masked_input,
    read_png,
    select_samples,
)
from inpaintbench.analysis.tables import bins_table
from inpaintbench.analysis.training_log import X_KEYS, read_training_log, select_training_keys, training_keys
from inpaintbench.errors import InputError
from inpaintbench.metrics.info import METRICS, is_higher_better

__all__ = [
    "FIGURE_FORMATS", "MARKERS", "OKABE_ITO", "STYLE", "DatasetGroundTruth", "GroundTruth", "color",
    "dataset_ground_truth", "figure_bytes", "fmt_bins", "marker", "new_figure", "plot_bins",
    "plot_correlation_heatmap", "plot_correlations", "plot_grid", "plot_training", "poly_fit_band",
    "read_training_log", "save_figure", "select_samples", "style",
]


# --- metric by hole-ratio bin ------------------------------------------------------------------------
def plot_bins(
    runs: Sequence[Run | str | os.PathLike[str]],
    metrics: Sequence[str] | None = None,
    allow_mixed: bool = False,
) -> Figure:
    """One panel per metric: mean and 95% CI per hole-ratio bin, one line per run."""
    runs = as_runs(runs)
    bins = bins_table(runs, allow_mixed=allow_mixed, metrics=metrics)
    if bins.empty:
        raise InputError(
            "these runs have no per-bin results in summary.json",
            "re-run the evaluation with this inpaintbench version",
        )
    ms = list(dict.fromkeys(bins["metric"]))
    labels = [b for b in fmt_bins(bins)]
    rows, cols = grid_shape(len(ms))
    fig = new_figure(4.0 * cols, 3.0 * rows + 0.6)
    with style():
        axes = fig.subplots(rows, cols, squeeze=False)
        models = list(dict.fromkeys(bins["model"]))
        handles: list[Any] = []
        for ax, m in zip(axes.ravel(), ms, strict=False):
            sub = bins[bins["metric"] == m]
            for k, model in enumerate(models):
                g = sub[sub["model"] == model].set_index("bin").reindex(labels)
                x = np.arange(len(labels)) + (k - (len(models) - 1) / 2) * 0.08
                mean = g["mean"].to_numpy(float)
                err = np.vstack([mean - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - mean])
                h = ax.errorbar(
                    x,
                    mean,
                    yerr=np.where(np.isfinite(err), err, 0),
                    color=color(k),
                    marker=marker(k),
                    markersize=5,
                    capsize=3,
                    linewidth=1.5,
                    label=model,
                )
                if ax is axes.ravel()[0]:
                    handles.append(h)
            ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right")
            ax.set_title(fmt.header(m))
            ax.set_xlabel("hole ratio")
            ax.set_ylabel(fmt.label(m))
        for ax in axes.ravel()[len(ms) :]:
            ax.set_visible(False)
        fig.suptitle("Metrics by hole-ratio bin (mean, 95% bootstrap CI)")
        legend(fig, handles, models)
    return fig


def fmt_bins(bins: pd.DataFrame) -> list[str]:
    from inpaintbench.masks.bins import BIN_LABELS

    present = set(bins["bin"])
    return [b for b in BIN_LABELS if b in present]


# --- training curves ---------------------------------------------------------------------------------
def _training_title(key: str) -> str:
    parts = key.split(".")
    leaf = parts[-1]
    if leaf in METRICS:
        return " ".join(parts[:-1] + [fmt.header(leaf)])
    return key


def plot_training(
    logs: Sequence[str | os.PathLike[str]],
    labels: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
) -> Figure:
    """Training curves from one or more ``metrics.jsonl``, x = kimg: one panel per key (by default the
    validation metrics; ``keys`` takes names or patterns such as ``loss.*``)."""
    frames = [read_training_log(p) for p in logs]
    if labels is None:
        labels = [Path(f.attrs["path"]).parent.name or Path(f.attrs["path"]).stem for f in frames]
        if len(set(labels)) < len(labels):
            labels = [f.attrs["path"] for f in frames]
    x = next((k for k in X_KEYS if any(k in f.columns for f in frames)), None)
    available = training_keys(frames, x)
    available = select_training_keys(available, keys)
    if not available:
        raise InputError(
            "the training log(s) have no numeric values to plot besides the x axis",
            "check that the trainer writes val/loss numbers",
        )
    rows, cols = grid_shape(len(available), 3)
    fig = new_figure(4.0 * cols, 2.8 * rows + 0.6)
    with style():
        axes = fig.subplots(rows, cols, squeeze=False)
        handles: list[Any] = []
        for ax, key in zip(axes.ravel(), available, strict=False):
            for k, (f, lab) in enumerate(zip(frames, labels, strict=True)):
                if key not in f.columns:
                    continue
                xs = f[x].to_numpy(float) if x and x in f.columns else np.arange(len(f), dtype=float)
                ys = f[key].to_numpy(float)
                keep = np.isfinite(xs) & np.isfinite(ys)
                (h,) = ax.plot(
                    xs[keep],
                    ys[keep],
                    color=color(k),
                    marker=marker(k),
                    markersize=4 if keep.sum() <= 40 else 0,
                    linewidth=1.5,
                    label=lab,
                )
                if len(handles) < len(frames) and lab not in [hh.get_label() for hh in handles]:
                    handles.append(h)
            leaf = key.split(".")[-1]
            title = _training_title(key)
            if leaf in METRICS:
                title += " (higher is better)" if is_higher_better(leaf) else " (lower is better)"
            ax.set_title(title)
            ax.set_xlabel(x or "record")
        for ax in axes.ravel()[len(available) :]:
            ax.set_visible(False)
        fig.suptitle("Training curves")
        legend(fig, handles, [h.get_label() for h in handles])
    return fig


# --- comparison grids ------------------------------------------------------------------------------
def plot_grid(
    runs: Sequence[Run | str | os.PathLike[str]],
    sample_ids: Sequence[str] | None = None,
    n_auto: int = 3,
    metric: str | None = None,
    ground_truth: GroundTruth | None = None,
) -> tuple[Figure, list[str]]:
    """Ground truth | masked input | one column per run, one row per sample.

    Rows are ``sample_ids``, or automatically the ``n_auto`` samples where the runs differ most and
    the ``n_auto`` where they differ least on ``metric`` (the usual qualitative figure). Needs images saved
    by the runner (``--save-images``). Returns the figure and notes.
    """
    runs = as_runs(runs)
    missing = [str(r.path) for r in runs if r.images_dir is None]
    if missing:
        raise InputError(
            f"no saved images in {', '.join(missing)}",
            "re-run `inpaintbench run` with --save-images to draw comparison grids",
        )
    notes: list[str] = []
    tags: dict[str, str] = {}
    if sample_ids:
        chosen = list(sample_ids)
        for r in runs:
            known = set(r.rows["sample_id"])
            unknown = [s for s in chosen if s not in known]
            if unknown:
                raise InputError(
                    f"sample id(s) {', '.join(unknown[:3])} not in {r.path}",
                    "use ids from the sample_id column of per_image.parquet",
                )
        shared = [m for m in PER_IMAGE_METRICS if all(m in r.per_image_metrics for r in runs)]
        metric = metric or next((m for m in ("lpips", "psnr", "l1") if m in shared), None)
    else:
        most, least, metric = select_samples(runs, metric, n_auto)
        chosen = most + least
        tags.update({s: "differ most" for s in most})
        tags.update({s: "differ least" for s in least})
    ground_truth = ground_truth or dataset_ground_truth()
    ref = runs[0]
    id_of = dict(zip(ref.rows["sample_id"], ref.rows["image_id"], strict=True))

    rows_data = []
    for sid in chosen:
        gt = ground_truth(ref, str(id_of[sid]))
        inp = read_png(ref.image_path(sid, "input"))
        if inp is None:
            inp = masked_input(gt, read_png(ref.image_path(sid, "mask")))
        preds = [read_png(r.image_path(sid, "pred")) for r in runs]
        rows_data.append((sid, gt, inp, preds))
    if all(gt is None for _, gt, _, _ in rows_data):
        why = getattr(ground_truth, "reason", None) or "the dataset could not be reloaded from the manifest"
        notes.append(f"ground truth not shown: {why}")
    if any(p is None for *_, preds in rows_data for p in preds):
        notes.append("some predictions were not saved (blank cells)")
    show_gt = any(gt is not None for _, gt, _, _ in rows_data)
    show_in = any(inp is not None for _, _, inp, _ in rows_data)
    col_titles = (
        (["ground truth"] if show_gt else [])
        + (["masked input"] if show_in else [])
        + [r.label for r in runs]
    )
    ncols, nrows = len(col_titles), len(rows_data)
    cell = 2.1
    fig = new_figure(cell * ncols + 1.0, (cell + 0.45) * nrows + 0.5)
    with style():
        axes = fig.subplots(nrows, ncols, squeeze=False)
        values = {k: r.rows.set_index("sample_id") for k, r in enumerate(runs)}
        for i, (sid, gt, inp, preds) in enumerate(rows_data):
            images = ([gt] if show_gt else []) + ([inp] if show_in else []) + preds
            row_values = [
                float(values[k].at[sid, metric]) if metric and sid in values[k].index else math.nan
                for k in range(len(runs))
            ]
            finite_vals = [v for v in row_values if math.isfinite(v)]
            best_value = math.nan
            if metric and len(finite_vals) > 1:
                best_value = max(finite_vals) if is_higher_better(metric) else min(finite_vals)
            for j, img in enumerate(images):
                ax = axes[i, j]
                ax.grid(False)
                ax.set_xticks([])
                ax.set_yticks([])
                for s in ax.spines.values():
                    s.set_visible(False)
                if img is not None:
                    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
                else:
                    ax.set_facecolor("#f2f2f2")
                if i == 0:
                    ax.set_title("\n".join(textwrap.wrap(col_titles[j], 22)), fontsize=10)
                k = j - (int(show_gt) + int(show_in))
                if k >= 0 and metric:
                    v = row_values[k]
                    best = math.isfinite(v) and v == best_value
                    ax.set_xlabel(
                        f"{fmt.label(metric)} {fmt.num(v, metric)}" + (" ★" if best else ""),
                        fontsize=9,
                        fontweight="bold" if best else "normal",
                    )
            row_label = "\n".join(line for part in sid.split("|") for line in textwrap.wrap(part, 22))
            if sid in tags:
                row_label += f"\n({tags[sid]})"
            axes[i, 0].set_ylabel(row_label, fontsize=9, rotation=0, ha="right", va="center", labelpad=8)
        title = "Comparison grid"
        if tags and metric:
            title += f": samples where the models differ most / least on {fmt.label(metric)}"
        fig.suptitle(title)
    return fig, notes


# --- correlations -----------------------------------------------------------------------------------
def plot_correlations(
    runs: Sequence[Run | str | os.PathLike[str]],
    metrics: Sequence[str] | None = None,
    max_points: int = 1500,
    seed: int = 0,
) -> Figure:
    """Scatter matrix of per-image metrics and hole ratio, one colour per run.

    Lower triangle: scatter with a quadratic fit and 95% band per run. Diagonal: histograms.
    Upper triangle: Spearman rho per run. Non-finite values are left out (counted in the title).
    At most ``max_points`` points per run are drawn (a seeded subsample); fits use all points.
    """
    runs = as_runs(runs)
    shared = [m for m in PER_IMAGE_METRICS if all(m in r.per_image_metrics for r in runs)]
    ms = [m for m in (metrics or shared) if m in shared]
    if not ms:
        raise InputError(
            "no per-image metric is present in every run", "pass runs scored with common metrics"
        )
    vs = ms + ["hole_ratio"]
    k = len(vs)
    size = 1.9
    fig = new_figure(size * k + 0.6, size * k + 0.9)
    rng = np.random.default_rng(seed)
    data = []
    excluded = 0
    for r in runs:
        d = r.ok_rows[vs].to_numpy(float)
        excluded += int((~np.isfinite(d)).any(axis=1).sum())
        show = np.arange(len(d))
        if len(d) > max_points:
            show = np.sort(rng.choice(len(d), size=max_points, replace=False))
        data.append((d, show))
    with style():
        axes = fig.subplots(k, k, squeeze=False)
        handles = []
        for i in range(k):
            for j in range(k):
                ax = axes[i, j]
                ax.tick_params(labelsize=7)
                if i == j:
                    for n, (d, _) in enumerate(data):
                        v = d[:, i][np.isfinite(d[:, i])]
                        if v.size:
                            ax.hist(v, bins=20, histtype="step", color=color(n), linewidth=1.3)
                    ax.set_yticks([])
                elif i > j:
                    for n, (d, show) in enumerate(data):
                        x, y = d[:, j], d[:, i]
                        ok = np.isfinite(x) & np.isfinite(y)
                        s = show[ok[show]]
                        h = ax.scatter(
                            x[s],
                            y[s],
                            s=6,
                            alpha=0.35,
                            color=color(n),
                            marker=marker(n),
                            linewidths=0,
                            label=runs[n].label,
                        )
                        if i == 1 and j == 0:
                            handles.append(h)
                        band = poly_fit_band(x[ok], y[ok])
                        if band is not None:
                            gx, fit, lo, hi = band
                            ax.fill_between(gx, lo, hi, color=color(n), alpha=0.2, linewidth=0)
                            ax.plot(gx, fit, color=color(n), linewidth=1.4)
                else:
                    ax.grid(False)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    lines = []
                    for n, (d, _) in enumerate(data):
                        x, y = d[:, j], d[:, i]
                        ok = np.isfinite(x) & np.isfinite(y)
                        if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
                            rho = sps.spearmanr(x[ok], y[ok]).statistic
                            lines.append((n, f"ρ = {rho:+.2f}"))
                    for row, (n, text) in enumerate(lines):
                        ax.text(
                            0.5,
                            0.5 + (len(lines) / 2 - row - 0.5) * 0.2,
                            text,
                            color=color(n),
                            ha="center",
                            va="center",
                            fontsize=10,
                            transform=ax.transAxes,
                        )
                if i == k - 1:
                    ax.set_xlabel(fmt.header(vs[j]) if vs[j] in METRICS else fmt.label(vs[j]))
                else:
                    ax.tick_params(labelbottom=False)
                if j == 0:
                    ax.set_ylabel(fmt.header(vs[i]) if vs[i] in METRICS else fmt.label(vs[i]))
                elif i != j:
                    ax.tick_params(labelleft=False)
        title = "Per-image metrics: scatter, quadratic fit with 95% band (lower); Spearman ρ (upper)"
        if excluded:
            title += f"\n{excluded} sample(s) with a non-finite value left out of the panels that need it"
        fig.suptitle(title)
        legend(fig, handles, [r.label for r in runs], markerscale=2.5)
    return fig


def plot_correlation_heatmap(
    matrices: pd.DataFrame | dict[str, pd.DataFrame], title: str = "Spearman correlation"
) -> Figure:
    """Annotated heatmaps of correlation matrices, one panel per run (diverging, colour-blind-safe
    PuOr on a fixed [-1, 1] scale)."""
    if isinstance(matrices, pd.DataFrame):
        matrices = {"": matrices}
    n = len(matrices)
    k = max(len(m) for m in matrices.values())
    rows, cols = grid_shape(n, 3)
    side = 0.62 * k + 1.2
    fig = new_figure(side * cols + 1.0, side * rows + 0.6)
    with style():
        axes = fig.subplots(rows, cols, squeeze=False)
        im = None
        for ax, (name, matrix) in zip(axes.ravel(), matrices.items(), strict=False):
            ax.grid(False)
            vals = matrix.to_numpy(float)
            im = ax.imshow(vals, cmap="PuOr", vmin=-1, vmax=1)
            names = [fmt.label(c) for c in matrix.columns]
            ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
            ax.set_yticks(range(len(names)), names)
            for i in range(len(names)):
                for j in range(len(names)):
                    v = vals[i, j]
                    ax.text(
                        j,
                        i,
                        "—" if not math.isfinite(v) else f"{v:+.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if math.isfinite(v) and abs(v) > 0.6 else "black",
                    )
            if name:
                ax.set_title(name)
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        if im is not None:
            fig.colorbar(im, ax=list(axes.ravel()[:n]), shrink=0.8)
        fig.suptitle(title)
    return fig
