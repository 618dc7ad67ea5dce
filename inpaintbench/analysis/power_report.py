"""`inpaintbench power RUN_A RUN_B`: the N compare needs per metric, from two runs, as a table and a plot.

The data are prepared exactly as :func:`inpaintbench.analysis.compare.compare_runs` prepares them
(shared samples, both rows ok, finite pairs; the saved features of the shared samples), with
compare's own helpers, so the power is that of the test compare runs on these runs. The methods
are in :mod:`inpaintbench.analysis.power`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.analysis import fmt
from inpaintbench.analysis import power as pw
from inpaintbench.analysis.compare import (
    _join,
    _kid_settings,
    _set_metrics_to_test,
    _shared_features,
    _unavailable_in,
)
from inpaintbench.analysis.load import PER_IMAGE_METRICS, Run, check_same_data
from inpaintbench.analysis.stats import BOOTSTRAP_SET_METRICS, finite_pairs, set_metric_bootstrap
from inpaintbench.errors import InputError

FORMATS = ("rich", "md", "csv", "html")
COLUMNS = ["metric", "kind", "n", "diff", "delta", "delta_source", "power_at_n", "n_needed", "extrapolated",
           "mdd", "method", "note"]


@dataclass
class PowerReport:
    label_a: str
    label_b: str
    n_shared: int
    settings: pw.PowerSettings
    table: pd.DataFrame
    curves: dict[str, tuple[list[int], np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def parse_deltas(items: Sequence[str] | None) -> dict[str, float]:
    """``--delta metric=value`` (repeatable, or comma-separated) as a dict; a clear error otherwise."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in str(item).split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                sep = ""
            if not sep or not name.strip():
                raise InputError(f"--delta {part!r} is not METRIC=VALUE", "e.g. --delta psnr=0.18 --delta lpips=-0.005")
    return out


def per_image_line(metric: str, diffs: np.ndarray, settings: pw.PowerSettings, delta: float | None = None) -> dict:
    """One row for a per-image metric from its paired differences (A − B)."""
    d = np.asarray(diffs, np.float64)
    n = int(d.size)
    observed = float(d.mean()) if n else math.nan
    target = observed if delta is None else float(delta)
    row: dict[str, Any] = {"metric": metric, "kind": "per-image", "n": n, "diff": observed, "delta": target,
                           "delta_source": "observed" if delta is None else "--delta", "extrapolated": False,
                           "method": "simulated", "note": ""}
    if n < 2:
        return row | {"power_at_n": math.nan, "n_needed": math.nan, "mdd": math.nan,
                      "note": "not computed: fewer than 2 usable pairs", "_pp": None}
    pp = pw.PairedPower(d, settings)
    n_needed, extrapolated = pp.n_needed(target)
    row.update(power_at_n=pp.power(n, target) if n <= pw.MAX_SIM_N and math.isfinite(target) else
               _analytic_power(pp, n, target), n_needed=n_needed, extrapolated=extrapolated,
               mdd=pp.mdd(n, sign=target if target else 1.0), _pp=pp)
    if extrapolated:
        row["method"] = "analytic"
        row["note"] = f"beyond N = {pw.MAX_SIM_N}: Noether (1987) for Wilcoxon and the normal N for the CI"
    if target == 0:
        row["note"] = "Δ = 0: no N detects it"
    return row


def _analytic_power(pp: pw.PairedPower, n: int, delta: float) -> float:
    """Power at an N beyond the simulated range from the analytic N (normal noncentrality ∝ √N)."""
    if delta == 0 or not math.isfinite(delta):
        return 0.0
    n_req = pp.analytic_n(delta)
    k = pw.z(1 - pp.s.alpha_test / 2) + pw.z(pp.s.power)
    return float(pw.sps.norm.cdf(k * math.sqrt(n / n_req) - pw.z(1 - pp.s.alpha_test / 2)))


def power_runs(a: Run, b: Run, settings: pw.PowerSettings | None = None, deltas: Mapping[str, float] | None = None,
               family: int | None = None, metrics: Sequence[str] | None = None, set_boot: int = 50,
               allow_mixed: bool = False) -> PowerReport:
    """Power of compare's test for every metric both runs have (or ``metrics``).

    ``family`` (default: the number of metrics in the table, as compare's Holm family) divides α for
    the test p-value; ``set_boot`` is the number of resamples per subsample size of a set metric.
    """
    settings = settings or pw.PowerSettings()
    deltas = dict(deltas or {})
    label_a, label_b = a.label, b.label
    if label_a == label_b:
        label_a, label_b = f"{label_a} ({a.run_id})", f"{label_b} ({b.run_id})"
    mixed = check_same_data([a, b], allow_mixed, "compute power for these runs")
    ja, jb = _join(a, b)
    if len(ja) == 0:
        raise InputError(f"runs {a.path} and {b.path} share no samples", "pass runs evaluated on the same samples")
    both_ok = (ja["status"].to_numpy() == "ok") & (jb["status"].to_numpy() == "ok")
    pi = [m for m in PER_IMAGE_METRICS if m in a.per_image_metrics and m in b.per_image_metrics]
    set_names = [m for m in _set_metrics_to_test(a, b) if m in BOOTSTRAP_SET_METRICS]
    if metrics:
        unknown = [m for m in metrics if m not in pi and m not in set_names]
        if unknown:
            raise InputError(f"metric(s) {', '.join(unknown)} not present in both runs (or not testable)",
                             f"use some of: {', '.join(pi + set_names)}")
        pi, set_names = [m for m in pi if m in metrics], [m for m in set_names if m in metrics]
    bad = [m for m in deltas if m not in pi and m not in set_names]
    if bad:
        raise InputError(f"--delta for {', '.join(bad)}, which is not in the table",
                         f"use some of: {', '.join(pi + set_names)}")
    notes: list[str] = ["MIXED DATA (--allow-mixed)."] if mixed else []
    feats, why = _shared_features(a, b, (label_a, label_b), ja, jb, both_ok, set_names, notes)
    set_ok = [m for m in set_names if feats is not None and not _unavailable_in(m, (label_a, a), (label_b, b))]
    fam = family if family is not None else max(1, len(pi) + len(set_ok))
    settings = replace(settings, family=fam)
    rows: list[dict[str, Any]] = []
    curves: dict[str, tuple[list[int], np.ndarray]] = {}
    for i, m in enumerate(pi):
        va = np.where(both_ok, ja[m].to_numpy(np.float64), np.nan)
        vb = np.where(both_ok, jb[m].to_numpy(np.float64), np.nan)
        fa, fb, _ = finite_pairs(va, vb)
        row = per_image_line(m, fa - fb, replace(settings, seed=settings.seed + i), deltas.get(m))
        pp = row.pop("_pp")
        if pp is not None and math.isfinite(row["delta"]) and row["delta"] != 0:
            grid = [n for n in pw.n_grid(row["n"], row["n_needed"]) if n <= pw.MAX_SIM_N]
            curves[m] = (grid, pp.curve(grid, row["delta"]))
        rows.append(row)
    kid = (_kid_settings(a), _kid_settings(b))
    for j, m in enumerate(set_names):
        if m not in set_ok:
            where = _unavailable_in(m, (label_a, a), (label_b, b))
            reason = f"{fmt.label(m)} unavailable in {where}" if where else why
            rows.append({"metric": m, "kind": "set", "n": 0, "diff": math.nan, "delta": deltas.get(m, math.nan),
                         "delta_source": "", "power_at_n": math.nan, "n_needed": math.nan, "extrapolated": False,
                         "mdd": math.nan, "method": "", "note": f"not computed: {reason}"})
            continue
        rows.append(_set_row(m, feats, kid, settings, deltas.get(m), set_boot, settings.seed + 100 + j, curves))
    table = pd.DataFrame.from_records(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)
    notes.append(
        f"Power {settings.power:g} at α = {settings.alpha:g}; the test p-value must beat α/{fam} "
        f"(Holm over the {fam} metric(s), Bonferroni bound: conservative), and the {100 * (1 - settings.alpha):g}% "
        f"CI must exclude 0, as in compare. Per-image: {settings.n_sim} simulated studies per N "
        f"(binomial SE ≈ {math.sqrt(settings.power * (1 - settings.power) / settings.n_sim):.3f})."
    )
    return PowerReport(label_a, label_b, len(ja), settings, table, curves, notes)


def _set_row(m: str, feats: tuple[np.ndarray, ...], kid: tuple[Any, Any], settings: pw.PowerSettings,
             delta: float | None, set_boot: int, seed: int, curves: dict) -> dict[str, Any]:
    fake_a, real_a, fake_b, real_b = feats
    n = fake_a.shape[0]

    def diff_of(idx: np.ndarray) -> float:
        return set_metric_bootstrap(m, fake_a[idx], real_a[idx], fake_b[idx], real_b[idx], n_boot=0,
                                    kid_a=kid[0], kid_b=kid[1]).diff

    observed = diff_of(np.arange(n))
    target = observed if delta is None else float(delta)
    fit = pw.bootstrap_spread(diff_of, n, pw.spread_sizes(n), set_boot, seed=seed)
    n_needed = pw.normal_n_needed(target, fit.c, settings)
    grid = pw.n_grid(n, n_needed)
    curves[m] = (grid, np.array([pw.normal_power(target, fit.c, g, settings) for g in grid]))
    note = (f"sd(Δ) ≈ {fit.c:.4g}/√N from {set_boot} resamples at N = {', '.join(map(str, fit.sizes))} "
            f"(log-log slope {fit.slope:.2f}; 1/√N law: -0.5)")
    return {"metric": m, "kind": "set", "n": n, "diff": observed, "delta": target,
            "delta_source": "observed" if delta is None else "--delta",
            "power_at_n": pw.normal_power(target, fit.c, n, settings), "n_needed": n_needed,
            "extrapolated": math.isfinite(n_needed) and n_needed > n, "mdd": pw.normal_mdd(fit.c, n, settings),
            "method": "bootstrap spread", "note": note}


# --- rendering ------------------------------------------------------------------------------------
_COLS = ["Metric", "N", "Δ observed", "Δ to detect", "Power at N", "N needed", "MDD at N", "Method"]


def _rows(r: PowerReport) -> list[list[str]]:
    out = []
    for _, row in r.table.iterrows():
        m = row["metric"]
        method = "—" if str(row["note"]).startswith("not computed") else str(row["method"])
        out.append([fmt.header(m), str(int(row["n"])) if row["n"] else "—", fmt.signed(row["diff"], m),
                    fmt.signed(row["delta"], m),
                    fmt.num(row["power_at_n"], digits=2), pw.n_text(row["n_needed"], bool(row["extrapolated"])),
                    fmt.signed(row["mdd"], m), method])
    return out


def row_notes(r: PowerReport) -> list[str]:
    """'<metric>: <note>' for the rows that carry one (why not computed, the spread fit...)."""
    return [f"{fmt.header(row['metric'])}: {row['note']}" for _, row in r.table.iterrows() if str(row["note"])]


_METHODS = ("Methods: simulated = the smallest N whose simulated studies (resampled paired differences shifted "
            "to Δ, Wilcoxon as compare + the mean's CI) reach the power; analytic = extrapolated beyond the "
            "simulated range; bootstrap spread = sd(Δ) from m-out-of-n bootstrap fitted to c/√N.")


def _header(r: PowerReport) -> list[str]:
    s = r.settings
    return [f"A = {r.label_a}, B = {r.label_b}; Δ = A − B on {r.n_shared} shared samples.",
            f"N needed: the images for {100 * s.power:g}% power at α = {s.alpha:g} with compare's paired test; "
            f"MDD: the smallest |Δ| detected with that power at the N here."]


def power_lines(r: PowerReport) -> list[str]:
    """Plain words per metric: 'PSNR ↑: to detect Δ = +0.18 you would need about N = 2,300 images'."""
    lines = []
    for _, row in r.table.iterrows():
        if str(row["note"]).startswith("not computed"):
            continue
        lines.append(pw.detect_line(row["metric"], row["delta"], row["n_needed"], int(row["n"]), r.settings,
                                 bool(row["extrapolated"])))
    return lines


def render_power(r: PowerReport, fmt_name: str = "md") -> str:
    if fmt_name == "csv":
        t = r.table.copy()
        t.insert(0, "b", r.label_b)
        t.insert(0, "a", r.label_a)
        t["power"], t["alpha"], t["family"] = r.settings.power, r.settings.alpha, r.settings.family
        return t.to_csv(index=False, float_format="%.10g", lineterminator="\n")
    if fmt_name == "md":
        lines = ["# Power", ""] + [f"- {fmt.md_escape(h)}" for h in _header(r)] + [""]
        lines += ["| " + " | ".join(_COLS) + " |", "|:---|" + "---:|" * 6 + ":---|"]
        lines += ["| " + " | ".join(fmt.md_escape(x) for x in row) + " |" for row in _rows(r)]
        lines += ["", "## In words", ""] + [f"- {fmt.md_escape(v)}" for v in power_lines(r)]
        lines += ["", "Notes:", ""] + [f"- {fmt.md_escape(n)}" for n in row_notes(r) + r.notes + [_METHODS]]
        return "\n".join(lines) + "\n"
    if fmt_name == "html":
        e = fmt.html_escape
        parts = ["<ul>" + "".join(f"<li>{e(h)}</li>" for h in _header(r)) + "</ul>",
                 '<div class="scroll"><table class="power"><thead><tr>'
                 + "".join(f"<th>{e(h)}</th>" for h in _COLS) + "</tr></thead><tbody>"]
        for row in _rows(r):
            parts.append(f'<tr><td class="model">{e(row[0])}</td>'
                         + "".join(f'<td class="num">{e(x)}</td>' for x in row[1:-1]) + f"<td>{e(row[-1])}</td></tr>")
        parts.append("</tbody></table></div>")
        parts.append('<ul class="verdicts">' + "".join(f"<li>{e(v)}</li>" for v in power_lines(r)) + "</ul>")
        notes = row_notes(r) + r.notes + [_METHODS]
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
        return "\n".join(parts)
    if fmt_name == "rich":
        from rich.console import Console

        console = Console(record=True, width=200, force_terminal=False, color_system=None)
        for item in rich_power(r):
            console.print(item)
        return console.export_text()
    raise InputError(f"unknown power format {fmt_name!r}", f"use one of: {', '.join(FORMATS)}")


def rich_power(r: PowerReport) -> list[Any]:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"Power: A = {r.label_a} vs B = {r.label_b}", caption=_header(r)[1])
    for h in _COLS:
        t.add_column(h, justify="left" if h in ("Metric", "Method") else "right")
    for row in _rows(r):
        t.add_row(*[escape(x) for x in row])
    notes = row_notes(r) + r.notes + [_METHODS]
    return [t] + [f"[bold]{escape(v)}[/]" for v in power_lines(r)] + [f"[yellow]•[/] {escape(n)}" for n in notes]


def plot_power(r: PowerReport) -> Any:
    """Power against N (log scale) per metric: target power dashed, the N here dotted."""
    from matplotlib.figure import Figure

    names = [m for m in r.table["metric"] if m in r.curves]
    if not names:
        raise InputError("no metric has a power curve (all Δ are 0 or not computable)", "pass --delta METRIC=VALUE")
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    table = r.table.set_index("metric")
    for k, m in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        ns, pows = r.curves[m]
        ax.plot(ns, pows, marker="o", ms=3)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.axhline(r.settings.power, ls="--", lw=0.8, color="grey")
        ax.axvline(int(table.loc[m, "n"]), ls=":", lw=0.8, color="black", label=f"N here = {int(table.loc[m, 'n'])}")
        need = table.loc[m, "n_needed"]
        if math.isfinite(need):
            ax.axvline(need, ls="--", lw=0.8, color="tab:red", label=f"N needed ≈ {int(need):,}")
        ax.set_title(f"{fmt.header(m)}: Δ = {fmt.signed(table.loc[m, 'delta'], m)}", fontsize=9)
        ax.set_xlabel("N images")
        ax.set_ylabel("power")
        ax.legend(fontsize=7, loc="lower right")
    return fig
