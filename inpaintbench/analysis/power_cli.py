"""CLI commands ``power`` (how many images compare needs) and ``sanity`` (do the metrics react to damage).

Thin: parse, call :mod:`inpaintbench.analysis.power_report` / :mod:`inpaintbench.analysis.sanity_eval`,
print with rich or write a file, like :mod:`inpaintbench.analysis.cli`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from inpaintbench.analysis.cli import _console, _emit, _format, _shown_warnings, _split, _write_figure
from inpaintbench.errors import InputError

FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="rich, md, csv or html (default: rich, or "
                                                                      "from the -o suffix).")]
OutOpt = Annotated[Path | None, typer.Option("-o", "--out", help="Write the table to this file.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Also write the figure here (.png, .svg or .pdf).")]


def power(
    run_a: Annotated[Path, typer.Argument(help="Run directory A.")],
    run_b: Annotated[Path, typer.Argument(help="Run directory B.")],
    delta: Annotated[list[str] | None, typer.Option(
        "--delta", help="Difference A − B to detect, METRIC=VALUE (repeatable); default: the observed one.")] = None,
    power_level: Annotated[float, typer.Option("--power", help="Target power.")] = 0.8,
    alpha: Annotated[float, typer.Option(help="Significance level (as compare's --alpha).")] = 0.05,
    family: Annotated[int | None, typer.Option(
        help="Holm family size (default: the metrics in the table, as compare); 1 = the metric alone.")] = None,
    n_sim: Annotated[int, typer.Option("--n-sim", help="Simulated studies per N (per-image metrics).")] = 400,
    set_boot: Annotated[int, typer.Option(
        "--set-boot", help="Resamples per subsample size for FID/KID/IDS (each recomputes both metrics).")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and resampling.")] = 0,
    metrics: Annotated[str | None, typer.Option(help="Comma-separated metric names (default: all shared).")] = None,
    format: FormatOpt = None,
    out: OutOpt = None,
    plot: PlotOpt = None,
    allow_mixed: Annotated[bool, typer.Option("--allow-mixed", help="Allow runs on different data.")] = False,
) -> None:
    """How many images would compare need? Per metric: N for the observed (or --delta) Δ, and the MDD at this N."""
    from inpaintbench.analysis import power as pw
    from inpaintbench.analysis.load import load_runs
    from inpaintbench.analysis.power_report import (
        FORMATS,
        parse_deltas,
        plot_power,
        power_runs,
        render_power,
        rich_power,
    )

    console = _console()
    fmt_name = _format(format, out, FORMATS)
    if not 0 < alpha < 1 or not 0 < power_level < 1:
        raise InputError(f"--alpha and --power must be in (0, 1), got {alpha} and {power_level}",
                         "e.g. --alpha 0.05 --power 0.8")
    if n_sim < 10 or set_boot < 2 or (family is not None and family < 1):
        raise InputError("--n-sim must be >= 10, --set-boot >= 2 and --family >= 1", "use the defaults")
    if run_a.resolve() == run_b.resolve():
        raise InputError("RUN_A and RUN_B are the same directory", "pass two different runs")
    with _shown_warnings(console):
        a, b = load_runs([run_a, run_b])
    report = power_runs(a, b, pw.PowerSettings(power=power_level, alpha=alpha, n_sim=n_sim, seed=seed),
                        deltas=parse_deltas(delta), family=family, metrics=_split(metrics), set_boot=set_boot,
                        allow_mixed=allow_mixed)
    text = render_power(report, fmt_name) if fmt_name != "rich" or out is not None else ""
    if fmt_name == "html" and out is not None:
        from inpaintbench.analysis.report import html_page

        text = html_page("inpaintbench power", "<h1>Power</h1>\n" + text)
    _emit(console, text, out, (lambda: rich_power(report)) if fmt_name == "rich" else None)
    if plot is not None:
        _write_figure(console, plot_power(report), plot, False)


def sanity(
    data: Annotated[str, typer.Argument(help="`samples` (embedded) or `folder:PATH`.")] = "samples",
    masks: Annotated[str, typer.Option(help="Mask set: a standard name or a mask-set folder.")] = "mat-large-256",
    resolution: Annotated[int, typer.Option(help="Evaluation resolution (square): 256 or 512.")] = 256,
    resize_policy: Annotated[str, typer.Option(help="center-crop, pad, resize or short-side.")] = "center-crop",
    alpha: Annotated[str, typer.Option(help="RGBA inputs: refuse, or composite-white.")] = "refuse",
    metrics: Annotated[list[str] | None, typer.Option(
        help="Metrics to check, comma-separated (default: the default set of `run`).")] = None,
    feature_extractor: Annotated[str | None, typer.Option(
        help="inception-tf (default) or inception-stylegan2.")] = None,
    lpips_net: Annotated[str | None, typer.Option(help="LPIPS trunk: alex (default) or vgg.")] = None,
    degradations: Annotated[str | None, typer.Option(
        help="Comma-separated subset of blur, noise, colour, shuffle, mean, copy (default: all).")] = None,
    significance: Annotated[float, typer.Option(help="α of compare's test for 'detected at'.")] = 0.05,
    n_boot: Annotated[int, typer.Option("--n-boot", help="compare's bootstrap resamples (per-image).")] = 1000,
    set_boot: Annotated[int, typer.Option("--set-boot", help="compare's resamples for FID/KID.")] = 200,
    ids_boot: Annotated[int, typer.Option("--ids-boot", help="compare's resamples for P-/U-IDS (0 skips).")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the degradations and the bootstrap.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N samples.")] = None,
    runs_dir: Annotated[Path | None, typer.Option(
        "--runs-dir", help="Where the scored sets go (default results/sanity/<data>__<masks>__r<res>).")] = None,
    weights_dir: Annotated[Path | None, typer.Option(help="Where weight files live.")] = None,
    offline: Annotated[bool, typer.Option(help="Never touch the network; missing weights are reported.")] = False,
    allow_unverified_weights: Annotated[bool, typer.Option(help="Accept weight files whose sha256 does not "
                                                                "match.")] = False,
    format: FormatOpt = None,
    out: OutOpt = None,
    plot: PlotOpt = None,
) -> None:
    """Do the metrics react to damage on your images? Degrade the ground truth in the holes, score, check."""
    from inpaintbench.analysis.sanity_eval import (
        SanityResult,
        check_degradations,
        default_out,
        meta_evaluate,
        score_degraded_sets,
    )
    from inpaintbench.analysis.sanity_report import FORMATS, plot_sanity, render_sanity, rich_sanity
    from inpaintbench.runner import RunConfig

    console = _console()
    fmt_name = _format(format, out, FORMATS)
    if not 0 < significance < 1:
        raise InputError(f"--significance must be in (0, 1), got {significance}", "e.g. --significance 0.05")
    names = check_degradations(_split(degradations))
    settings: dict[str, Any] = {k: v for k, v in (("feature_extractor", feature_extractor),
                                                  ("lpips_net", lpips_net)) if v is not None}
    chosen = [x.strip() for v in metrics or [] for x in v.split(",") if x.strip()]
    if chosen:
        settings["metrics"] = tuple(chosen)
    config = RunConfig(model="sanity", dataset=data, resolution=resolution, resize_policy=resize_policy, alpha=alpha,
                       masks=masks, seed=seed, batch_size=batch_size, limit=limit, device=device,
                       weights_dir=str(weights_dir) if weights_dir else None, offline=offline or None,
                       allow_unverified=allow_unverified_weights, **settings)
    target = runs_dir or default_out(data, masks, resolution, limit)
    from inpaintbench.cli import make_progress

    with make_progress() as progress:
        dirs = score_degraded_sets(config, target, names, progress=progress, argv=sys.argv)
        task = progress.add_task("compare", total=len(names) * 3)
        with _shown_warnings(console):
            table, status = meta_evaluate(dirs, n_boot=n_boot, set_boot=set_boot, ids_boot=ids_boot,
                                          alpha=significance, seed=seed, on_compare=lambda: progress.advance(task))
    n = int(table["n"].max()) if len(table) else 0
    notes = [f"{m} {state.split(' [')[0]}" for m, state in status.items() if state != "ok"]  # details: the runs
    result = SanityResult(table, target, n, data, masks, status, notes)
    text = render_sanity(result, fmt_name) if fmt_name != "rich" or out is not None else ""
    if fmt_name == "html" and out is not None:
        from inpaintbench.analysis.report import html_page

        text = html_page("inpaintbench sanity", "<h1>Metric sanity checks</h1>\n" + text)
    _emit(console, text, out, (lambda: rich_sanity(result)) if fmt_name == "rich" else None)
    if plot is not None:
        _write_figure(console, plot_sanity(result), plot, False)


def register(app: typer.Typer) -> None:
    """Add ``power`` and ``sanity`` to ``app``."""
    app.command("power")(power)
    app.command("sanity")(sanity)
