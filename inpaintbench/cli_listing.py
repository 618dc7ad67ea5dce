"""``inpaintbench models``, ``datasets`` and ``env``: the commands that list what is installed.

Tables of the registered models (and whether their weights are present), the dataset kinds, and
the environment for bug reports. :func:`register` adds them to the main app
(:data:`inpaintbench.cli.app`), where they were declared before; nothing here imports the CLI.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from inpaintbench.errors import InpaintBenchError

# Same console set-up as inpaintbench.cli: wide tables when the output is not a terminal.
console = Console() if Console().is_terminal else Console(width=200)

models_app = typer.Typer(help="List the registered models (default), or register a fine-tuned run.",
                         no_args_is_help=False)


@models_app.callback(invoke_without_command=True)
def models_cmd(ctx: typer.Context) -> None:
    """List the registered models and whether their weights are available."""
    if ctx.invoked_subcommand is not None:
        return
    from inpaintbench.models.base import get_model_spec, list_model_prefixes, list_models

    table = Table(title="models")
    for col in ("id", "summary", "native size", "licence", "weights", "status"):
        table.add_column(col)
    for name in list_models():
        spec = get_model_spec(name)
        table.add_row(name, spec.summary, spec.native_size or "any", spec.licence or "-",
                      ", ".join(spec.needs_weights) or "-", _weights_status(spec.needs_weights))
    for spec in list_model_prefixes():
        table.add_row(spec.name, spec.summary, spec.native_size or "any", spec.licence or "-", "per id",
                      "resolved at run time")
    console.print(table)


def _weights_status(ids: tuple[str, ...]) -> str:
    if not ids:
        return "ready"
    try:
        from inpaintbench.weights import resolve_weights
    except ImportError:
        return "unknown"
    missing = []
    for wid in ids:
        try:
            resolve_weights(wid, offline=True)
        except InpaintBenchError:
            missing.append(wid)
    return "ready" if not missing else f"missing weights: {', '.join(missing)} (inpaintbench weights where)"


def datasets_cmd() -> None:
    """List the built-in datasets and how to use your own folder."""
    from inpaintbench.datasets import list_datasets

    table = Table(title="datasets")
    rows = list_datasets()
    cols = list(rows[0]) if rows else ["name"]
    for col in cols:
        table.add_column(str(col))
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in cols))
    console.print(table)
    console.print("Your own images: --data folder:PATH (recursive; ids are relative paths without extension).")


def env_cmd() -> None:
    """Versions, device, cache paths and which weight files are present (paste this into bug reports)."""
    from inpaintbench.env_info import device_description, package_versions, resolve_device
    from inpaintbench.home import inpaintbench_home

    table = Table(title="inpaintbench environment", show_header=False)
    for key, value in package_versions().items():
        table.add_row(key, str(value))
    for key, value in device_description(resolve_device("auto")).items():
        table.add_row(key, str(value))
    table.add_row("INPAINTBENCH_HOME", str(inpaintbench_home()))
    table.add_row("weights cache", str(inpaintbench_home() / "weights"))
    table.add_row("masks cache", str(inpaintbench_home() / "masks"))
    import inpaintbench.metrics.netweights  # noqa: F401  (DINOv2, CLIP weight ids)
    import inpaintbench.models  # noqa: F401  (registers the model packages' weight ids)
    from inpaintbench.weights import list_weights, recorded_sha256, weights_status

    for spec in list_weights():
        status = weights_status(spec.id)
        if status["found"]:
            digest = recorded_sha256(status["found"])
            state = f"{status['found']} (sha256 {digest[:12] + '…' if digest else 'not checked yet'})"
        else:
            state = "missing"
        table.add_row(f"weights {spec.id}", state)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``models`` (a group: ``models register`` is added by the CLI), ``datasets`` and ``env`` to ``app``."""
    app.add_typer(models_app, name="models")
    app.command("datasets")(datasets_cmd)
    app.command("env")(env_cmd)
