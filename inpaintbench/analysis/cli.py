"""CLI commands of the analysis package: ``leaderboard``, ``compare``, ``correlate``, ``plot ...``,
``report``. Thin: parse, call the library, print with rich or write a file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from inpaintbench.errors import InputError

T = TypeVar("T")

_EXT_FORMAT = {
    ".md": "md",
    ".markdown": "md",
    ".csv": "csv",
    ".tex": "latex",
    ".html": "html",
    ".htm": "html",
    ".txt": "rich",
}

ResultsArg = Annotated[
    list[Path], typer.Argument(help="Run directories, or folders containing run directories.")
]
AllowMixed = Annotated[
    bool,
    typer.Option(
        "--allow-mixed",
        help="Show runs on different datasets/mask sets side by side (never ranked together).",
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("-o", "--out", help="Write to this file instead of the terminal.")
]
MetricsOpt = Annotated[
    str | None, typer.Option("--metrics", help="Comma-separated metric names (default: all).")
]
SvgOpt = Annotated[bool, typer.Option("--svg", help="Also write an SVG next to the PNG.")]
FigOut = Annotated[Path, typer.Option("-o", "--out", help="Figure file (.png, .svg or .pdf).")]


def _console() -> Console:
    return Console()


def _split(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


@contextmanager
def _shown_warnings(console: Console) -> Iterator[None]:
    """Print analysis warnings (skipped folders...) as one yellow line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}")


def _format(fmt_name: str | None, out: Path | None, allowed: tuple[str, ...]) -> str:
    if fmt_name is None:
        fmt_name = _EXT_FORMAT.get(out.suffix.lower(), "md") if out is not None else "rich"
    if fmt_name not in allowed:
        raise InputError(f"unknown --format {fmt_name!r}", f"use one of: {', '.join(allowed)}")
    return fmt_name


def _emit(console: Console, text: str, out: Path | None, renderables: Callable[[], list[Any]] | None) -> None:
    if out is not None:
        from inpaintbench.results import atomic_write_bytes

        atomic_write_bytes(out, text.encode("utf-8"))
        console.print(f"wrote {out}")
    elif renderables is not None:
        for item in renderables():
            console.print(item)
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def _write_figure(console: Console, fig: Any, out: Path, svg: bool) -> None:
    from inpaintbench.analysis.plots import save_figure

    for p in save_figure(fig, out, also=("svg",) if svg else ()):
        console.print(f"wrote {p}")


def leaderboard(
    results: ResultsArg,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="rich, md, csv, latex or html (default: rich, or from the -o suffix)."
        ),
    ] = None,
    out: OutOpt = None,
    allow_mixed: AllowMixed = False,
    by_bin: Annotated[
        bool | None,
        typer.Option(
            "--by-bin/--no-by-bin",
            help="Per-hole-ratio-bin breakdown: shown by default except for csv, where --by-bin outputs "
            "it instead of the main table (long format).",
        ),
    ] = None,
    metrics: MetricsOpt = None,
) -> None:
    """Rank runs: mean [95% bootstrap CI] per metric, best marked, with a per-hole-ratio-bin breakdown."""
    from inpaintbench.analysis.leaderboard import (
        FORMATS,
        bins_table,
        leaderboard_table,
        render_leaderboard,
        rich_tables,
    )
    from inpaintbench.analysis.load import load_runs

    console = _console()
    fmt_name = _format(format, out, FORMATS)
    with _shown_warnings(console):
        runs = load_runs(results)
    ms = _split(metrics)
    df = leaderboard_table(runs, allow_mixed=allow_mixed, metrics=ms)
    want_bins = by_bin if by_bin is not None else fmt_name != "csv"
    bins = bins_table(runs, allow_mixed=allow_mixed, metrics=ms) if want_bins else None
    text = render_leaderboard(df, fmt_name, bins) if fmt_name != "rich" or out is not None else ""
    _emit(console, text, out, (lambda: rich_tables(df, bins)) if fmt_name == "rich" else None)


def compare(
    run_a: Annotated[Path, typer.Argument(help="Run directory A.")],
    run_b: Annotated[Path, typer.Argument(help="Run directory B.")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="rich, md, csv or html.")] = None,
    out: OutOpt = None,
    allow_mixed: AllowMixed = False,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    n_boot: Annotated[
        int, typer.Option("--n-boot", help="Bootstrap resamples for per-image metrics.")
    ] = 1000,
    set_boot: Annotated[
        int, typer.Option("--set-boot", help="Bootstrap resamples for FID/KID (slow for large N).")
    ] = 200,
    ids_boot: Annotated[
        int,
        typer.Option("--ids-boot", help="Bootstrap resamples for P-IDS/U-IDS (each refits an SVM; 0 skips)."),
    ] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    metrics: MetricsOpt = None,
    power: Annotated[bool, typer.Option(
        "--power/--no-power",
        help="Add 'to detect Δ = … you would need about N = … images' for per-image metrics without a "
             "detected difference (see `inpaintbench power`).")] = True,
) -> None:
    """Is A different from B? Paired tests on shared samples, Holm-corrected, with plain verdicts."""
    from inpaintbench.analysis.compare import compare_runs, render_comparison, rich_comparison
    from inpaintbench.analysis.load import load_runs

    console = _console()
    fmt_name = _format(format, out, ("rich", "md", "csv", "html"))
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be between 0 and 1, got {alpha}", "use e.g. --alpha 0.05")
    with _shown_warnings(console):
        a, b = load_runs([run_a, run_b]) if run_a.resolve() != run_b.resolve() else (None, None)
    if a is None:
        raise InputError("RUN_A and RUN_B are the same directory", "pass two different runs")
    c = compare_runs(
        a,
        b,
        allow_mixed=allow_mixed,
        alpha=alpha,
        n_boot=n_boot,
        set_n_boot=set_boot,
        ids_n_boot=ids_boot,
        seed=seed,
        metrics=_split(metrics),
        power=power,
    )
    text = render_comparison(c, fmt_name) if fmt_name != "rich" or out is not None else ""
    if fmt_name == "html" and out is not None:
        from inpaintbench.analysis.report import html_page

        text = html_page("inpaintbench comparison", "<h1>Comparison</h1>\n" + text)

    def items() -> list[Any]:
        return rich_comparison(c) + [""] + [f"[bold]{v}[/]" for v in c.verdict_lines()]

    _emit(console, text, out, items if fmt_name == "rich" else None)


def correlate(
    results: ResultsArg,
    format: Annotated[str | None, typer.Option("--format", "-f", help="rich, md, csv or html.")] = None,
    out: OutOpt = None,
    methods: Annotated[str, typer.Option(help="Comma-separated: pearson, spearman, kendall.")] = (
        "pearson,spearman,kendall"
    ),
    n_boot: Annotated[
        int, typer.Option("--n-boot", help="Bootstrap resamples for Spearman/Kendall CIs.")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    metrics: MetricsOpt = None,
    figure: Annotated[Path | None, typer.Option(help="Also write the scatter-matrix figure here.")] = None,
) -> None:
    """Do the metrics agree? Pearson/Spearman/Kendall with CIs per run, and ranking agreement."""
    from inpaintbench.analysis.correlate import correlation_table, ranking_agreement, render_correlations
    from inpaintbench.analysis.load import digest_groups, load_runs

    console = _console()
    fmt_name = _format(format, out, ("rich", "md", "csv", "html"))
    with _shown_warnings(console):
        runs = load_runs(results)
    table = correlation_table(
        runs, metrics=_split(metrics), methods=_split(methods) or (), n_boot=n_boot, seed=seed
    )
    ranking = None
    if len(runs) < 3:
        console.print("[yellow]note:[/] ranking agreement across models needs at least 3 runs")
    elif len(digest_groups(runs)) > 1:
        console.print(
            "[yellow]note:[/] ranking agreement skipped: the runs use different datasets or mask sets "
            "(never ranked together); the per-run correlations are unaffected"
        )
    else:
        _, ranking, _ = ranking_agreement(runs)
    if fmt_name == "html" and out is not None:
        from inpaintbench.analysis.report import html_page

        text = html_page(
            "inpaintbench correlations",
            "<h1>Correlations</h1>\n" + render_correlations(table, "html", ranking),
        )
    else:
        text = render_correlations(table, fmt_name, ranking)
    _emit(console, text, out, None)
    if figure is not None:
        from inpaintbench.analysis.plots import plot_correlations

        _write_figure(console, plot_correlations(runs, metrics=_split(metrics), seed=seed), figure, False)


plot_app = typer.Typer(
    help="Figures: metric by hole-ratio bin, training curves, comparison grids, correlation scatter matrix.",
    no_args_is_help=True,
)


@plot_app.command("bins")
def plot_bins_cmd(
    results: ResultsArg,
    out: FigOut,
    svg: SvgOpt = False,
    metrics: MetricsOpt = None,
    allow_mixed: AllowMixed = False,
) -> None:
    """Mean and 95% CI of each metric per hole-ratio bin, one line per run."""
    from inpaintbench.analysis.load import load_runs
    from inpaintbench.analysis.plots import plot_bins

    console = _console()
    with _shown_warnings(console):
        runs = load_runs(results)
    _write_figure(console, plot_bins(runs, metrics=_split(metrics), allow_mixed=allow_mixed), out, svg)


@plot_app.command("training")
def plot_training_cmd(
    logs: Annotated[list[Path], typer.Argument(help="metrics.jsonl files (or training run folders).")],
    out: FigOut,
    svg: SvgOpt = False,
    keys: Annotated[str | None, typer.Option(
        help="Comma-separated keys or patterns, e.g. val.psnr,val.fid or 'loss.*' (default: the val.* metrics, "
        "or the losses before the first validation).")] = None,
    labels: Annotated[str | None, typer.Option(help="Comma-separated legend labels, one per log.")] = None,
) -> None:
    """Validation metrics and losses against kimg from trainers' metrics.jsonl."""
    from inpaintbench.analysis.plots import plot_training

    lab = _split(labels)
    if lab is not None and len(lab) != len(logs):
        raise InputError(f"--labels has {len(lab)} names for {len(logs)} logs", "give one label per log")
    _write_figure(_console(), plot_training(logs, labels=lab, keys=_split(keys)), out, svg)


@plot_app.command("grid")
def plot_grid_cmd(
    results: ResultsArg,
    out: FigOut,
    svg: SvgOpt = False,
    ids: Annotated[str | None, typer.Option(help="Comma-separated sample ids (default: automatic).")] = None,
    auto: Annotated[
        int,
        typer.Option(
            help="With no --ids: this many samples where runs differ most, "
            "and as many where they differ least."
        ),
    ] = 3,
    metric: Annotated[
        str | None, typer.Option(help="Metric for the automatic choice (default lpips).")
    ] = None,
) -> None:
    """Ground truth | masked input | one column per run (needs runs made with --save-images)."""
    from inpaintbench.analysis.load import load_runs
    from inpaintbench.analysis.plots import plot_grid

    console = _console()
    with _shown_warnings(console):
        runs = load_runs(results)
    fig, notes = plot_grid(runs, sample_ids=_split(ids), n_auto=auto, metric=metric)
    for n in notes:
        console.print(f"[yellow]note:[/] {n}")
    _write_figure(console, fig, out, svg)


@plot_app.command("correlations")
def plot_correlations_cmd(
    results: ResultsArg, out: FigOut, svg: SvgOpt = False, metrics: MetricsOpt = None
) -> None:
    """Scatter matrix of per-image metrics and hole ratio with fitted curves and CI bands."""
    from inpaintbench.analysis.load import load_runs
    from inpaintbench.analysis.plots import plot_correlations

    console = _console()
    with _shown_warnings(console):
        runs = load_runs(results)
    _write_figure(console, plot_correlations(runs, metrics=_split(metrics)), out, svg)


def report(
    results: ResultsArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="HTML file to write.")] = Path("report.html"),
    allow_mixed: AllowMixed = False,
    pairs: Annotated[
        str, typer.Option(help="Significance: 'best' (best run vs each other) or 'all' pairs.")
    ] = ("best"),
    reference_metric: Annotated[
        str | None, typer.Option(help="Metric that picks the best run (default fid, else lpips, else psnr).")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot")] = 1000,
    set_boot: Annotated[int, typer.Option("--set-boot")] = 200,
    ids_boot: Annotated[int, typer.Option("--ids-boot")] = 50,
    grid_ids: Annotated[str | None, typer.Option(help="Comma-separated sample ids for the grids.")] = None,
    grid_auto: Annotated[int, typer.Option(help="Samples per automatic grid section.")] = 3,
    seed: Annotated[int, typer.Option()] = 0,
    humans: Annotated[Path | None, typer.Option(
        "--humans", help="Judgments database from `inpaintbench rate`: adds a Human judgments section.")] = None,
) -> None:
    """One self-contained HTML report (opens offline): leaderboard, significance, correlations, figures."""
    from inpaintbench.analysis.load import load_runs
    from inpaintbench.analysis.report import write_report

    if pairs not in ("best", "all"):
        raise InputError(f"unknown --pairs {pairs!r}", "use 'best' or 'all'")
    console = _console()
    with _shown_warnings(console):
        runs = load_runs(results)
    path = write_report(
        runs,
        out,
        allow_mixed=allow_mixed,
        pairs=pairs,
        reference_metric=reference_metric,
        n_boot=n_boot,
        set_n_boot=set_boot,
        ids_n_boot=ids_boot,
        grid_ids=_split(grid_ids),
        grid_auto=grid_auto,
        seed=seed,
        humans_db=humans,
    )
    console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add ``leaderboard``, ``compare``, ``correlate``, ``plot`` (sub-app) and ``report`` to ``app``."""
    app.command("leaderboard")(leaderboard)
    app.command("compare")(compare)
    app.command("correlate")(correlate)
    app.add_typer(plot_app, name="plot")
    app.command("report")(report)
