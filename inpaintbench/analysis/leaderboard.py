"""Leaderboard: one row per run (model and mask set), mean [95% bootstrap CI] per metric, best marked.

Numbers come from each run's ``summary.json`` (what the runner printed), so the leaderboard and the
run agree to the last digit; a metric missing there is recomputed from ``per_image.parquet``.
Runs on different datasets or mask sets are never ranked together.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from inpaintbench.analysis import fmt
from inpaintbench.analysis.load import (
    PER_IMAGE_METRICS,
    SET_METRICS,
    Run,
    as_float,
    check_same_data,
    digest_groups,
    load_runs,
)
from inpaintbench.analysis.stats import bootstrap_mean_ci
from inpaintbench.masks.bins import BIN_LABELS
from inpaintbench.metrics.info import is_higher_better

FORMATS = ("rich", "md", "csv", "latex", "html")
_FIELDS = ("ci_low", "ci_high", "n", "n_nonfinite", "best")
_FID_MIN_N = 2048


def _as_runs(runs: Sequence[Run | str | os.PathLike[str]]) -> list[Run]:
    if all(isinstance(r, Run) for r in runs):
        return list(runs)  # type: ignore[arg-type]
    return load_runs(runs)


def _metric_entry(run: Run, metric: str, notes: list[str]) -> dict[str, float]:
    """mean/ci/n/n_nonfinite of a per-image metric, from the summary or recomputed."""
    entry = (run.summary.get("metrics") or {}).get(metric)
    if isinstance(entry, dict) and "mean" in entry:
        return {
            "mean": as_float(entry.get("mean")),
            "ci_low": as_float(entry.get("ci_low")),
            "ci_high": as_float(entry.get("ci_high")),
            "n": as_float(entry.get("n")),
            "n_nonfinite": as_float(entry.get("n_nonfinite", 0)),
        }
    values = run.ok_rows[metric].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    mean, lo, hi = bootstrap_mean_ci(values, n_boot=1000, seed=0)
    notes.append(
        f"{run.label}: {fmt.label(metric)} recomputed from per_image.parquet (missing in summary.json)"
    )
    return {
        "mean": mean,
        "ci_low": lo,
        "ci_high": hi,
        "n": float(finite.sum()),
        "n_nonfinite": float((~finite).sum()),
    }


def _mark_best(df: pd.DataFrame, metric: str, group_col: str = "group") -> pd.Series:
    """True where a row holds the best value of ``metric`` within its digest group.

    Non-comparable rows (``--limit`` quick looks) are only ranked when the group has nothing else;
    a group with fewer than two rankable values marks nothing.
    """
    best = pd.Series(False, index=df.index)
    higher = is_higher_better(metric)
    for _, g in df.groupby(group_col, sort=False):
        cand = g[g["comparable"]] if g["comparable"].any() else g
        vals = cand[metric].astype(float)
        vals = vals[np.isfinite(vals)]
        if len(vals) < 2:
            continue
        target = vals.max() if higher else vals.min()
        best.loc[vals.index[vals == target]] = True
    return best


def leaderboard_table(
    runs: Sequence[Run | str | os.PathLike[str]],
    allow_mixed: bool = False,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per run with ``<metric>``, ``<metric>_ci_low/_ci_high/_n/_n_nonfinite/_best`` columns.

    ``df.attrs`` holds ``metrics`` (display order), ``mixed`` (bool), ``notes`` (list of str) and
    ``groups`` (one description per dataset/mask-set combination). Raises :class:`InputError` for
    runs on different data unless ``allow_mixed``.
    """
    runs = _as_runs(runs)
    mixed = check_same_data(runs, allow_mixed, "rank these runs together")
    notes: list[str] = []
    groups = digest_groups(runs)
    group_of = {id(r): i + 1 for i, g in enumerate(groups) for r in g}

    present_pi = [m for m in PER_IMAGE_METRICS if any(m in r.per_image_metrics for r in runs)]
    present_set = [m for m in SET_METRICS if any(r.set_metric(m) is not None for r in runs)]
    wanted = list(metrics) if metrics else present_pi + present_set
    unknown = [m for m in wanted if m not in present_pi + present_set]
    if unknown:
        from inpaintbench.errors import InputError

        raise InputError(
            f"metric(s) {', '.join(unknown)} not found in these runs",
            f"use some of: {', '.join(present_pi + present_set)}",
        )

    records: list[dict[str, Any]] = []
    unavailable: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
    for r in runs:
        rec: dict[str, Any] = {
            "model": r.label,
            "run_id": r.run_id,
            "dataset": r.dataset_name,
            "dataset_digest": r.dataset_digest,
            "masks": r.mask_name,
            "masks_digest": r.masks_digest,
            "group": group_of[id(r)],
            "comparable": r.comparable,
            "n": r.n,
            "n_ok": int(r.summary.get("n_ok", len(r.ok_rows))),
            "n_failed": r.n_failed,
        }
        for m in wanted:
            if m in PER_IMAGE_METRICS:
                e = _metric_entry(r, m, notes) if m in r.per_image_metrics else None
            else:
                s = r.set_metric(m)
                e = None
                if s is not None:
                    e = {
                        "mean": s["value"],
                        "ci_low": s["ci_low"],
                        "ci_high": s["ci_high"],
                        "n": as_float(s.get("n")),
                        "n_nonfinite": 0.0,
                    }
                    if s.get("status", "ok") != "ok":
                        why = (s.get("reason") or "no reason given").removeprefix("unavailable: ")
                        unavailable.setdefault(why, ({}, {}))
                        unavailable[why][0][r.label] = None
                        unavailable[why][1][fmt.label(m)] = None
            e = e or {
                "mean": math.nan,
                "ci_low": math.nan,
                "ci_high": math.nan,
                "n": math.nan,
                "n_nonfinite": math.nan,
            }
            rec[m] = e["mean"]
            for k in ("ci_low", "ci_high", "n", "n_nonfinite"):
                rec[f"{m}_{k}"] = e[k]
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    # One note per distinct reason, not one per model x metric.
    for why, (labels, names) in unavailable.items():
        notes.append(f"{', '.join(names)} unavailable for {', '.join(labels)}: {why}")
    # A metric no run could compute gets no column (its reason is in the notes).
    wanted = [m for m in wanted if df[m].notna().any()] if len(df) else wanted
    for m in wanted:
        df[f"{m}_best"] = _mark_best(df, m)

    # Notes: everything a reader needs to not over-read the table.
    for r in runs:
        if not r.comparable:
            notes.append(f"† {r.label}: not comparable with full-protocol results (a --limit quick look)")
        if not r.finished:
            notes.append(f"{r.label}: the manifest has no finish time (interrupted run?)")
    for _, row in df.iterrows():
        for m in wanted:
            k = row[f"{m}_n_nonfinite"]
            if isinstance(k, float) and math.isfinite(k) and k > 0:
                why = " (+inf PSNR = a pixel-perfect prediction)" if m.startswith("psnr") else ""
                notes.append(
                    f"‡ {row['model']}: {int(k)} non-finite {fmt.label(m)} value(s) excluded "
                    f"from the mean{why}"
                )
    if int(df["n_failed"].sum()) > 0:
        notes.append("Failed samples are excluded from every mean; see the Failed column.")
    small = [m for m in wanted if m in SET_METRICS and (df[f"{m}_n"].dropna() < _FID_MIN_N).any()]
    if small:
        notes.append(
            f"{', '.join(fmt.label(m) for m in small)} computed on fewer than {_FID_MIN_N} images: "
            "FID is biased upward and IDS tends to 0 at small N; compare only at equal N."
        )
    if mixed:
        notes.insert(
            0,
            f"MIXED DATA: {len(groups)} different dataset/mask-set combinations (column Group). "
            "Best entries are marked within each group only; rows from different groups are "
            "not comparable.",
        )
    group_desc = [
        f"dataset {g[0].dataset_name} ({g[0].dataset_digest[:12]}), masks {g[0].mask_name} "
        f"({g[0].masks_digest[:12]})"
        for g in groups
    ]
    df.attrs = {"metrics": wanted, "mixed": mixed, "notes": notes, "groups": group_desc}
    return df


def bins_table(
    runs: Sequence[Run | str | os.PathLike[str]],
    allow_mixed: bool = False,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per hole-ratio bin, long format: ``model, run_id, group, bin, n, metric, mean, ci_low, ci_high,
    n_nonfinite, best`` (best within digest group, metric and bin)."""
    runs = _as_runs(runs)
    check_same_data(runs, allow_mixed, "rank these runs together")
    groups = digest_groups(runs)
    group_of = {id(r): i + 1 for i, g in enumerate(groups) for r in g}
    wanted = (
        list(metrics)
        if metrics
        else [m for m in PER_IMAGE_METRICS if any(m in r.per_image_metrics for r in runs)]
    )
    wanted = [m for m in wanted if m in PER_IMAGE_METRICS]
    records = []
    for r in runs:
        bins = r.summary.get("bins") or {}
        for label in BIN_LABELS:
            entry = bins.get(label)
            if not isinstance(entry, dict):
                continue
            for m in wanted:
                e = entry.get(m)
                if not isinstance(e, dict):
                    continue
                records.append(
                    {
                        "model": r.label,
                        "run_id": r.run_id,
                        "group": group_of[id(r)],
                        "comparable": r.comparable,
                        "bin": label,
                        "n": int(entry.get("n", 0)),
                        "metric": m,
                        "mean": as_float(e.get("mean")),
                        "ci_low": as_float(e.get("ci_low")),
                        "ci_high": as_float(e.get("ci_high")),
                        "n_nonfinite": as_float(e.get("n_nonfinite", 0)),
                    }
                )
    cols = [
        "model",
        "run_id",
        "group",
        "comparable",
        "bin",
        "n",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "n_nonfinite",
    ]
    df = pd.DataFrame.from_records(records, columns=cols)
    df["best"] = False
    for (_, _), g in df.groupby(["metric", "bin"], sort=False):
        sub = g.rename(columns={"mean": g["metric"].iloc[0]})
        df.loc[g.index, "best"] = _mark_best(sub, g["metric"].iloc[0])
    df.attrs = {"metrics": wanted}
    return df.drop(columns=["comparable"])


# --- rendering --------------------------------------------------------------------------------------
def _metrics_of(df: pd.DataFrame) -> list[str]:
    ms = df.attrs.get("metrics")
    if ms:
        return list(ms)
    return [m for m in PER_IMAGE_METRICS + SET_METRICS if m in df.columns]


def _cell(row: pd.Series, m: str) -> tuple[str, str, bool, bool]:
    """(mean text, CI text, best?, has excluded non-finite values?)."""
    k = row.get(f"{m}_n_nonfinite", 0.0)
    return (
        fmt.num(row[m], m),
        fmt.ci(row[f"{m}_ci_low"], row[f"{m}_ci_high"], m),
        bool(row.get(f"{m}_best", False)),
        bool(isinstance(k, float) and math.isfinite(k) and k > 0),
    )


def _model_text(row: pd.Series) -> str:
    return str(row["model"]) + ("" if row["comparable"] else " †")


def _caption(df: pd.DataFrame, best: str = "in bold") -> str:
    groups = df.attrs.get("groups") or []
    where = "; ".join(groups) if groups else ""
    return (
        f"{where}. Mean [95% bootstrap CI]; ↑ higher is better, ↓ lower is better; best per column {best}."
    ).lstrip(". ")


def _bin_cols(bins: pd.DataFrame) -> list[str]:
    present = set(bins["bin"])
    return [b for b in BIN_LABELS if b in present]


def _bin_grid(bins: pd.DataFrame, metric: str) -> tuple[list[str], list[tuple[str, dict[str, pd.Series]]]]:
    """Bin columns and, per model, the row of each bin for ``metric``."""
    cols = _bin_cols(bins)
    sub = bins[bins["metric"] == metric]
    out = []
    for model in dict.fromkeys(bins["model"]):
        cells = {r["bin"]: r for _, r in sub[sub["model"] == model].iterrows()}
        out.append((str(model), cells))
    return cols, out


def _bin_counts(bins: pd.DataFrame) -> list[tuple[str, dict[str, int]]]:
    out = []
    for model in dict.fromkeys(bins["model"]):
        g = bins[bins["model"] == model].drop_duplicates("bin")
        out.append((str(model), {r["bin"]: int(r["n"]) for _, r in g.iterrows()}))
    return out


def _render_md(df: pd.DataFrame, bins: pd.DataFrame | None) -> str:
    ms = _metrics_of(df)
    mixed = bool(df.attrs.get("mixed"))
    lines = ["# Leaderboard", "", _caption(df), ""]
    head = ["Model"] + (["Group"] if mixed else []) + ["Masks", "N", "Failed"] + [fmt.header(m) for m in ms]
    align = [":---"] + ([":---:"] if mixed else []) + [":---", "---:", "---:"] + ["---:"] * len(ms)
    lines += ["| " + " | ".join(fmt.md_escape(h) for h in head) + " |", "|" + "|".join(align) + "|"]
    for _, row in df.iterrows():
        cells = [fmt.md_escape(_model_text(row))] + ([str(row["group"])] if mixed else [])
        cells += [fmt.md_escape(row["masks"]), str(int(row["n"])), str(int(row["n_failed"]))]
        for m in ms:
            mean, ci, best, nf = _cell(row, m)
            text = f"**{mean}**" if best else mean
            cells.append(f"{text} {ci}".strip() + (" ‡" if nf else ""))
        lines.append("| " + " | ".join(cells) + " |")
    if bins is not None and not bins.empty:
        cols = _bin_cols(bins)
        lines += ["", "## By hole-ratio bin", "", "### Samples per bin", ""]
        lines += ["| Model | " + " | ".join(cols) + " |", "|:---|" + "---:|" * len(cols)]
        for model, counts in _bin_counts(bins):
            counts_text = " | ".join(str(counts.get(c, 0)) for c in cols)
            lines.append(f"| {fmt.md_escape(model)} | {counts_text} |")
        for m in bins.attrs.get("metrics") or list(dict.fromkeys(bins["metric"])):
            cols, grid = _bin_grid(bins, m)
            lines += ["", f"### {fmt.md_escape(fmt.header(m))}", ""]
            lines += ["| Model | " + " | ".join(cols) + " |", "|:---|" + "---:|" * len(cols)]
            for model, cells in grid:
                out = []
                for c in cols:
                    r = cells.get(c)
                    if r is None:
                        out.append("—")
                        continue
                    mean = fmt.num(r["mean"], m)
                    shown = f"**{mean}**" if r["best"] else mean
                    out.append(f"{shown} {fmt.ci(r['ci_low'], r['ci_high'], m)}".strip())
                lines.append(f"| {fmt.md_escape(model)} | " + " | ".join(out) + " |")
    notes = df.attrs.get("notes") or []
    if notes:
        lines += ["", "Notes:", ""] + [f"- {fmt.md_escape(n)}" for n in notes]
    return "\n".join(lines) + "\n"


def _render_csv(df: pd.DataFrame, bins: pd.DataFrame | None) -> str:
    if bins is not None:
        return bins.to_csv(index=False, float_format="%.10g", lineterminator="\n")
    ms = _metrics_of(df)
    base = [
        "model",
        "run_id",
        "dataset",
        "dataset_digest",
        "masks",
        "masks_digest",
        "group",
        "comparable",
        "n",
        "n_ok",
        "n_failed",
    ]
    cols = base + [c for m in ms for c in [m] + [f"{m}_{f}" for f in _FIELDS]]
    out = df[cols].copy()
    for m in ms:
        for f in ("n", "n_nonfinite"):
            out[f"{m}_{f}"] = out[f"{m}_{f}"].astype("Int64")
    return out.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def _render_latex(df: pd.DataFrame, bins: pd.DataFrame | None) -> str:
    ms = _metrics_of(df)
    mixed = bool(df.attrs.get("mixed"))
    esc = fmt.latex_escape
    head = ["Model"] + (["Group"] if mixed else []) + ["Masks", "N", "Failed"] + [fmt.header(m) for m in ms]
    spec = "l" + ("c" if mixed else "") + "lrr" + "r" * len(ms)
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{esc(_caption(df))}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(esc(h) for h in head) + " \\\\",
        "\\midrule",
    ]
    for _, row in df.iterrows():
        cells = [esc(_model_text(row))] + ([str(row["group"])] if mixed else [])
        cells += [esc(row["masks"]), str(int(row["n"])), str(int(row["n_failed"]))]
        for m in ms:
            mean, ci, best, nf = _cell(row, m)
            text = f"\\textbf{{{mean}}}" if best else mean
            if ci:
                text += f" {{\\scriptsize {ci}}}"
            cells.append(text + (" \\textdaggerdbl{}" if nf else ""))
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    notes = df.attrs.get("notes") or []
    if notes:
        lines += ["\\par\\smallskip{\\footnotesize " + " \\\\ ".join(esc(n) for n in notes) + "}"]
    lines.append("\\end{table}")
    if bins is not None and not bins.empty:
        cols = _bin_cols(bins)
        lines += [
            "",
            "\\begin{table}[t]",
            "\\centering",
            "\\caption{By hole-ratio bin: mean [95\\% bootstrap CI]; best per column in bold.}",
            f"\\begin{{tabular}}{{l{'r' * len(cols)}}}",
            "\\toprule",
            " & ".join(["Model"] + [esc(c) for c in cols]) + " \\\\",
        ]
        lines += ["\\midrule", f"\\multicolumn{{{len(cols) + 1}}}{{l}}{{\\emph{{Samples per bin}}}} \\\\"]
        for model, counts in _bin_counts(bins):
            lines.append(" & ".join([esc(model)] + [str(counts.get(c, 0)) for c in cols]) + " \\\\")
        for m in bins.attrs.get("metrics") or list(dict.fromkeys(bins["metric"])):
            cols, grid = _bin_grid(bins, m)
            title = esc(fmt.header(m))
            lines += ["\\midrule", f"\\multicolumn{{{len(cols) + 1}}}{{l}}{{\\emph{{{title}}}}} \\\\"]
            for model, cells in grid:
                out = [esc(model)]
                for c in cols:
                    r = cells.get(c)
                    if r is None:
                        out.append("---")
                        continue
                    mean = fmt.num(r["mean"], m)
                    text = f"\\textbf{{{mean}}}" if r["best"] else mean
                    ci = fmt.ci(r["ci_low"], r["ci_high"], m)
                    out.append(text + (f" {{\\scriptsize {ci}}}" if ci else ""))
                lines.append(" & ".join(out) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def leaderboard_html(df: pd.DataFrame, bins: pd.DataFrame | None = None) -> str:
    """HTML fragment (tables + notes, no <html> wrapper) for embedding in a page or report."""
    ms = _metrics_of(df)
    mixed = bool(df.attrs.get("mixed"))
    e = fmt.html_escape
    head = ["Model"] + (["Group"] if mixed else []) + ["Masks", "N", "Failed"] + [fmt.header(m) for m in ms]
    parts = [
        f'<p class="caption">{e(_caption(df))}</p>',
        '<div class="scroll"><table class="leaderboard">',
        "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>",
    ]
    for _, row in df.iterrows():
        cells = [f'<td class="model">{e(_model_text(row))}</td>']
        if mixed:
            cells.append(f"<td>{row['group']}</td>")
        cells += [
            f"<td>{e(row['masks'])}</td>",
            f'<td class="num">{int(row["n"])}</td>',
            f'<td class="num">{int(row["n_failed"])}</td>',
        ]
        for m in ms:
            mean, ci, best, nf = _cell(row, m)
            cls = "num best" if best else "num"
            mark = " ‡" if nf else ""
            cells.append(f'<td class="{cls}">{e(mean)}{mark}<br><span class="ci">{e(ci)}</span></td>')
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    notes = df.attrs.get("notes") or []
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    if bins is not None and not bins.empty:
        cols = _bin_cols(bins)
        parts.append("<h3>Samples per hole-ratio bin</h3>")
        parts.append(
            '<div class="scroll"><table class="bins"><thead><tr><th>Model</th>'
            + "".join(f"<th>{e(c)}</th>" for c in cols)
            + "</tr></thead><tbody>"
        )
        for model, counts in _bin_counts(bins):
            parts.append(
                f'<tr><td class="model">{e(model)}</td>'
                + "".join(f'<td class="num">{counts.get(c, 0)}</td>' for c in cols)
                + "</tr>"
            )
        parts.append("</tbody></table></div>")
        for m in bins.attrs.get("metrics") or list(dict.fromkeys(bins["metric"])):
            cols, grid = _bin_grid(bins, m)
            parts.append(f"<h3>{e(fmt.header(m))} by hole-ratio bin</h3>")
            parts.append(
                '<div class="scroll"><table class="bins"><thead><tr><th>Model</th>'
                + "".join(f"<th>{e(c)}</th>" for c in cols)
                + "</tr></thead><tbody>"
            )
            for model, cells in grid:
                tds = [f'<td class="model">{e(model)}</td>']
                for c in cols:
                    r = cells.get(c)
                    if r is None:
                        tds.append('<td class="num">—</td>')
                        continue
                    cls = "num best" if r["best"] else "num"
                    tds.append(
                        f'<td class="{cls}">{e(fmt.num(r["mean"], m))}<br><span class="ci">'
                        f"{e(fmt.ci(r['ci_low'], r['ci_high'], m))}</span></td>"
                    )
                parts.append("<tr>" + "".join(tds) + "</tr>")
            parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _render_html(df: pd.DataFrame, bins: pd.DataFrame | None) -> str:
    from inpaintbench.analysis.report import html_page

    return html_page("inpaintbench leaderboard", "<h1>Leaderboard</h1>\n" + leaderboard_html(df, bins))


def rich_tables(df: pd.DataFrame, bins: pd.DataFrame | None = None) -> list[Any]:
    """The leaderboard as rich renderables (main table, per-bin tables, notes)."""
    ms = _metrics_of(df)
    mixed = bool(df.attrs.get("mixed"))
    table = Table(title="Leaderboard", caption=_caption(df, "marked ★"), show_lines=False)
    table.add_column("Model", style="bold", no_wrap=True)
    if mixed:
        table.add_column("Group", justify="center")
    # The terminal is narrow: the mask set is in the caption unless it differs between rows.
    show_masks = df["masks"].nunique() > 1
    for h in (["Masks"] if show_masks else []) + ["N", "Failed"]:
        table.add_column(h, justify="left" if h == "Masks" else "right")
    for m in ms:
        table.add_column(fmt.header(m), justify="right", overflow="fold")
    for _, row in df.iterrows():
        cells = [_model_text(row)] + ([str(row["group"])] if mixed else [])
        cells += ([str(row["masks"])] if show_masks else []) + [str(int(row["n"])), str(int(row["n_failed"]))]
        for m in ms:
            mean, ci, best, nf = _cell(row, m)
            text = f"[bold green]{mean} ★[/]" if best else mean
            cells.append(text + (" ‡" if nf else "") + (f"\n[dim]{ci}[/]" if ci else ""))
        table.add_row(*cells)
    out: list[Any] = [table]
    if bins is not None and not bins.empty:
        cols = _bin_cols(bins)
        bt = Table(title="By hole-ratio bin (mean, 95% CI below)")
        bt.add_column("Model", style="bold", no_wrap=True)
        bt.add_column("Metric")
        for c in cols:
            bt.add_column(c, justify="right", overflow="fold")
        for model, counts in _bin_counts(bins):
            bt.add_row(model, "N", *[str(counts.get(c, 0)) for c in cols])
            for m in bins.attrs.get("metrics") or list(dict.fromkeys(bins["metric"])):
                _, grid = _bin_grid(bins, m)
                cells = dict(grid)[model]
                row_cells = []
                for c in cols:
                    r = cells.get(c)
                    if r is None:
                        row_cells.append("—")
                        continue
                    mean = fmt.num(r["mean"], m)
                    ci = fmt.ci(r["ci_low"], r["ci_high"], m)
                    row_cells.append(
                        (f"[bold green]{mean} ★[/]" if r["best"] else mean)
                        + (f"\n[dim]{ci}[/]" if ci else "")
                    )
                bt.add_row("", fmt.header(m), *row_cells)
            bt.add_section()
        out.append(bt)
    for n in df.attrs.get("notes") or []:
        out.append(f"[yellow]•[/] {n}" if not n.startswith("MIXED") else f"[bold red]•[/] {n}")
    return out


def render_leaderboard(df: pd.DataFrame, fmt_name: str = "md", bins: pd.DataFrame | None = None) -> str:
    """The leaderboard as text in one of :data:`FORMATS`.

    ``bins`` (from :func:`bins_table`) adds the per-hole-ratio-bin breakdown; for ``csv`` it
    *replaces* the main table (one CSV holds one table), in long format.
    """
    if fmt_name == "md":
        return _render_md(df, bins)
    if fmt_name == "csv":
        return _render_csv(df, bins)
    if fmt_name == "latex":
        return _render_latex(df, bins)
    if fmt_name == "html":
        return _render_html(df, bins)
    if fmt_name == "rich":
        console = Console(record=True, width=200, force_terminal=False, color_system=None)
        for item in rich_tables(df, bins):
            console.print(item)
        return console.export_text()
    from inpaintbench.errors import InputError

    raise InputError(f"unknown leaderboard format {fmt_name!r}", f"use one of: {', '.join(FORMATS)}")


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
