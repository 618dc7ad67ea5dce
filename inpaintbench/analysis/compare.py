"""Is run A different from run B? Paired tests on the samples both runs scored.

Lines: about 520, because the comparison, its verdict rules and its four renderings belong together;
the set-metric inputs live in :mod:`inpaintbench.analysis.compare_sets`.

Per-image metrics: Wilcoxon signed-rank test and a paired bootstrap CI of the mean difference, with
Holm's correction across all metrics tested. Set-level metrics (FID, KID, IDS): a paired bootstrap
over images from the saved Inception features, computed by the runner's own functions with the run's
own KID settings, so the values equal the leaderboard's. A metric is called different only when both
the (Holm-adjusted) test and the CI agree; otherwise the verdict is "no detectable difference". A row
that could not be tested has the verdict "not tested" and its reason in ``note`` ("not tested: ..."),
and says so in every output format.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.analysis import fmt
from inpaintbench.analysis.compare_sets import (  # noqa: F401  (also imported from here by power_report)
    _kid_settings,
    _network_mismatch,
    _set_metrics_to_test,
    _shared_features,
    _unavailable_in,
)
from inpaintbench.analysis.load import PER_IMAGE_METRICS, Run, check_same_data, load_run
from inpaintbench.analysis.stats import (
    BOOTSTRAP_SET_METRICS,
    DEFAULT_ALPHA,
    EMBEDDING_BOOTSTRAP_SET_METRICS,
    finite_pairs,
    holm,
    paired_bootstrap_diff_ci,
    set_metric_bootstrap,
    wilcoxon_signed_rank,
)
from inpaintbench.errors import InputError
from inpaintbench.metrics.info import feature_space, is_higher_better

NO_DIFF = "no detectable difference at α={alpha:g}"
#: The verdict of a row that was not tested; its ``note`` starts with "not tested: <reason>".
NOT_TESTED = "not tested"


@dataclass
class Comparison:
    """Result of :func:`compare_runs`. ``table`` has one row per metric tested (or not testable)."""

    label_a: str
    label_b: str
    run_a: Run
    run_b: Run
    n_shared: int
    n_only_a: int
    n_only_b: int
    alpha: float
    mixed: bool
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    #: "to detect Δ = … you would need about N = … images" per undetected per-image metric (``power=True``)
    power_lines: list[str] = field(default_factory=list)

    def verdict_lines(self) -> list[str]:
        """One plain-words line per metric: '<metric>: A better (…)' etc., then the power lines."""
        return [verdict_line(row, self) for _, row in self.table.iterrows()] + list(self.power_lines)


def verdict(diff: float, lo: float, hi: float, p_adj: float, metric: str, alpha: float) -> str:
    """'A better', 'B better' or 'no detectable difference at α=…' for a difference A − B."""
    no = NO_DIFF.format(alpha=alpha)
    if not all(math.isfinite(v) for v in (diff, lo, hi, p_adj)):
        return no
    if p_adj >= alpha or (lo <= 0 <= hi):
        return no
    a_higher = lo > 0
    return "A better" if a_higher == is_higher_better(metric) else "B better"


def _join(a: Run, b: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of A and B for the shared samples, in the same order (A's order)."""
    ra = a.rows.reset_index(drop=True).assign(_pos=lambda d: np.arange(len(d)))
    rb = b.rows.reset_index(drop=True).assign(_pos=lambda d: np.arange(len(d)))
    shared = ra[["sample_id"]].merge(rb[["sample_id"]], on="sample_id", how="inner")
    if shared.empty:
        # Fall back to the (image_id, mask_id) pair in case the two writers spelled sample ids differently.
        keys = ["image_id", "mask_id"]
        m = ra[keys + ["_pos"]].merge(rb[keys + ["_pos"]], on=keys, suffixes=("_a", "_b"))
        return ra.iloc[m["_pos_a"].to_numpy()], rb.iloc[m["_pos_b"].to_numpy()]
    ia = ra.set_index("sample_id").loc[shared["sample_id"], "_pos"].to_numpy()
    ib = rb.set_index("sample_id").loc[shared["sample_id"], "_pos"].to_numpy()
    return ra.iloc[ia], rb.iloc[ib]


def compare_runs(
    a: Run | str | os.PathLike[str],
    b: Run | str | os.PathLike[str],
    allow_mixed: bool = False,
    alpha: float = DEFAULT_ALPHA,
    n_boot: int = 1000,
    set_n_boot: int = 200,
    ids_n_boot: int = 50,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    power: bool = False,
    power_level: float = 0.8,
) -> Comparison:
    """Paired comparison of two runs on the samples they share.

    ``power=True`` adds, for each per-image metric with no detectable difference, the N that would
    detect the observed Δ with ``power_level`` power (:mod:`inpaintbench.analysis.power`; set
    metrics: ``inpaintbench power``).

    Raises :class:`InputError` when the runs share no sample, or use different data (unless
    ``allow_mixed``). ``set_n_boot``/``ids_n_boot`` are the resamples for FID/KID and for IDS
    (which refits an SVM per resample; 0 skips IDS).
    """
    a = a if isinstance(a, Run) else load_run(a)
    b = b if isinstance(b, Run) else load_run(b)
    label_a, label_b = a.label, b.label
    if label_a == label_b:
        label_a, label_b = f"{label_a} ({a.run_id})", f"{label_b} ({b.run_id})"
    if label_a == label_b:
        label_a, label_b = f"{label_a} [A]", f"{label_b} [B]"
    mixed = check_same_data([a, b], allow_mixed, "compare these runs")
    ja, jb = _join(a, b)
    n_shared = len(ja)
    if n_shared == 0:
        raise InputError(
            f"runs {a.path} and {b.path} share no samples (no common sample_id or image_id+mask_id)",
            "compare runs evaluated on the same images and masks",
        )
    notes: list[str] = []
    if mixed:
        notes.append(
            "MIXED DATA: the runs use different datasets or mask sets (--allow-mixed); the test "
            "only covers the samples whose ids match, which may not be the same images."
        )
    both_ok = (ja["status"].to_numpy() == "ok") & (jb["status"].to_numpy() == "ok")
    n_failed = int((~both_ok).sum())
    if n_failed:
        notes.append(f"{n_failed} shared sample(s) failed in at least one run and are excluded.")
    if n_shared < len(a.rows) or n_shared < len(b.rows):
        notes.append(
            f"Tested on the {n_shared} shared samples ({len(a.rows) - n_shared} only in A, "
            f"{len(b.rows) - n_shared} only in B)."
        )

    pi = [m for m in PER_IMAGE_METRICS if m in a.per_image_metrics and m in b.per_image_metrics]
    set_names = _set_metrics_to_test(a, b)
    if metrics:
        unknown = [m for m in metrics if m not in pi and m not in set_names]
        if unknown:
            raise InputError(
                f"metric(s) {', '.join(unknown)} not present in both runs",
                f"use some of: {', '.join(pi + set_names)}",
            )
        pi = [m for m in pi if m in metrics]
        set_names = [m for m in set_names if m in metrics]

    records: list[dict[str, Any]] = []
    paired_diffs: dict[str, np.ndarray] = {}
    for i, m in enumerate(pi):
        va = np.where(both_ok, ja[m].to_numpy(np.float64), np.nan)
        vb = np.where(both_ok, jb[m].to_numpy(np.float64), np.nan)
        fa, fb, excluded = finite_pairs(va, vb)
        paired_diffs[m] = fa - fb
        nonfinite = excluded - n_failed
        rec: dict[str, Any] = {
            "metric": m,
            "kind": "per-image",
            "test": "Wilcoxon + paired bootstrap",
            "n": int(fa.size),
            "n_nonfinite": int(nonfinite),
            "mean_a": float(fa.mean()) if fa.size else math.nan,
            "mean_b": float(fb.mean()) if fb.size else math.nan,
            "_tested": fa.size >= 2,
        }
        if fa.size < 2:
            rec.update(
                diff=math.nan,
                ci_low=math.nan,
                ci_high=math.nan,
                p=math.nan,
                note="not tested: fewer than 2 usable pairs",
            )
        else:
            d, lo, hi, _ = paired_bootstrap_diff_ci(fa, fb, n_boot=n_boot, alpha=alpha, seed=seed + i)
            _, p = wilcoxon_signed_rank(fa, fb)
            rec.update(diff=d, ci_low=lo, ci_high=hi, p=p, note="")
        if nonfinite:
            rec["note"] = (rec["note"] + "; " if rec["note"] else "") + (
                f"{nonfinite} pair(s) with a non-finite value excluded"
            )
        records.append(rec)

    by_space: dict[str, tuple[Any, str]] = {}  # feature space -> (shared features or None, why not)
    kid_settings = (_kid_settings(a), _kid_settings(b))
    for j, m in enumerate(set_names):
        rec = {"metric": m, "kind": "set", "test": "paired bootstrap over images", "n_nonfinite": 0}
        reason = None
        unavailable = _unavailable_in(m, (label_a, a), (label_b, b))
        if unavailable:
            reason = f"not tested: {fmt.label(m)} unavailable in {unavailable}"
        elif m not in BOOTSTRAP_SET_METRICS + EMBEDDING_BOOTSTRAP_SET_METRICS:
            reason = f"not tested: no bootstrap for {fmt.label(m)} (it needs fits at several N)"
        space = feature_space(m) or "inception"
        if reason is None:
            if space not in by_space:
                by_space[space] = _shared_features(a, b, (label_a, label_b), ja, jb, both_ok, set_names, notes, space)
            feats, why_no_feats = by_space[space]
            if feats is None:
                reason = f"not tested: {why_no_feats}"
        elif m in ("p_ids", "u_ids") and ids_n_boot <= 0:
            reason = "not tested: IDS bootstrap disabled (ids_n_boot = 0)"
        if reason is not None:
            sa, sb = a.set_metric(m), b.set_metric(m)
            rec.update(
                n=0,
                mean_a=sa["value"] if sa else math.nan,
                mean_b=sb["value"] if sb else math.nan,
                diff=math.nan,
                ci_low=math.nan,
                ci_high=math.nan,
                p=math.nan,
                note=reason,
                _tested=False,
            )
        else:
            boots = ids_n_boot if m in ("p_ids", "u_ids") else set_n_boot
            r = set_metric_bootstrap(
                m, *feats, n_boot=boots, alpha=alpha, seed=seed + 100 + j, kid_a=kid_settings[0], kid_b=kid_settings[1],
                features=space,
            )
            rec.update(
                n=r.n,
                mean_a=r.value_a,
                mean_b=r.value_b,
                diff=r.diff,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                p=r.p,
                note=f"{boots} resamples; recomputed from features",
                _tested=True,
            )
        records.append(rec)

    cols = [
        "metric",
        "kind",
        "test",
        "n",
        "n_nonfinite",
        "mean_a",
        "mean_b",
        "diff",
        "ci_low",
        "ci_high",
        "p",
        "p_holm",
        "verdict",
        "note",
    ]
    table = pd.DataFrame.from_records(records)
    if table.empty:
        table = pd.DataFrame(columns=cols)
    else:
        table["p_holm"] = holm(table["p"].to_numpy(np.float64))
        table["verdict"] = [
            verdict(r["diff"], r["ci_low"], r["ci_high"], r["p_holm"], r["metric"], alpha)
            if r["_tested"]
            else NOT_TESTED
            for _, r in table.iterrows()
        ]
        table["note"] = [_disagreement(r, alpha) for _, r in table.iterrows()]
        table = table[cols]
    if len(table):
        notes.append(
            f"Holm correction across the {int(np.isfinite(table['p']).sum())} metrics tested; a "
            f"difference is called only when Holm p < {alpha:g} and the {100 * (1 - alpha):g}% CI "
            "excludes 0."
        )
    lines = _power_lines(table, paired_diffs, alpha, power_level, seed) if power and len(table) else []
    return Comparison(
        label_a,
        label_b,
        a,
        b,
        n_shared,
        len(a.rows) - n_shared,
        len(b.rows) - n_shared,
        alpha,
        mixed,
        table,
        notes,
        lines,
    )


def _power_lines(table: pd.DataFrame, diffs: dict[str, np.ndarray], alpha: float, level: float,
                 seed: int) -> list[str]:
    """The power sentence of each tested per-image metric whose verdict is 'no detectable difference'
    (Holm family = the metrics tested here, as in the table)."""
    from inpaintbench.analysis import power as pw

    family = max(1, int(np.isfinite(table["p"].to_numpy(np.float64)).sum()))
    settings = pw.PowerSettings(power=level, alpha=alpha, family=family, seed=seed)
    out = []
    for _, r in table.iterrows():
        d = diffs.get(r["metric"])
        if r["verdict"] != NO_DIFF.format(alpha=alpha) or d is None or d.size < 2:
            continue
        n_needed, extrapolated = pw.PairedPower(d, settings).n_needed(float(d.mean()))
        out.append(pw.detect_line(r["metric"], float(d.mean()), n_needed, int(d.size), settings, extrapolated))
    return out


def _disagreement(row: pd.Series, alpha: float) -> str:
    """Append to the row's note when the test and the CI disagree (the verdict is then 'no difference')."""
    note = str(row["note"])
    vals = (row["p_holm"], row["ci_low"], row["ci_high"])
    if not all(isinstance(v, float) and math.isfinite(v) for v in vals):
        return note
    sig_p = row["p_holm"] < alpha
    sig_ci = not (row["ci_low"] <= 0 <= row["ci_high"])
    extra = ""
    if sig_p and not sig_ci:
        extra = "Holm p < α but the CI of the mean difference includes 0: median and mean shifts disagree"
    elif sig_ci and not sig_p:
        extra = "the CI excludes 0 but Holm p ≥ α: not significant after correction"
    if not extra:
        return note
    return f"{note}; {extra}" if note else extra


def verdict_line(row: pd.Series, c: Comparison) -> str:
    m = row["metric"]
    name = fmt.header(m)
    if row["verdict"] == NOT_TESTED:
        return f"{name}: {row['note']}"
    v = row["verdict"]
    who = {"A better": f"A better ({c.label_a})", "B better": f"B better ({c.label_b})"}.get(v, v)
    test = "Wilcoxon" if row["kind"] == "per-image" else "bootstrap"
    return (
        f"{name}: {who} — A {fmt.num(row['mean_a'], m)} vs B {fmt.num(row['mean_b'], m)}, "
        f"Δ(A−B) {fmt.signed(row['diff'], m)} {fmt.ci(row['ci_low'], row['ci_high'], m, sign=True)}, "
        f"{test} p {fmt.pval(row['p'])}, Holm p {fmt.pval(row['p_holm'])}, N {int(row['n'])}"
    ) + (f" ({row['note']})" if str(row["note"]) else "")


def _header(c: Comparison) -> list[str]:
    return [
        f"A = {c.label_a} ({c.run_a.path})",
        f"B = {c.label_b} ({c.run_b.path})",
        f"{c.n_shared} shared samples; α = {c.alpha:g}; "
        f"Δ = A − B with {100 * (1 - c.alpha):g}% bootstrap CI.",
    ]


def _rows(c: Comparison) -> list[list[str]]:
    out = []
    for _, r in c.table.iterrows():
        m = r["metric"]
        out.append(
            [
                fmt.header(m),
                str(int(r["n"])),
                fmt.num(r["mean_a"], m),
                fmt.num(r["mean_b"], m),
                fmt.signed(r["diff"], m),
                fmt.ci(r["ci_low"], r["ci_high"], m, sign=True),
                fmt.pval(r["p"]),
                fmt.pval(r["p_holm"]),
                r["note"] if r["verdict"] == NOT_TESTED else r["verdict"],
            ]
        )
    return out


_COLS = ["Metric", "N", "A", "B", "Δ (A−B)", "95% CI", "p", "Holm p", "Verdict"]


def render_comparison(c: Comparison, fmt_name: str = "md") -> str:
    """The comparison as ``md``, ``csv``, ``html`` (fragment) or ``rich`` text."""
    if fmt_name == "csv":
        t = c.table.copy()
        t.insert(0, "b", c.label_b)
        t.insert(0, "a", c.label_a)
        return t.to_csv(index=False, float_format="%.10g", lineterminator="\n")
    if fmt_name == "md":
        lines = ["# Comparison", ""] + [f"- {fmt.md_escape(h)}" for h in _header(c)] + [""]
        lines += ["| " + " | ".join(_COLS) + " |", "|:---|" + "---:|" * 7 + ":---|"]
        lines += ["| " + " | ".join(fmt.md_escape(x) for x in row) + " |" for row in _rows(c)]
        lines += ["", "## Verdicts", ""] + [f"- {fmt.md_escape(v)}" for v in c.verdict_lines()]
        if c.notes:
            lines += ["", "Notes:", ""] + [f"- {fmt.md_escape(n)}" for n in c.notes]
        return "\n".join(lines) + "\n"
    if fmt_name == "html":
        return comparison_html(c)
    if fmt_name == "rich":
        from rich.console import Console

        console = Console(record=True, width=200, force_terminal=False, color_system=None)
        for item in rich_comparison(c):
            console.print(item)
        return console.export_text()
    raise InputError(f"unknown comparison format {fmt_name!r}", "use one of: rich, md, csv, html")


def comparison_html(c: Comparison) -> str:
    e = fmt.html_escape
    parts = [
        "<ul>" + "".join(f"<li>{e(h)}</li>" for h in _header(c)) + "</ul>",
        '<div class="scroll"><table class="compare"><thead><tr>'
        + "".join(f"<th>{e(h)}</th>" for h in _COLS)
        + "</tr></thead><tbody>",
    ]
    for row in _rows(c):
        v = row[-1]
        cls = (
            "better-a"
            if v == "A better"
            else "better-b"
            if v == "B better"
            else "nodiff untested"
            if v.startswith(NOT_TESTED)
            else "nodiff"
        )
        parts.append(
            "<tr>"
            + f'<td class="model">{e(row[0])}</td>'
            + "".join(f'<td class="num">{e(x)}</td>' for x in row[1:-1])
            + f'<td class="{cls}">{e(v)}</td></tr>'
        )
    parts.append("</tbody></table></div>")
    parts.append('<ul class="verdicts">' + "".join(f"<li>{e(v)}</li>" for v in c.verdict_lines()) + "</ul>")
    if c.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in c.notes) + "</ul>")
    return "\n".join(parts)


def rich_comparison(c: Comparison) -> list[Any]:
    from rich.table import Table

    t = Table(title=f"A = {c.label_a}  vs  B = {c.label_b}", caption=_header(c)[2])
    for h in _COLS:
        t.add_column(h, justify="left" if h in ("Metric", "Verdict") else "right")
    for row in _rows(c):
        v = row[-1]
        style = "bold green" if v in ("A better", "B better") else "dim" if v.startswith(NOT_TESTED) else ""
        short = "no difference" if v.startswith("no detectable") else v
        t.add_row(*row[:-1], f"[{style}]{short}[/]" if style else short)
    return [t] + [f"[yellow]•[/] {n}" for n in c.notes]


def compare_many(
    runs: Sequence[Run],
    mode: str = "best",
    reference_metric: str | None = None,
    **kwargs: Any,
) -> list[Comparison]:
    """Pairwise comparisons: every run against the best (by ``reference_metric``) or all pairs.

    The default reference metric is FID when every run has it, else LPIPS, else PSNR, else the first
    per-image metric they share.
    """
    runs = list(runs)
    if len(runs) < 2:
        return []
    if mode == "all":
        pairs = [(runs[i], runs[j]) for i in range(len(runs)) for j in range(i + 1, len(runs))]
    elif mode == "best":
        ref = reference_metric or _default_reference(runs)
        best = _best_run(runs, ref)
        pairs = [(best, r) for r in runs if r is not best]
    else:
        raise InputError(f"unknown pairing mode {mode!r}", "use 'best' or 'all'")
    return [compare_runs(a, b, **kwargs) for a, b in pairs]


def _mean_of(run: Run, metric: str) -> float:
    """Mean of the finite values of a per-image metric, or a set metric's value; NaN when absent."""
    if metric in PER_IMAGE_METRICS:
        if metric not in run.per_image_metrics:
            return math.nan
        v = run.ok_rows[metric].to_numpy(np.float64)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else math.nan
    s = run.set_metric(metric)
    return s["value"] if s else math.nan


def _default_reference(runs: Sequence[Run]) -> str:
    candidates = ["fid", "lpips", "psnr"] + list(PER_IMAGE_METRICS)
    for m in candidates:
        if all(math.isfinite(_mean_of(r, m)) for r in runs):
            return m
    raise InputError(
        "the runs share no metric to pick the best run by", "pass runs scored with at least one common metric"
    )


def _best_run(runs: Sequence[Run], metric: str) -> Run:
    vals = [_mean_of(r, metric) for r in runs]
    sign = 1 if is_higher_better(metric) else -1
    scored = [(sign * v, -i) for i, v in enumerate(vals) if math.isfinite(v)]
    if not scored:
        raise InputError(f"no run has a finite {metric}", "choose another --reference-metric")
    return runs[-max(scored)[1]]
