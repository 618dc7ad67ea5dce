"""Tables (rich, md, csv, html) and the small-multiples figure of `inpaintbench sanity`."""

from __future__ import annotations

import math
from typing import Any

from inpaintbench.analysis import fmt
from inpaintbench.analysis.sanity import DESCRIPTIONS, SEVERITIES
from inpaintbench.analysis.sanity_eval import SanityResult
from inpaintbench.errors import InputError

FORMATS = ("rich", "md", "csv", "html")
_COLS = ["Metric", "Degradation", "N", "ρ (severity, damage)", "Ranking kept", "Detected at", "Mean at s1..s4"]


def _detected(row: Any) -> str:
    det = row["detected_at"]
    inv = row["inverted_at"]
    text = f"s{int(det)}" if det is not None and not _isnan(det) else f"none up to s{SEVERITIES[-1]}"
    if inv is not None and not _isnan(inv):
        text += f" (inverted at s{int(inv)})"
    return text


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _rows(r: SanityResult) -> list[list[str]]:
    out = []
    for _, row in r.table.iterrows():
        m = row["metric"]
        if row["kind"] == "set":
            kept = "yes" if row["kept"] == 1 else "no"
        else:
            kept = "—" if _isnan(row["kept"]) else f"{100 * row['kept']:.0f}%"
        out.append([fmt.header(m), str(row["degradation"]), str(int(row["n"])),
                    _fmt_rho(row["rho"]), kept, _detected(row),
                    " / ".join(fmt.num(v, m) for v in row["means"])])
    return out


def _fmt_rho(v: float) -> str:
    return "—" if _isnan(v) else f"{v:+.2f}"


def _header(r: SanityResult) -> list[str]:
    return [
        f"{r.n} images of {r.data} with masks {r.masks}; the ground truth degraded inside the holes only, "
        f"severities 1..{SEVERITIES[-1]} ({'; '.join(f'{k}: {v}' for k, v in DESCRIPTIONS.items())}).",
        "ρ: Spearman between severity and damage (signed by the metric's direction, +1 = worse score at every "
        "step; mean over images for per-image metrics). Ranking kept: images whose scores are strictly ordered. "
        "Detected at: the smallest severity compare tells from severity 1 (Holm, bootstrap CI).",
        f"Scored sets: {r.out_dir}",
    ]


def render_sanity(r: SanityResult, fmt_name: str = "md") -> str:
    rows = _rows(r)
    if fmt_name == "csv":
        t = r.table.copy()
        t["means"] = [";".join(f"{v:.10g}" for v in ms) for ms in t["means"]]
        t.insert(0, "masks", r.masks)
        t.insert(0, "data", r.data)
        return t.to_csv(index=False, float_format="%.10g", lineterminator="\n")
    if fmt_name == "md":
        lines = ["# Metric sanity checks", ""] + [f"- {fmt.md_escape(h)}" for h in _header(r)] + [""]
        lines += ["| " + " | ".join(_COLS) + " |", "|:---|:---|" + "---:|" * 3 + ":---|---:|"]
        lines += ["| " + " | ".join(fmt.md_escape(x) for x in row) + " |" for row in rows]
        if r.notes:
            lines += ["", "Notes:", ""] + [f"- {fmt.md_escape(n)}" for n in r.notes]
        return "\n".join(lines) + "\n"
    if fmt_name == "html":
        e = fmt.html_escape
        parts = ["<ul>" + "".join(f"<li>{e(h)}</li>" for h in _header(r)) + "</ul>",
                 '<div class="scroll"><table class="sanity"><thead><tr>'
                 + "".join(f"<th>{e(h)}</th>" for h in _COLS) + "</tr></thead><tbody>"]
        for row in rows:
            parts.append(f'<tr><td class="model">{e(row[0])}</td><td>{e(row[1])}</td>'
                         + "".join(f'<td class="num">{e(x)}</td>' for x in row[2:]) + "</tr>")
        parts.append("</tbody></table></div>")
        if r.notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in r.notes) + "</ul>")
        return "\n".join(parts)
    if fmt_name == "rich":
        from rich.console import Console

        console = Console(record=True, width=200, force_terminal=False, color_system=None)
        for item in rich_sanity(r):
            console.print(item)
        return console.export_text()
    raise InputError(f"unknown sanity format {fmt_name!r}", f"use one of: {', '.join(FORMATS)}")


def rich_sanity(r: SanityResult) -> list[Any]:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="Metric sanity checks", caption=_header(r)[1])
    for h in _COLS:
        t.add_column(h, justify="left" if h in ("Metric", "Degradation", "Detected at") else "right")
    for row in _rows(r):
        t.add_row(*[escape(x) for x in row])
    return [escape(_header(r)[0]), t, escape(_header(r)[2])] + [f"[yellow]•[/] {escape(n)}" for n in r.notes]


def plot_sanity(r: SanityResult) -> Any:
    """One panel per metric: mean score against severity, one line per degradation (small multiples)."""
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(r.table["metric"]))
    if not metrics:
        raise InputError("no metric was scored", "check --metrics and the weights (inpaintbench env)")
    cols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(3.4 * cols, 2.7 * nrows), layout="constrained")
    for k, m in enumerate(metrics):
        ax = fig.add_subplot(nrows, cols, k + 1)
        for _, row in r.table[r.table["metric"] == m].iterrows():
            ax.plot(list(SEVERITIES), row["means"], marker="o", ms=3, label=str(row["degradation"]))
        ax.set_title(fmt.header(m), fontsize=9)
        ax.set_xticks(list(SEVERITIES))
        ax.set_xlabel("severity")
        if k == 0:
            ax.legend(fontsize=7)
    return fig
