"""``inpaintbench weights list|fetch|verify|where|import``: thin wrappers over :mod:`inpaintbench.weights`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from inpaintbench import weights as W
from inpaintbench.errors import WeightsError

_console = Console()

_DIR = typer.Option(None, "--weights-dir",
                    help="folder holding weight files (default $INPAINTBENCH_HOME/weights)")
_OFFLINE = typer.Option(None, "--offline/--online",
                        help="never open a network connection (default: $INPAINTBENCH_OFFLINE)")
_UNVERIFIED = typer.Option(False, "--allow-unverified-weights",
                           help="accept a file whose sha256 does not match (recorded as unverified)")


def _short(h: str | None) -> str:
    return (h[:16] + "…") if h else "-"


def weights_list(weights_dir: Path | None = _DIR) -> None:
    """Every registered weight file, where it is expected and whether it is present."""
    table = Table("id", "file", "sha256", "present", "source / how to get it")
    for spec in W.list_weights():
        st = W.weights_status(spec.id, weights_dir)
        how = spec.urls[0] if spec.urls else (spec.manual_instructions or "manual import")
        present = "[green]yes[/]" if st["found"] else "[red]no[/]"
        table.add_row(spec.id, spec.filename, _short(spec.sha256 or spec.sha256_prefix), present, how)
    _console.print(table)


def weights_where(weight_id: str | None = typer.Argument(None), weights_dir: Path | None = _DIR) -> None:
    """Expected path (and env override variable) of one or all weight files."""
    ids = [weight_id] if weight_id else [s.id for s in W.list_weights()]
    for wid in ids:
        st = W.weights_status(wid, weights_dir)
        found = st["found"] or "(missing)"
        typer.echo(f"{wid}\t{st['expected_path']}\t{st['env_var']}\t{found}")  # plain: scriptable


def weights_fetch(
    weight_id: str,
    weights_dir: Path | None = _DIR,
    offline: bool | None = _OFFLINE,
    allow_unverified: bool = _UNVERIFIED,
) -> None:
    """Download one weight file into the cache (verifies the sha256)."""
    r = W.resolve_weights(weight_id, weights_dir, offline=offline, allow_unverified=allow_unverified)
    typer.echo(f"{r.id}: {r.path} sha256 {r.sha256} verified={r.verified} ({r.source})")


def weights_verify(
    weight_id: str | None = typer.Argument(None),
    weights_dir: Path | None = _DIR,
) -> None:
    """Re-hash present files and compare with the registry (missing files are listed, not fetched)."""
    ids = [weight_id] if weight_id else [s.id for s in W.list_weights()]
    bad = 0
    for wid in ids:
        try:
            r = W.resolve_weights(wid, weights_dir, offline=True, download=False, rehash=True)
            _console.print(f"[green]ok[/] {wid}: {r.path} ({r.verified})", highlight=False)
        except WeightsError as e:
            missing = "not found" in e.message
            if weight_id or not missing:
                bad += 1
            tag = "[yellow]missing[/] " if missing else "[red]FAIL[/] "
            _console.print(tag + e.message, highlight=False)
    if bad:
        raise WeightsError(f"{bad} weight file(s) failed verification", "see the lines above")


def weights_import(
    weight_id: str,
    path: Path,
    weights_dir: Path | None = _DIR,
    link: bool = typer.Option(False, "--link", help="symlink instead of copying"),
    allow_unverified: bool = _UNVERIFIED,
) -> None:
    """Hash a local file and place it in the cache under its registry name."""
    r = W.import_weights(weight_id, path, copy=not link, weights_dir=weights_dir,
                         allow_unverified=allow_unverified)
    typer.echo(f"imported {r.id} -> {r.path} sha256 {r.sha256} verified={r.verified}")


def register(app: typer.Typer) -> None:
    """Add the ``weights`` sub-app to the root CLI."""
    sub = typer.Typer(help="External weight files: list, fetch, verify, locate, import.",
                      no_args_is_help=True)
    @sub.callback()
    def _ensure_registered() -> None:
        """Model packages (MAT, LaMa, MI-GAN...) register their weight ids when imported."""
        import inpaintbench.metrics.netweights  # noqa: F401  (DINOv2, CLIP)
        import inpaintbench.models  # noqa: F401

    sub.command("list")(weights_list)
    sub.command("where")(weights_where)
    sub.command("fetch")(weights_fetch)
    sub.command("verify")(weights_verify)
    sub.command("import")(weights_import)
    app.add_typer(sub, name="weights")
