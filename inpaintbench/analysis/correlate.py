"""Do the metrics agree? Correlations between per-image metrics (and the hole ratio), and agreement
between the model rankings that different metrics imply.

Per-image correlations are computed within each run (one model's images), because pooling models
would mix "this image is hard" with "this model is worse".
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from inpaintbench.analysis import fmt
from inpaintbench.analysis.load import Run, as_runs
from inpaintbench.analysis.stats import DEFAULT_ALPHA, correlation
from inpaintbench.analysis.tables import leaderboard_table
from inpaintbench.errors import InputError
from inpaintbench.metrics.info import is_higher_better

METHODS = ("pearson", "spearman", "kendall")


def variables(run: Run, metrics: Sequence[str] | None = None) -> list[str]:
    """Per-image metrics present in the run (or the requested ones), then ``hole_ratio``."""
    ms = [m for m in (metrics or run.per_image_metrics) if m in run.per_image_metrics]
    return ms + (["hole_ratio"] if "hole_ratio" in run.rows.columns else [])


def correlation_table(
    runs: Sequence[Run | str | os.PathLike[str]],
    metrics: Sequence[str] | None = None,
    methods: Sequence[str] = METHODS,
    n_boot: int = 1000,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> pd.DataFrame:
    """Long table: ``model, x, y, method, r, ci_low, ci_high, p, n, n_excluded, ci_method``.

    One row per run, pair of variables (per-image metrics and hole ratio) and method, over the
    run's successful samples; pairs with a non-finite value are excluded and counted.
    """
    runs = as_runs(runs)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InputError(
            f"unknown correlation method(s) {', '.join(bad)}", f"use some of: {', '.join(METHODS)}"
        )
    records = []
    for r in runs:
        ok = r.ok_rows
        vs = variables(r, metrics)
        for k, (x, y) in enumerate(itertools.combinations(vs, 2)):
            for method in methods:
                c = correlation(
                    ok[x].to_numpy(np.float64),
                    ok[y].to_numpy(np.float64),
                    method,
                    n_boot=n_boot,
                    alpha=alpha,
                    seed=seed + k,
                )
                records.append(
                    {
                        "model": r.label,
                        "x": x,
                        "y": y,
                        "method": method,
                        "r": c.r,
                        "ci_low": c.ci_low,
                        "ci_high": c.ci_high,
                        "p": c.p,
                        "n": c.n,
                        "n_excluded": c.n_excluded,
                        "ci_method": c.ci_method,
                    }
                )
    cols = ["model", "x", "y", "method", "r", "ci_low", "ci_high", "p", "n", "n_excluded", "ci_method"]
    return pd.DataFrame.from_records(records, columns=cols)


def correlation_matrix(table: pd.DataFrame, model: str, method: str = "spearman") -> pd.DataFrame:
    """Square matrix of ``r`` for one run and method (1 on the diagonal)."""
    sub = table[(table["model"] == model) & (table["method"] == method)]
    names = list(dict.fromkeys(list(sub["x"]) + list(sub["y"])))
    mat = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for _, row in sub.iterrows():
        mat.loc[row["x"], row["y"]] = row["r"]
        mat.loc[row["y"], row["x"]] = row["r"]
    return mat


def metric_ranks(
    runs: Sequence[Run | str | os.PathLike[str]],
    allow_mixed: bool = False,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rank of each run (rows) under each metric (columns): 1 = best, ties share the mean rank."""
    runs = as_runs(runs)
    lb = leaderboard_table(runs, allow_mixed=allow_mixed)
    ms = [m for m in (metrics or lb.attrs["metrics"]) if m in lb.columns]
    ranks = {}
    for m in ms:
        vals = lb[m].to_numpy(np.float64)
        if not np.isfinite(vals).all():
            continue
        ranks[m] = sps.rankdata(-vals if is_higher_better(m) else vals)
    return pd.DataFrame(ranks, index=lb["model"].to_list())


def ranking_agreement(
    runs: Sequence[Run | str | os.PathLike[str]],
    allow_mixed: bool = False,
    metrics: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ranks, tau, p): Kendall's tau-b between the model rankings each pair of metrics implies.

    Needs at least 3 runs on the same data for a tau that can say anything (with 2, tau = ±1).
    """
    ranks = metric_ranks(runs, allow_mixed=allow_mixed, metrics=metrics)
    names = list(ranks.columns)
    tau = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    pv = pd.DataFrame(np.zeros((len(names), len(names))), index=names, columns=names)
    for x, y in itertools.combinations(names, 2):
        if len(ranks) < 2 or np.ptp(ranks[x]) == 0 or np.ptp(ranks[y]) == 0:
            t, p = math.nan, math.nan
        else:
            res = sps.kendalltau(ranks[x], ranks[y])
            t, p = float(res.statistic), float(res.pvalue)
        tau.loc[x, y] = tau.loc[y, x] = t
        pv.loc[x, y] = pv.loc[y, x] = p
    return ranks, tau, pv


# --- rendering --------------------------------------------------------------------------------------
def render_correlations(
    table: pd.DataFrame, fmt_name: str = "md", ranking: pd.DataFrame | None = None
) -> str:
    """Correlation table as ``csv`` (long, all numbers) or ``md``/``rich`` (r [CI] per pair and method)."""
    if fmt_name == "csv":
        return table.to_csv(index=False, float_format="%.10g", lineterminator="\n")
    if fmt_name not in ("md", "rich", "html"):
        raise InputError(f"unknown correlation format {fmt_name!r}", "use one of: rich, md, csv, html")
    rows = _pair_rows(table)
    methods = [m for m in METHODS if m in set(table["method"])]
    head = ["Model", "X", "Y", "N"] + [f"{m.capitalize()} r [95% CI]" for m in methods]
    if fmt_name == "html":
        return correlations_html(table, ranking)
    if fmt_name == "rich":
        from rich.console import Console
        from rich.table import Table

        t = Table(title="Correlations between per-image metrics (per run)")
        for h in head:
            t.add_column(h, justify="left" if h in ("Model", "X", "Y") else "right")
        for row in rows:
            t.add_row(*row)
        console = Console(record=True, width=200, force_terminal=False, color_system=None)
        console.print(t)
        if ranking is not None:
            console.print(_ranking_md(ranking))
        return console.export_text()
    lines = [
        "# Correlations",
        "",
        "Per run, over successful samples; Pearson CI by Fisher z, Spearman/Kendall CI by bootstrap.",
        "",
        "| " + " | ".join(head) + " |",
        "|:---|:---|:---|---:|" + "---:|" * len(methods),
    ]
    lines += ["| " + " | ".join(fmt.md_escape(c) for c in row) + " |" for row in rows]
    excl = table[table["n_excluded"] > 0].drop_duplicates(["model", "x", "y"])
    if len(excl):
        lines += ["", "Non-finite values excluded:", ""]
        lines += [
            f"- {fmt.md_escape(r['model'])}: {fmt.label(r['x'])} vs {fmt.label(r['y'])}: "
            f"{int(r['n_excluded'])} pair(s)"
            for _, r in excl.iterrows()
        ]
    if ranking is not None:
        lines += ["", _ranking_md(ranking)]
    return "\n".join(lines) + "\n"


def _pair_rows(table: pd.DataFrame) -> list[list[str]]:
    methods = [m for m in METHODS if m in set(table["method"])]
    rows = []
    for (model, x, y), g in table.groupby(["model", "x", "y"], sort=False):
        by = {r["method"]: r for _, r in g.iterrows()}
        n = int(g["n"].iloc[0])
        cells = []
        for m in methods:
            r = by.get(m)
            cells.append("—" if r is None else f"{_r(r['r'])} {_ci(r['ci_low'], r['ci_high'])}".strip())
        rows.append([str(model), fmt.label(x), fmt.label(y), str(n)] + cells)
    return rows


def _r(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:+.3f}"


def _ci(lo: float, hi: float) -> str:
    return "" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:+.3f}, {hi:+.3f}]"


def _ranking_md(ranking: pd.DataFrame) -> str:
    names = list(ranking.columns)
    lines = [
        "## Agreement between metric rankings (Kendall's tau-b across models)",
        "",
        "| | " + " | ".join(fmt.header(n) for n in names) + " |",
        "|:---|" + "---:|" * len(names),
    ]
    for a in names:
        lines.append(f"| {fmt.header(a)} | " + " | ".join(_r(ranking.loc[a, b]) for b in names) + " |")
    return "\n".join(lines)


def correlations_html(table: pd.DataFrame, ranking: pd.DataFrame | None = None) -> str:
    """HTML fragment: the pairs table, then the ranking-agreement table when given."""
    return pairs_html(table) + ("\n" + ranking_html(ranking) if ranking is not None else "")


def pairs_html(table: pd.DataFrame) -> str:
    e = fmt.html_escape
    methods = [m for m in METHODS if m in set(table["method"])]
    head = ["Model", "X", "Y", "N"] + [f"{m.capitalize()} r [95% CI]" for m in methods]
    parts = [
        '<div class="scroll"><table class="corr"><thead><tr>'
        + "".join(f"<th>{e(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
    ]
    for row in _pair_rows(table):
        parts.append(
            "<tr>"
            + "".join(f"<td>{e(c)}</td>" for c in row[:3])
            + "".join(f'<td class="num">{e(c)}</td>' for c in row[3:])
            + "</tr>"
        )
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def ranking_html(ranking: pd.DataFrame) -> str:
    e = fmt.html_escape
    names = list(ranking.columns)
    parts = [
        "<h3>Agreement between metric rankings (Kendall's tau-b across models)</h3>",
        '<div class="scroll"><table class="corr"><thead><tr><th></th>'
        + "".join(f"<th>{e(fmt.header(n))}</th>" for n in names)
        + "</tr></thead><tbody>",
    ]
    for a in names:
        parts.append(
            f"<tr><th>{e(fmt.header(a))}</th>"
            + "".join(f'<td class="num">{e(_r(ranking.loc[a, b]))}</td>' for b in names)
            + "</tr>"
        )
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


__all__ = [
    "METHODS",
    "correlation_matrix",
    "correlation_table",
    "correlations_html",
    "pairs_html",
    "ranking_html",
    "metric_ranks",
    "ranking_agreement",
    "render_correlations",
    "variables",
]
