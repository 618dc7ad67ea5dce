"""One self-contained HTML report: opens offline, no external scripts, fonts or images.

CSS is inline, figures are embedded as base64 PNG data URIs, and the only script is an inline
error hook that writes a marker into the page (so a headless browser test can see JS errors).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpaintbench import __version__
from inpaintbench.analysis import fmt
from inpaintbench.analysis.compare import compare_many, comparison_html
from inpaintbench.analysis.correlate import (
    correlation_matrix,
    correlation_table,
    pairs_html,
    ranking_agreement,
    ranking_html,
)
from inpaintbench.analysis.leaderboard import bins_table, leaderboard_html, leaderboard_table
from inpaintbench.analysis.load import Run, load_runs
from inpaintbench.errors import InputError
from inpaintbench.results import atomic_write_bytes

ERROR_MARKER = "inpaintbench-js-error"

CSS = """
:root { --fg:#1d1d1f; --muted:#5f6368; --line:#d9d9de; --accent:#0072B2; --best:#e6f2ea; --warn:#D55E00; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       color: var(--fg); margin: 0; background: #fafafa; line-height: 1.45; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 1.8rem; margin: 0 0 4px; }
h2 { font-size: 1.35rem; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--accent); }
h3 { font-size: 1.05rem; margin: 22px 0 8px; }
p.meta, p.caption { color: var(--muted); margin: 4px 0 12px; }
nav { margin: 12px 0 8px; font-size: .95rem; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: .9rem; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { border-bottom: 2px solid #999; text-align: left; background: #f4f5f7; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.model { font-weight: 600; white-space: nowrap; }
td.best { background: var(--best); font-weight: 700; }
td.tied { background: #f1f3f5; font-style: italic; }  /* ≈: not distinguishable from the best */
span.ci { color: var(--muted); font-size: .8rem; font-weight: 400; }
td.better-a, td.better-b { font-weight: 700; color: #00694d; }
td.nodiff { color: var(--muted); }
ul.notes { color: var(--muted); font-size: .88rem; }
ul.verdicts li { margin: 2px 0; }
.warn { color: var(--warn); font-weight: 600; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .88rem; }
details { margin: 6px 0; border: 1px solid var(--line); border-radius: 4px; padding: 6px 10px; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f4f5f7; padding: 10px; overflow-x: auto; font-size: .8rem; }
"""

_ERROR_HOOK = (
    "<script>(function(){function mark(m){var d=document.createElement('div');"
    f"d.id='{ERROR_MARKER}';d.setAttribute('data-error',String(m));d.textContent='JS error: '+m;"
    "(document.body||document.documentElement).appendChild(d);}"
    "window.addEventListener('error',function(e){mark(e.message||'error');});"
    "var ce=console.error;console.error=function(){mark(Array.prototype.join.call(arguments,' '));"
    "if(ce){ce.apply(console,arguments);}};})();</script>"
)


def html_page(title: str, body: str) -> str:
    """A complete standalone HTML document with the report's inline CSS and error hook."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{fmt.html_escape(title)}</title>\n{_ERROR_HOOK}\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _img(fig: Any, alt: str, caption: str = "") -> str:
    from inpaintbench.analysis.plots import figure_bytes

    data = base64.b64encode(figure_bytes(fig, "png")).decode("ascii")
    cap = f"<figcaption>{fmt.html_escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{fmt.html_escape(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def build_report(
    runs: Sequence[Run | str | os.PathLike[str]],
    allow_mixed: bool = False,
    pairs: str = "best",
    reference_metric: str | None = None,
    n_boot: int = 1000,
    set_n_boot: int = 200,
    ids_n_boot: int = 50,
    grid_ids: Sequence[str] | None = None,
    grid_auto: int = 3,
    ground_truth: Any = None,
    seed: int = 0,
    humans_db: str | os.PathLike[str] | None = None,
) -> str:
    """The report as an HTML string (see :func:`write_report` to save it).

    With ``humans_db`` (a judgments database from ``inpaintbench rate``) it gains a "Human judgments"
    section: win rates, Bradley–Terry scores, rater agreement and the metrics' 2AFC agreement.
    """
    from inpaintbench.analysis.plots import plot_bins, plot_correlation_heatmap, plot_correlations, plot_grid

    runs = list(runs) if all(isinstance(r, Run) for r in runs) else load_runs(runs)  # type: ignore[arg-type]
    e = fmt.html_escape
    lb = leaderboard_table(runs, allow_mixed=allow_mixed)
    bins = bins_table(runs, allow_mixed=allow_mixed)
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections: list[str] = []
    nav = [
        ("leaderboard", "Leaderboard"),
        ("significance", "Significance"),
        ("correlations", "Correlations"),
        ("bins", "By hole ratio"),
        ("grids", "Comparison grids"),
        ("runs", "Runs"),
    ]
    if humans_db is not None:
        nav.insert(3, ("humans", "Human judgments"))
    head = [
        "<h1>inpaintbench report</h1>",
        f'<p class="meta">{len(runs)} run(s) · generated {e(created)} by inpaintbench {e(__version__)}</p>',
        "<nav>" + "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in nav) + "</nav>",
    ]
    if lb.attrs.get("mixed"):
        head.append(
            '<p class="warn">Mixed data: these runs use different datasets or mask sets; '
            "rows from different groups are not comparable.</p>"
        )

    sections.append('<section id="leaderboard"><h2>Leaderboard</h2>' + leaderboard_html(lb) + "</section>")

    # Significance
    sig = ['<section id="significance"><h2>Significance</h2>']
    if len(runs) < 2:
        sig.append("<p>Only one run: nothing to compare.</p>")
    else:
        groups: dict[tuple[str, str], list[Run]] = {}
        for r in runs:
            groups.setdefault(r.group_key, []).append(r)
        what = "every pair of runs" if pairs == "all" else "the best run against each other run"
        sig.append(
            f'<p class="caption">Paired tests of {e(what)} on shared samples: Wilcoxon signed-rank '
            "and a paired bootstrap CI per per-image metric, bootstrap over images for FID/KID/IDS, "
            "Holm-corrected across metrics.</p>"
        )
        for g in groups.values():
            if len(g) < 2:
                continue
            comps = compare_many(
                g,
                mode=pairs,
                reference_metric=reference_metric,
                alpha=0.05,
                n_boot=n_boot,
                set_n_boot=set_n_boot,
                ids_n_boot=ids_n_boot,
                seed=seed,
            )
            for c in comps:
                sig.append(f"<h3>{e(c.label_a)} vs {e(c.label_b)}</h3>" + comparison_html(c))
        if len(sig) == 2:
            sig.append("<p>No two runs share a dataset and mask set: nothing to compare.</p>")
    sig.append("</section>")
    sections.append("".join(sig))

    # Correlations
    corr = ['<section id="correlations"><h2>Correlations</h2>']
    ctab = correlation_table(runs, n_boot=n_boot, seed=seed)
    if ctab.empty:
        corr.append("<p>Fewer than two per-image variables: no correlations.</p>")
    else:
        mats = {r.label: correlation_matrix(ctab, r.label, "spearman") for r in runs}
        mats = {k: v for k, v in mats.items() if len(v) >= 2}
        if mats:
            corr.append(
                _img(
                    plot_correlation_heatmap(mats, "Spearman correlation of per-image metrics"),
                    "Spearman correlation matrices",
                )
            )
        try:
            corr.append(
                _img(
                    plot_correlations(runs, seed=seed),
                    "scatter matrix of per-image metrics",
                    "Scatter matrix with quadratic fits and 95% confidence bands.",
                )
            )
        except InputError as exc:
            corr.append(f"<p>{e(exc.message)}</p>")
        ranking = None
        if len(runs) >= 3 and not lb.attrs.get("mixed"):
            _, ranking, _ = ranking_agreement(runs)
        corr.append(
            "<details><summary>All pairs: Pearson (Fisher-z CI), Spearman and Kendall "
            "(bootstrap CIs), per run</summary>" + pairs_html(ctab) + "</details>"
        )
        if ranking is not None:
            corr.append(ranking_html(ranking))
        if ranking is None:
            corr.append('<p class="caption">Ranking agreement needs at least 3 runs on the same data.</p>')
    corr.append("</section>")
    sections.append("".join(corr))

    if humans_db is not None:
        sections.append(_humans_section(runs, humans_db, n_boot, seed))

    # Per-bin
    b = ['<section id="bins"><h2>By hole ratio</h2>']
    if bins.empty:
        b.append("<p>No per-bin results in these runs.</p>")
    else:
        b.append(_img(plot_bins(runs, allow_mixed=allow_mixed), "metrics by hole-ratio bin"))
        b.append(_bins_only_html(lb, bins))
    b.append("</section>")
    sections.append("".join(b))

    # Grids
    gsec = ['<section id="grids"><h2>Comparison grids</h2>']
    without = [r for r in runs if r.images_dir is None]
    if without:
        gsec.append(
            "<p>Predicted images were not saved for "
            + e(", ".join(r.label for r in without))
            + ". Re-run <code>inpaintbench run</code> with <code>--save-images</code> to include them in "
            "comparison grids.</p>"
        )
    for g in _groups([r for r in runs if r.images_dir is not None]):
        try:
            fig, notes = plot_grid(g, sample_ids=grid_ids, n_auto=grid_auto, ground_truth=ground_truth)
            gsec.append(_img(fig, "comparison grid", " ".join(notes)))
        except InputError as exc:
            gsec.append(f"<p>{e(exc.message)}</p>")
    gsec.append("</section>")
    sections.append("".join(gsec))

    # Runs / manifests
    rs = ['<section id="runs"><h2>Runs</h2>']
    for r in runs:
        m = r.manifest
        versions = m.get("versions") or {}
        summary_line = (
            f"{r.label} — run {r.run_id}, dataset {r.dataset_name} ({r.dataset_digest[:12]}), "
            f"masks {r.mask_name} ({r.masks_digest[:12]}), N={r.n}"
        )
        rs.append(f"<details><summary>{e(summary_line)}</summary>")
        rs.append(
            f"<p>Path: <code>{e(str(r.path))}</code>; command: "
            f"<code>{e(' '.join(map(str, m.get('command') or [])))}</code></p>"
        )
        if versions:
            rs.append(
                "<table><thead><tr><th>component</th><th>version</th></tr></thead><tbody>"
                + "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in versions.items())
                + "</tbody></table>"
            )
        rs.append(f"<pre>{e(json.dumps(m, indent=2, sort_keys=True, default=str))}</pre></details>")
    rs.append("</section>")
    sections.append("".join(rs))

    return html_page("inpaintbench report", "\n".join(head + sections))


def _humans_section(runs: Sequence[Run], humans_db: str | os.PathLike[str], n_boot: int, seed: int) -> str:
    """Human judgments of these runs: the tables of ``inpaintbench humans`` and the agreement plot."""
    from inpaintbench.humans.analysis import analyse
    from inpaintbench.humans.render import plot_agreement, tables_html

    a = analyse(humans_db, list(runs), n_boot=n_boot, seed=seed)
    out = ['<section id="humans"><h2>Human judgments</h2>',
           f'<p class="caption">Two-alternative judgments from {fmt.html_escape(str(humans_db))} '
           "(<code>inpaintbench rate</code>).</p>", tables_html(a)]
    if len(a.agreement):
        out.append(_img(plot_agreement(a), "metric-human agreement with 95% CIs",
                        "2AFC agreement of each per-image metric with the judgments (95% bootstrap CIs over "
                        "images); dotted: chance, dashed: agreement between raters."))
    out.append("</section>")
    return "".join(out)


def _groups(runs: Sequence[Run]) -> list[list[Run]]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault(r.group_key, []).append(r)
    return list(groups.values())


def _bins_only_html(lb: Any, bins: Any) -> str:
    """Per-bin tables alone (the leaderboard fragment without the main table)."""
    full = leaderboard_html(lb, bins)
    start = full.find("<h3>")
    return full[start:] if start >= 0 else ""


def write_report(
    runs: Sequence[Run | str | os.PathLike[str]], out: str | os.PathLike[str], **kwargs: Any
) -> Path:
    """Build the report and write it atomically to ``out``; returns the path."""
    out = Path(out)
    atomic_write_bytes(out, build_report(runs, **kwargs).encode("utf-8"))
    return out
