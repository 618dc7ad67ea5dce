"""One self-contained HTML report: opens offline, no scripts, external fonts or images.

CSS is inline (the page is :mod:`inpaintbench.analysis.html_page`, the body the jinja2 template
``templates/report.html.j2``), figures are embedded as base64 PNG data URIs. This module is the top of
the analysis layers: it only assembles what the leaderboard, compare, correlate and plots modules
compute and render.
"""

from __future__ import annotations

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
from inpaintbench.analysis.html_page import CSS, ERROR_MARKER, html_page, render_template
from inpaintbench.analysis.leaderboard_render import bins_html, leaderboard_html
from inpaintbench.analysis.load import Run, as_runs
from inpaintbench.analysis.tables import bins_table, leaderboard_table
from inpaintbench.errors import InputError
from inpaintbench.results import atomic_write_bytes

__all__ = ["CSS", "ERROR_MARKER", "build_report", "html_page", "write_report"]


def _img(fig: Any, alt: str, caption: str = "") -> str:
    """A figure as an inline ``<figure>`` HTML fragment (kept for callers; see ``figures.figure_html``)."""
    from inpaintbench.analysis.figures import figure_html

    return figure_html(fig, alt, caption)


def _figure(fig: Any, alt: str, caption: str = "") -> Any:
    """:func:`_img` marked safe for the report template."""
    from markupsafe import Markup

    return Markup(_img(fig, alt, caption))


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
    from markupsafe import Markup

    from inpaintbench.analysis.plots import plot_bins, plot_correlation_heatmap, plot_correlations, plot_grid

    runs = as_runs(runs)
    lb = leaderboard_table(runs, allow_mixed=allow_mixed)
    bins = bins_table(runs, allow_mixed=allow_mixed)
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

    comparisons = []
    if len(runs) >= 2:
        for g in _groups(runs):
            if len(g) < 2:
                continue
            for c in compare_many(g, mode=pairs, reference_metric=reference_metric, alpha=0.05, n_boot=n_boot,
                                  set_n_boot=set_n_boot, ids_n_boot=ids_n_boot, seed=seed):
                comparisons.append({"label_a": c.label_a, "label_b": c.label_b, "html": Markup(comparison_html(c))})

    correlations = None
    ctab = correlation_table(runs, n_boot=n_boot, seed=seed)
    if not ctab.empty:
        mats = {r.label: correlation_matrix(ctab, r.label, "spearman") for r in runs}
        mats = {k: v for k, v in mats.items() if len(v) >= 2}
        correlations = {"heatmap": None, "scatter": None, "scatter_error": None, "ranking": None,
                        "pairs": Markup(pairs_html(ctab))}
        if mats:
            heatmap = plot_correlation_heatmap(mats, "Spearman correlation of per-image metrics")
            correlations["heatmap"] = _figure(heatmap, "Spearman correlation matrices")
        try:
            correlations["scatter"] = _figure(plot_correlations(runs, seed=seed), "scatter matrix of per-image metrics",
                                              "Scatter matrix with quadratic fits and 95% confidence bands.")
        except InputError as exc:
            correlations["scatter_error"] = exc.message
        if len(runs) >= 3 and not lb.attrs.get("mixed"):
            _, ranking, _ = ranking_agreement(runs)
            if ranking is not None:
                correlations["ranking"] = Markup(ranking_html(ranking))

    grids = []
    for g in _groups([r for r in runs if r.images_dir is not None]):
        try:
            fig, notes = plot_grid(g, sample_ids=grid_ids, n_auto=grid_auto, ground_truth=ground_truth)
            grids.append({"figure": _figure(fig, "comparison grid", " ".join(notes)), "error": None})
        except InputError as exc:
            grids.append({"figure": None, "error": exc.message})

    run_details = []
    for r in runs:
        m = r.manifest
        run_details.append({
            "summary": f"{r.label} — run {r.run_id}, dataset {r.dataset_name} ({r.dataset_digest[:12]}), "
                       f"masks {r.mask_name} ({r.masks_digest[:12]}), N={r.n}",
            "path": str(r.path),
            "command": " ".join(map(str, m.get("command") or [])),
            "versions": m.get("versions") or {},
            "manifest": json.dumps(m, indent=2, sort_keys=True, default=str),
        })

    body = render_template(
        "report.html.j2",
        runs=runs,
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        nav=nav,
        mixed=bool(lb.attrs.get("mixed")),
        leaderboard=Markup(leaderboard_html(lb)),
        pairs=pairs,
        comparisons=comparisons,
        correlations=correlations,
        humans=Markup(_humans_section(runs, humans_db, n_boot, seed)) if humans_db is not None else None,
        bins=None if bins.empty else {"figure": _figure(plot_bins(runs, allow_mixed=allow_mixed),
                                                     "metrics by hole-ratio bin"),
                                      "tables": Markup(bins_html(bins))},
        without_images=[r.label for r in runs if r.images_dir is None],
        grids=grids,
        run_details=run_details,
    )
    return html_page("inpaintbench report", body)


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


def write_report(
    runs: Sequence[Run | str | os.PathLike[str]], out: str | os.PathLike[str], **kwargs: Any
) -> Path:
    """Build the report and write it atomically to ``out``; returns the path."""
    out = Path(out)
    atomic_write_bytes(out, build_report(runs, **kwargs).encode("utf-8"))
    return out
