"""Rendering of the leaderboard tables built by :mod:`inpaintbench.analysis.leaderboard`: Markdown,
CSV, LaTeX (booktabs), HTML and rich (terminal).

Split from the table building so each module has one job: the renderers only read the DataFrames
(and their ``attrs``) that :func:`~inpaintbench.analysis.leaderboard.leaderboard_table` and
:func:`~inpaintbench.analysis.leaderboard.bins_table` return, and never compute a number.
:mod:`inpaintbench.analysis.leaderboard` re-exports the public names.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from inpaintbench.analysis import fmt
from inpaintbench.analysis.html_page import html_page
from inpaintbench.analysis.load import PER_IMAGE_METRICS, SET_METRICS
from inpaintbench.analysis.ranking import RULE
from inpaintbench.masks.bins import BIN_LABELS

__all__ = ["FORMATS", "leaderboard_html", "render_leaderboard", "rich_tables"]

FORMATS = ("rich", "md", "csv", "latex", "html")
_FIELDS = ("ci_low", "ci_high", "n", "n_nonfinite", "best", "tied")


def _metrics_of(df: pd.DataFrame) -> list[str]:
    ms = df.attrs.get("metrics")
    if ms:
        return list(ms)
    return [m for m in PER_IMAGE_METRICS + SET_METRICS if m in df.columns]


def _cell(row: pd.Series, m: str) -> tuple[str, str, bool, bool, bool]:
    """(mean text, CI text, best?, tied?, has excluded non-finite values?)."""
    k = row.get(f"{m}_n_nonfinite", 0.0)
    return (
        fmt.num(row[m], m),
        fmt.ci(row[f"{m}_ci_low"], row[f"{m}_ci_high"], m),
        bool(row.get(f"{m}_best", False)),
        bool(row.get(f"{m}_tied", False)),
        bool(isinstance(k, float) and math.isfinite(k) and k > 0),
    )


def _marked(mean: str, best: bool, tied: bool, style: str) -> str:
    """The mean with its best (bold / ★) or tied (≈) marker in one output format."""
    if best:
        return {"md": f"**{mean}**", "latex": f"\\textbf{{{mean}}}", "rich": f"[bold green]{mean} ★[/]"}.get(
            style, mean
        )
    if tied:
        return (r"$\approx$" if style == "latex" else fmt.TIED) + mean
    return mean


def _notes(df: pd.DataFrame, bins: pd.DataFrame | None) -> list[str]:
    """The table's notes, then the per-bin ones it does not already say."""
    notes = list(df.attrs.get("notes") or [])
    extra = (bins.attrs.get("notes") or []) if bins is not None else []
    return notes + [n for n in extra if n not in notes]


def _model_text(row: pd.Series) -> str:
    return str(row["model"]) + ("" if row["comparable"] else " †")


def _caption(df: pd.DataFrame, best: str = "bold") -> str:
    groups = df.attrs.get("groups") or []
    where = "; ".join(groups) if groups else ""
    rule = RULE.replace("bold", best, 1)
    return (f"{where}. Mean [95% bootstrap CI]; ↑ higher is better, ↓ lower is better; {rule}.").lstrip(". ")


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
            mean, ci, best, tied, nf = _cell(row, m)
            cells.append(f"{_marked(mean, best, tied, 'md')} {ci}".strip() + (" ‡" if nf else ""))
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
                    shown = _marked(mean, r["best"], r["tied"], "md")
                    out.append(f"{shown} {fmt.ci(r['ci_low'], r['ci_high'], m)}".strip())
                lines.append(f"| {fmt.md_escape(model)} | " + " | ".join(out) + " |")
    notes = _notes(df, bins)
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
            mean, ci, best, tied, nf = _cell(row, m)
            text = _marked(mean, best, tied, "latex")
            if ci:
                text += f" {{\\scriptsize {ci}}}"
            cells.append(text + (" \\textdaggerdbl{}" if nf else ""))
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    notes = _notes(df, bins)
    if notes:
        lines += ["\\par\\smallskip{\\footnotesize " + " \\\\ ".join(esc(n) for n in notes) + "}"]
    lines.append("\\end{table}")
    if bins is not None and not bins.empty:
        cols = _bin_cols(bins)
        lines += [
            "",
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{By hole-ratio bin: mean [95\\% bootstrap CI]; {esc(RULE)}.}}",
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
                    text = _marked(mean, r["best"], r["tied"], "latex")
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
            mean, ci, best, tied, nf = _cell(row, m)
            cls = "num best" if best else ("num tied" if tied else "num")
            mark = " ‡" if nf else ""
            shown = e(_marked(mean, best, tied, "html"))
            cells.append(f'<td class="{cls}">{shown}{mark}<br><span class="ci">{e(ci)}</span></td>')
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    notes = _notes(df, bins)
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    if bins is not None and not bins.empty:
        parts.append(bins_html(bins))
    return "\n".join(parts)


def bins_html(bins: pd.DataFrame) -> str:
    """HTML fragment of the per-bin tables alone: samples per bin, then one table per metric."""
    e = fmt.html_escape
    parts: list[str] = []
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
                cls = "num best" if r["best"] else ("num tied" if r["tied"] else "num")
                shown = _marked(fmt.num(r["mean"], m), r["best"], r["tied"], "html")
                tds.append(
                    f'<td class="{cls}">{e(shown)}<br><span class="ci">'
                    f"{e(fmt.ci(r['ci_low'], r['ci_high'], m))}</span></td>"
                )
            parts.append("<tr>" + "".join(tds) + "</tr>")
        parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _render_html(df: pd.DataFrame, bins: pd.DataFrame | None) -> str:
    return html_page("inpaintbench leaderboard", "<h1>Leaderboard</h1>\n" + leaderboard_html(df, bins))


def rich_tables(df: pd.DataFrame, bins: pd.DataFrame | None = None) -> list[Any]:
    """The leaderboard as rich renderables (main table, per-bin tables, notes)."""
    ms = _metrics_of(df)
    mixed = bool(df.attrs.get("mixed"))
    table = Table(title="Leaderboard", caption=_caption(df, "★"), show_lines=False)
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
            mean, ci, best, tied, nf = _cell(row, m)
            text = _marked(mean, best, tied, "rich")
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
                        _marked(mean, r["best"], r["tied"], "rich")
                        + (f"\n[dim]{ci}[/]" if ci else "")
                    )
                bt.add_row("", fmt.header(m), *row_cells)
            bt.add_section()
        out.append(bt)
    for n in _notes(df, bins):
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
