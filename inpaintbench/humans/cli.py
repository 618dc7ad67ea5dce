"""CLI: ``inpaintbench rate RUN_A RUN_B ...`` and ``inpaintbench humans DB [RUNS...]`` /
``humans export`` / ``humans import``. Thin: parse, call the library, print."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from inpaintbench.errors import InputError

DEFAULT_DB = "humans.sqlite"


def _console() -> Console:
    return Console() if Console().is_terminal else Console(width=200)


def default_db(first_run: Path) -> Path:
    """The study database next to the runs: ``<first run's parent>/humans.sqlite``."""
    return first_run.resolve().parent / DEFAULT_DB


def rate(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run directories made with --save-images.")],
    db_path: Annotated[Path | None, typer.Option("--db", help="Judgments database (default: humans.sqlite in "
                                                               "the first run's parent folder).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but 127.0.0.1/localhost (e.g. 0.0.0.0 "
                                           "for a lab's LAN) needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 = any free port).")] = 8765,
    token: Annotated[str | None, typer.Option(help="Access token required on every request (generated and "
                                                   "printed when --host is not loopback and none is given).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the pair order and the left/right draws.")] = 0,
    repeats: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of pairs shown twice (sides flipped) "
                                                                   "to measure rater consistency.")] = 0.1,
    attention: Annotated[float, typer.Option("--attention-checks", min=0.0, max=1.0,
                                             help="Share of extra attention checks: a completion against the "
                                                  "unfilled or mean-colour input (0 = none).")] = 0.0,
    passes: Annotated[int, typer.Option(min=1, help="How many times each rater goes through every pair.")] = 1,
) -> None:
    """Rate completions in the browser: two runs' fills of the same image side by side (2AFC).

    Every choice is saved in SQLite before the next pair is shown; stop with Ctrl-C and run the same
    command again to continue the same study. Analyse with `inpaintbench humans DB`.
    """
    from inpaintbench.humans.server import is_loopback, make_server
    from inpaintbench.humans.study import Study, StudyOptions

    console = _console()
    study = Study.from_paths(runs, StudyOptions(seed=seed, repeats=repeats, attention=attention, passes=passes))
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(16)
        console.print(f"--host {host} is reachable from other machines: generated access token {token}",
                      highlight=False)
    if token is not None and (len(token) < 8 or not token.isascii() or not token.isprintable()):
        raise InputError("--token must be at least 8 printable ASCII characters",
                         "e.g. --token $(openssl rand -hex 16)")
    db_file = db_path or default_db(runs[0])
    try:
        server = make_server(study, str(db_file), host=host, port=port, token=token)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         "choose another --port (or --port 0 for any free one)") from None
    bound_port = server.server_address[1]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown_host}:{bound_port}/" + (f"?token={token}" if token else "")
    n = len(study.sample_ids)
    k = len(study.runs)
    console.print(f"Study {study.key()}: {k} runs ({', '.join(r.label for r in study.runs)}), {n} images, "
                  f"{n * k * (k - 1) // 2} pairs per rater and pass", highlight=False)
    console.print(f"Judgments: {db_file}", highlight=False, soft_wrap=True)
    console.print(f"Rate at {url}", highlight=False, soft_wrap=True)
    console.print("Press Ctrl-C to stop (nothing is lost; the same command continues the study).", highlight=False)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()
        server.service.close()
    console.print(f"Analyse: inpaintbench humans {db_file} {' '.join(str(r) for r in runs)}", highlight=False,
                  soft_wrap=True)


class _DefaultToShow(TyperGroup):
    """``humans DB [RUNS...]`` means ``humans show DB [RUNS...]``; ``export``/``import`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


humans_app = typer.Typer(cls=_DefaultToShow, no_args_is_help=True,
                         help="Analyse human judgments: `humans DB [RUNS...]` (win rates, Bradley–Terry, metric "
                              "agreement), `humans export DB -o judgments.csv`, `humans import CSV --db DB`.")


@humans_app.command("show")
def show(
    db_path: Annotated[Path, typer.Argument(metavar="DB", help="Judgments database written by `rate`.")],
    runs: Annotated[list[Path] | None, typer.Argument(help="The rated runs (default: the paths recorded in DB); "
                                                          "needed for metric agreement.")] = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help="rich, md, csv or html (default: rich, or "
                                                                      "from the -o suffix).")] = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write to this file.")] = None,
    figure: Annotated[Path | None, typer.Option(help="Also write the metric-agreement plot (.png/.svg/.pdf).")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=0, help="Bootstrap resamples (over images).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Win rates with Wilson CIs and sign tests, Bradley–Terry scores, rater agreement, and every
    per-image metric's 2AFC agreement with the judgments."""
    from inpaintbench.analysis.cli import _emit, _format, _write_figure
    from inpaintbench.humans.analysis import analyse
    from inpaintbench.humans.render import FORMATS, plot_agreement, render, rich_tables

    console = _console()
    fmt_name = _format(format, out, FORMATS)
    a = analyse(db_path, runs or None, n_boot=n_boot, seed=seed)
    text = render(a, fmt_name) if fmt_name != "rich" or out is not None else ""
    if fmt_name == "rich" and out is not None:
        text = render(a, "md")
    _emit(console, text, out, (lambda: rich_tables(a)) if fmt_name == "rich" and out is None else None)
    if figure is not None:
        _write_figure(console, plot_agreement(a), figure, False)


@humans_app.command("export")
def export(
    db_path: Annotated[Path, typer.Argument(metavar="DB", help="Judgments database.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="CSV file to write.")] = Path("judgments.csv"),
) -> None:
    """Write every judgment (with its pair, sides, rater, time, GT use) as one CSV table."""
    from inpaintbench.humans.transfer import export_csv

    n = export_csv(db_path, out)
    _console().print(f"wrote {n} judgments to {out}", highlight=False)


@humans_app.command("import")
def import_(
    csv_path: Annotated[Path, typer.Argument(metavar="CSV", help="Judgments CSV (from `humans export`, or "
                                                                "rater,sample_id,run_a,run_b,choice).")],
    db_path: Annotated[Path, typer.Option("--db", help="Database to add them to (created if new).")],
) -> None:
    """Add judgments collected elsewhere; those already in DB (same pair_id) are skipped."""
    from inpaintbench.humans.transfer import import_csv

    added, skipped = import_csv(csv_path, db_path)
    _console().print(f"imported {added} judgments into {db_path} ({skipped} already there)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``rate`` and the ``humans`` sub-app to ``app``."""
    app.command("rate")(rate)
    app.add_typer(humans_app, name="humans")


__all__: list[Any] = ["register", "rate", "humans_app", "default_db"]
