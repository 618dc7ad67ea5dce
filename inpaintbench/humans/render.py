"""Human-judgment tables in rich, md, csv and html, and the metric-agreement plot.

Tables are built once as (title, header, rows of display strings, caption) and rendered per format;
csv instead writes the raw numbers of every table in one long table with a ``section`` column.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd

from inpaintbench.analysis import fmt
from inpaintbench.humans.analysis import HumanAnalysis

FORMATS = ("rich", "md", "csv", "html")
Table = tuple[str, list[str], list[list[str]], str]


def _p(x: float, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _ci(lo: float, hi: float, digits: int = 3) -> str:
    return "" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def tables(a: HumanAnalysis) -> list[Table]:
    o = a.overview
    out: list[Table] = []
    out.append(("Human judgments", ["judgments", "raters", "models", "images", "ties", "GT shown", "left / right",
                                    "attention checks"],
                [[str(o["model_judgments"]), str(o["raters"]), str(o["models"]), str(o["samples"]), str(o["ties"]),
                  str(o["gt_shown"]), f"{o['left_chosen']} / {o['right_chosen']}", str(o["attention_checks"])]],
                "Model-pair judgments (attention checks counted apart). left / right: how often each side was "
                "picked (sides are shuffled, so a large imbalance means a side bias)."))
    out.append(("Model pairs", ["A", "B", "n", "A wins", "B wins", "ties", "A win rate", "95% CI (Wilson)", "p (sign)"],
                [[r.model_a, r.model_b, str(r.n), str(r.wins_a), str(r.wins_b), str(r.ties), _p(r.win_rate_a),
                  _ci(r.ci_low, r.ci_high), fmt.pval(r.p_value)] for r in a.pairs.itertuples()],
                "Win rate of A over the decided judgments (ties left out); two-sided exact binomial sign test "
                "at 1/2. Judgments are treated as independent here; the Bradley–Terry intervals resample images."))
    out.append(("Bradley–Terry scores", ["model", "score", "95% CI", "judgments"],
                [[r.model, f"{r.score:+.3f}", _ci(r.ci_low, r.ci_high), str(r.n)] for r in a.bt.itertuples()],
                "Log-strengths (mean 0; P(i beats j) = 1 / (1 + exp(s_j − s_i))), Hunter's MM algorithm, ties "
                "as half a win each; percentile intervals from a bootstrap over images."))
    out.append(("Metric–human agreement (2AFC)", ["metric", "direction", "units", "2AFC score", "95% CI",
                                                   "metric ties"],
                [[("human ceiling" if r.metric == "human" else fmt.label(r.metric)),
                  ("" if r.metric == "human" else ("higher better" if r.higher_is_better else "lower better")),
                  str(r.n_units), _p(r.agreement), _ci(r.ci_low, r.ci_high), str(r.metric_ties)]
                 for r in a.agreement.itertuples()],
                "BAPPS' 2AFC score (Zhang et al. 2018): the share of human votes for the completion the metric "
                "prefers, a metric tie scoring 0.5; 0.5 = chance. Ranked; intervals from a bootstrap over images. "
                "Human ceiling: the same score between two different raters' judgments of the same pair."))
    out.append(("Model ranking: metrics vs humans", ["metric", "kind", "models", "Kendall τ", "p", "note"],
                [[fmt.label(r.metric), r.kind, str(r.n_models), _p(r.tau), fmt.pval(r.p_value), r.note]
                 for r in a.ranking.itertuples()],
                "Kendall's τ between each metric's order of the models and the Bradley–Terry order."))
    out.append(("Raters", ["rater", "judgments", "median time", "GT shown", "ties", "attention", "repeated",
                           "consistency"],
                [[r.rater, str(r.judgments), "—" if not math.isfinite(r.median_ms) else f"{r.median_ms / 1000:.1f} s",
                  str(r.gt_shown), str(r.ties),
                  f"{r.attention_passed}/{r.attention_total}" if r.attention_total else "—", str(r.repeated_units),
                  _p(r.consistency)] for r in a.raters.itertuples()],
                "Consistency: share of agreeing pairs among a rater's repeated judgments of the same pair "
                "(shown with sides flipped)."))
    al = a.alpha
    out.append(("Agreement between raters", ["Krippendorff's α (nominal)", "raters", "pairable units", "note"],
                [[_p(al["alpha"]), str(al["raters"]), str(al["pairable_units"]), al["note"]]],
                "Values: A better / B better / can't tell; each rater's first judgment of a pair (Krippendorff 2011)."))
    return out


def _md(t: Table) -> str:
    title, header, rows, caption = t
    esc = fmt.md_escape
    lines = [f"### {title}", "", "| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows] or ["| (none) |"]
    return "\n".join(lines + ["", f"*{caption}*", ""])


def tables_html(a: HumanAnalysis, level: int = 3) -> str:
    e = fmt.html_escape
    parts = []
    for title, header, rows, caption in tables(a):
        body = "".join("<tr>" + "".join(f'<td class="{"num" if _numeric(c) else ""}">{e(c)}</td>' for c in r)
                       + "</tr>" for r in rows) or f'<tr><td colspan="{len(header)}">(none yet)</td></tr>'
        parts.append(f"<h{level}>{e(title)}</h{level}><div class=\"scroll\"><table><thead><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in header) + f"</tr></thead><tbody>{body}</tbody></table></div>"
                     f'<p class="caption">{e(caption)}</p>')
    if a.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in a.notes) + "</ul>")
    return "\n".join(parts)


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "+-[—") and not cell[0].isalpha()


def raw_csv(a: HumanAnalysis) -> str:
    frames = [pd.DataFrame([a.overview]).assign(section="overview"), a.pairs.assign(section="pairs"),
              a.bt.assign(section="bradley_terry"), a.agreement.assign(section="metric_agreement"),
              a.ranking.assign(section="ranking"), a.raters.assign(section="raters"),
              pd.DataFrame([a.alpha]).assign(section="krippendorff_alpha")]
    frames = [f[["section", *[c for c in f.columns if c != "section"]]] for f in frames if len(f)]
    buf = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def render(a: HumanAnalysis, fmt_name: str) -> str:
    if fmt_name == "csv":
        return raw_csv(a)
    if fmt_name == "md":
        return "\n".join([_md(t) for t in tables(a)] + [f"- {n}" for n in a.notes])
    if fmt_name == "html":
        from inpaintbench.analysis.figures import figure_html as _img
        from inpaintbench.analysis.html_page import html_page

        body = "<h1>Human judgments</h1>\n" + tables_html(a)
        if len(a.agreement):
            body += _img(plot_agreement(a), "metric-human agreement with 95% CIs")
        return html_page("inpaintbench human judgments", body)
    raise ValueError(fmt_name)


def rich_tables(a: HumanAnalysis) -> list[Any]:
    from rich.table import Table as RichTable

    out: list[Any] = []
    for title, header, rows, caption in tables(a):
        t = RichTable(title=title, caption=caption, caption_justify="left")
        for h in header:
            t.add_column(h)
        for r in rows:
            t.add_row(*r)
        out.append(t)
    out += [f"[yellow]note:[/] {n}" for n in a.notes]
    return out


def plot_agreement(a: HumanAnalysis) -> Any:
    """2AFC score per metric with its CI (ranked), chance at 0.5 and the human ceiling when known."""
    from matplotlib.figure import Figure

    df = a.agreement
    metrics = df[df["metric"] != "human"].iloc[::-1]
    human = df[df["metric"] == "human"]
    fig = Figure(figsize=(6.4, 0.45 * max(len(metrics), 1) + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    y = list(range(len(metrics)))
    x = metrics["agreement"].to_numpy(float)
    lo = x - metrics["ci_low"].to_numpy(float)
    hi = metrics["ci_high"].to_numpy(float) - x
    err = [[v if math.isfinite(v) else 0 for v in lo], [v if math.isfinite(v) else 0 for v in hi]]
    ax.errorbar(x, y, xerr=err, fmt="o", color="#0072B2", ecolor="#56B4E9", capsize=4, label="metric (95% CI)")
    ax.set_yticks(y, [fmt.label(m) for m in metrics["metric"]])
    ax.axvline(0.5, color="#999999", linestyle=":", label="chance")
    if len(human):
        h = human.iloc[0]
        ax.axvline(h["agreement"], color="#D55E00", linestyle="--", label="human ceiling")
        if math.isfinite(h["ci_low"]):
            ax.axvspan(h["ci_low"], h["ci_high"], color="#D55E00", alpha=0.12)
    ax.set_xlim(0, 1)
    ax.set_xlabel("2AFC agreement with human judgments")
    ax.set_title(f"Metric–human agreement ({a.overview['model_judgments']} judgments)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
