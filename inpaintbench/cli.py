"""The `inpaintbench` command. Thin: it parses arguments and calls the library.

Exit codes: 0 ok, 1 failure (a clear one-line error for anything the user can fix), 2 usage error.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from inpaintbench.cli_listing import (  # noqa: F401
    _weights_status,
    datasets_cmd,
    env_cmd,
    models_app,
    models_cmd,
)
from inpaintbench.cli_listing import register as register_listing
from inpaintbench.errors import InpaintBenchError

app = typer.Typer(
    name="inpaintbench",
    help="Evaluate and compare image inpainting models: standard masks, paper-comparable metrics, statistics.\n\n"
    "Start with `inpaintbench run` (classical models on the embedded sample images), then "
    "`inpaintbench run --help`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables are wide: when output goes to a file or CI log (no terminal), don't squeeze them into 80 columns.
console = Console() if Console().is_terminal else Console(width=200)
err_console = Console(stderr=True) if Console(stderr=True).is_terminal else Console(stderr=True, width=200)


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _parse_model_options(values: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings as factory keyword arguments; VALUE is read as JSON when it parses
    (numbers, true/false, null), else kept as text."""
    import json

    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE (e.g. resize_policy=pad)",
                                     param_hint="--model-option")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


#: Evaluation conventions of a paper's own scripts (MAT's evaluatoin/ scripts, LaMa's bin/evaluate_predicts.py): what
#: `--preset NAME` fills in.
PRESETS: dict[str, dict[str, Any]] = {
    # MAT (Li et al., CVPR 2022), evaluatoin/*.py: TorchScript Inception with in-graph TF resize for
    # FID and P-IDS/U-IDS, lpips alex v0.1 on [-1,1], PSNR/SSIM/L1 on uint8 RGB.
    "mat": {"metrics": ("psnr", "ssim", "l1", "lpips", "fid", "p_ids", "u_ids"),
            "feature_extractor": "inception-stylegan2", "lpips_net": "alex"},
}


def _apply_preset(preset: str | None, **explicit: Any) -> dict[str, Any]:
    """Explicit options win over the preset; ``None`` where neither says (the run's defaults apply)."""
    if preset is None:
        return explicit
    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}; known: {', '.join(PRESETS)} (LaMa's FID uses "
                                 "pytorch-fid's torch-bilinear resize, which inpaintbench does not reproduce, so "
                                 "there is no `lama` preset; its SSIM is available as --metrics ssim_lama and its "
                                 "LPIPS as lpips_vgg)", param_hint="--preset")
    return {k: (v if v is not None else PRESETS[preset].get(k)) for k, v in explicit.items()}


# Metric options shared by `run` and `score`.
MetricsOpt = Annotated[list[str] | None, typer.Option(
    help="Metrics to compute, comma-separated. Default: psnr, ssim, l1, psnr_hole, l1_hole, lpips, fid, kid, "
    "p_ids, u_ids; opt-in: ssim_lama, lpips_vgg, fid_inf.")]
RequireMetricsOpt = Annotated[str | None, typer.Option(
    help="Comma-separated metrics that must be available (e.g. lpips,fid); otherwise fail.")]
ExtractorOpt = Annotated[str | None, typer.Option(help="inception-tf (torch-fidelity, default) or "
                                                       "inception-stylegan2 (MAT-exact).")]
LpipsNetOpt = Annotated[str | None, typer.Option(
    help="LPIPS trunk: alex (MAT, default; column lpips) or vgg (LaMa; computed as the lpips_vgg column).")]
PresetOpt = Annotated[str | None, typer.Option(
    help="Paper conventions: `mat` = MAT's evaluation (NVIDIA TorchScript Inception, LPIPS-alex; PSNR, "
    "SSIM, L1, LPIPS, FID, P-IDS, U-IDS). Explicit --metrics/--feature-extractor/--lpips-net win.")]


def _metric_settings(preset: str | None, metrics: list[str] | None, feature_extractor: str | None,
                     lpips_net: str | None, require_metrics: str | None) -> dict[str, Any]:
    """RunConfig keyword arguments for the metric options: explicit values, else the preset's; what
    neither sets is left out so that RunConfig's defaults apply."""
    settings = _apply_preset(preset, metrics=tuple(_split(metrics)) or None,
                             feature_extractor=feature_extractor, lpips_net=lpips_net)
    out = {k: v for k, v in settings.items() if v is not None}
    out["require_metrics"] = tuple(_split([require_metrics or ""]))
    out["preset"] = preset
    return out


def hf_dataset_options(data: str, image_column: str | None, filters: list[str] | None,
                       id_column: str | None) -> dict[str, Any]:
    """RunConfig.dataset_options from the --hf-* options (canonical: filters sorted), {} when none is set."""
    from inpaintbench.hf_data import dataset_options

    return dataset_options(data, image_column, filters, id_column)


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err_console, transient=False,
    )


@app.command()
def run(
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Model id(s), comma-separated or repeated. Default: every weights-free model "
        "(telea, ns, biharmonic). See `inpaintbench models`.")] = None,
    data: Annotated[str, typer.Option("--data", "--dataset", "-d",
                                      help="`samples` (embedded), `folder:PATH` or `hf:NAME_OR_PATH[:split]` "
                                           "(a Hugging Face dataset; pip install inpaintbench[hf]).")] = "samples",
    hf_image_column: Annotated[str | None, typer.Option(
        help="hf: the image column (default: the only Image feature).")] = None,
    hf_filter: Annotated[list[str] | None, typer.Option(
        help="hf: keep rows with COLUMN=VALUE, repeatable (ClassLabel columns by label name, e.g. "
        "genre=portrait; OR within a column, AND across columns).")] = None,
    hf_id_column: Annotated[str | None, typer.Option(
        help="hf: column of unique sample ids (default: the row index in the split).")] = None,
    masks: Annotated[str, typer.Option(help="Mask set: a standard name (see `inpaintbench masks list`) "
                                            "or a folder made by `masks build`/`masks import`.")] = "mat-large-256",
    resolution: Annotated[int, typer.Option(help="Evaluation resolution (square): 256 or 512.")] = 256,
    resize_policy: Annotated[str, typer.Option(
        help="How images of another size are brought to the resolution: center-crop, pad, resize or "
        "short-side.")] = "center-crop",
    alpha: Annotated[str, typer.Option(help="RGBA inputs: refuse, or composite-white.")] = "refuse",
    weights: Annotated[Path | None, typer.Option(help="Checkpoint for a network model (mat, lama, "
                                                         "migan-256/512): pkl, pt/pth, ckpt or safetensors.")] = None,
    truncation_psi: Annotated[float | None, typer.Option(help="MAT truncation psi.")] = None,
    noise_mode: Annotated[str | None, typer.Option(help="MAT noise mode: const, random or none.")] = None,
    precision: Annotated[str | None, typer.Option(help="Model precision: fp32 (default), bf16 or fp16 "
                                                          "(GPU autocast). Metrics always run in fp32.")] = None,
    model_option: Annotated[list[str] | None, typer.Option(
        "--model-option", "-O", help="Extra model setting KEY=VALUE, repeatable; e.g. for MAT "
        "resize_policy=pad|resize|error, impl=fast|winograd|reference, micro_batch=2.")] = None,
    metrics: MetricsOpt = None,
    require_metrics: RequireMetricsOpt = None,
    feature_extractor: ExtractorOpt = None,
    lpips_net: LpipsNetOpt = None,
    preset: PresetOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for everything random (model z, bootstrap).")] = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N samples (marked not "
                                                             "comparable).")] = None,
    save_images: Annotated[bool, typer.Option(help="Write predictions, masked inputs and masks as PNG.")] = False,
    out: Annotated[Path | None, typer.Option(help="Output root; each model writes OUT/<model>-<identity hash>. "
                                                     "Default: results/runs/<dataset>__<masks>__r<res>/.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run with a different config.")] = False,
    weights_dir: Annotated[Path | None, typer.Option(help="Where weight files live "
                                                             "(default $INPAINTBENCH_HOME/weights).")] = None,
    offline: Annotated[bool, typer.Option(help="Never touch the network; missing weights are reported.")] = False,
    allow_unverified_weights: Annotated[bool, typer.Option(help="Accept weight files whose sha256 does not "
                                                                "match (recorded as unverified).")] = False,
) -> None:
    """Evaluate model(s) on a dataset with a mask set; print a leaderboard; write results directories.

    A killed run resumes when the same command is run again. Under `torchrun --nproc_per_node=K` the
    data is sharded across processes and the results are identical to a single process.
    """
    from inpaintbench.runner import CLASSICAL_MODELS, RunConfig, default_group_dir, evaluate_model

    metric_settings = _metric_settings(preset, metrics, feature_extractor, lpips_net, require_metrics)
    models = _split(model) or list(CLASSICAL_MODELS)
    model_kwargs: dict[str, Any] = {}
    for key, value in (("weights", weights), ("truncation_psi", truncation_psi), ("noise_mode", noise_mode),
                       ("precision", precision)):
        if value is not None:
            model_kwargs[key] = str(value) if isinstance(value, Path) else value
    model_kwargs.update(_parse_model_options(model_option))
    dataset_options = hf_dataset_options(data, hf_image_column, hf_filter, hf_id_column)
    outcomes = []
    with make_progress() as progress:
        for name in models:
            config = RunConfig(
                model=name, model_kwargs=dict(model_kwargs), dataset=data, dataset_options=dataset_options,
                resolution=resolution,
                resize_policy=resize_policy, alpha=alpha, masks=masks, seed=seed, batch_size=batch_size,
                limit=limit, save_images=save_images, device=device,
                weights_dir=str(weights_dir) if weights_dir else None, offline=offline or None,
                allow_unverified=allow_unverified_weights, **metric_settings,
            )
            outcome = evaluate_model(config, None, progress=progress, overwrite=overwrite, argv=sys.argv,
                                     out_group=out if out else default_group_dir(config))
            if outcome is not None:
                outcomes.append(outcome)
    if outcomes:
        _report(outcomes)


def _report(outcomes: list[Any]) -> None:
    from inpaintbench.analysis.leaderboard import print_leaderboard
    from inpaintbench.metrics.info import METRICS

    reasons: dict[str, list[str]] = {}
    for outcome in outcomes:
        for metric, state in outcome.manifest.get("metric_status", {}).items():
            # Set-level metrics (FID, KID, IDS) are explained in the leaderboard's notes.
            if state != "ok" and (metric not in METRICS or METRICS[metric].per_image):
                reasons.setdefault(state, [])
                if metric not in reasons[state]:
                    reasons[state].append(metric)
        if outcome.summary.get("n_failed"):
            err_console.print(f"[red]{outcome.manifest['model']['name']}: {outcome.summary['n_failed']} "
                              f"sample(s) failed; see {outcome.run_dir / 'per_image.parquet'}[/red]")
    for state, names in reasons.items():
        err_console.print(f"[yellow]{', '.join(names)} {state}[/yellow]", highlight=False)
    print_leaderboard([o.run_dir for o in outcomes], console=console, bins=True)
    # The run directories themselves (their names carry the identity hash): what compare/report take.
    for o in outcomes:
        console.print(f"Results: {o.run_dir}", highlight=False, soft_wrap=True)


@app.command()
def score(
    pred: Annotated[Path, typer.Option(help="Folder of predictions (any tool).")],
    gt: Annotated[Path, typer.Option(help="Folder of ground-truth images.")],
    masks: Annotated[Path, typer.Option(help="Folder of masks.")],
    hole_value: Annotated[int, typer.Option(help="Mask file value that marks the hole: 0 (MAT) or 255 "
                                                 "(LaMa, IOPaint). Required: polarity is never guessed.")],
    name: Annotated[str, typer.Option(help="Name for this set of predictions in leaderboards.")] = "external",
    out: Annotated[Path | None, typer.Option(help="Results directory (default results/runs/score/<name>).")] = None,
    composite_known: Annotated[bool, typer.Option("--composite/--no-composite",
                                                  help="Paste the ground truth's known pixels into the "
                                                       "predictions before scoring.")] = False,
    metrics: MetricsOpt = None,
    require_metrics: RequireMetricsOpt = None,
    feature_extractor: ExtractorOpt = None,
    lpips_net: LpipsNetOpt = None,
    preset: PresetOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap resamples and KID subsets.")] = 0,
    alpha: Annotated[str, typer.Option(help="RGBA inputs: refuse, or composite-white.")] = "refuse",
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N files (marked not comparable).")] = None,
    weights_dir: Annotated[Path | None, typer.Option(help="Where weight files live.")] = None,
    offline: Annotated[bool, typer.Option(help="Never touch the network; missing weights are reported.")] = False,
    allow_unverified_weights: Annotated[bool, typer.Option(help="Accept weight files whose sha256 does not "
                                                                "match (recorded as unverified).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing results directory.")] = False,
) -> None:
    """Score predictions made by any tool: files are paired by relative path, never by sort order.

    Ground truths and masks written by `inpaintbench export` keep their benchmark sample ids, so the
    result compares with `inpaintbench run` runs on the same samples.
    """
    from inpaintbench.runner import RunConfig
    from inpaintbench.scoring import score_folders

    if hole_value not in (0, 255):
        raise typer.BadParameter("must be 0 or 255", param_hint="--hole-value")
    config = RunConfig(model=name, batch_size=batch_size, device=device, limit=limit,
                       weights_dir=str(weights_dir) if weights_dir else None, offline=offline or None, seed=seed,
                       allow_unverified=allow_unverified_weights,
                       **_metric_settings(preset, metrics, feature_extractor, lpips_net, require_metrics))
    target = out or Path("results/runs/score") / name
    with make_progress() as progress:
        outcome = score_folders(pred, gt, masks, hole_value, target, config=config,
                                composite_known=composite_known, alpha=alpha, progress=progress,
                                overwrite=overwrite, argv=sys.argv)
    if outcome is not None:
        _report([outcome])


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option(help="New folder: OUT/images/<id>.png, OUT/masks/<id>.png, "
                                           "OUT/export.json.")],
    data: Annotated[str, typer.Option("--data", "--dataset", "-d",
                                      help="`samples` (embedded) or `folder:PATH`.")] = "samples",
    masks: Annotated[str, typer.Option(help="Mask set: a standard name or a mask-set folder.")] = "mat-large-256",
    resolution: Annotated[int, typer.Option(help="Evaluation resolution (square): 256 or 512.")] = 256,
    resize_policy: Annotated[str, typer.Option(help="center-crop, pad, resize or short-side.")] = "center-crop",
    alpha: Annotated[str, typer.Option(help="RGBA inputs: refuse, or composite-white.")] = "refuse",
    hole_value: Annotated[int, typer.Option(help="Value that marks the hole in the written mask files: 255 "
                                                 "(LaMa, IOPaint) or 0 (MAT).")] = 255,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N samples.")] = None,
) -> None:
    """Write a benchmark's exact (image, mask) pairs for another tool; score its fills with `score`.

    The images are the ground truths exactly as `run` scores them (after the resolution policy) and
    image i gets mask i, as in `run`.
    """
    from inpaintbench.export import export_samples

    if hole_value not in (0, 255):
        raise typer.BadParameter("must be 0 or 255", param_hint="--hole-value")
    outcome = export_samples(out, dataset=data, masks=masks, resolution=resolution, resize_policy=resize_policy,
                             alpha=alpha, hole_value=hole_value, limit=limit)
    console.print(f"Exported {outcome.n} samples to {out} (masks: {hole_value} = hole).", highlight=False)
    console.print(f"Fill them with your tool, then: inpaintbench score --pred PRED --gt {out / 'images'} "
                  f"--masks {out / 'masks'} --hole-value {hole_value} --name MODEL", highlight=False, soft_wrap=True)


# The listing commands (models, datasets, env) live in cli_listing; registered here, at the place they
# were declared (the order of --help), and re-exported for callers of their old location.
register_listing(app)


def _register_subcommands() -> None:
    """Commands that live next to their library code (masks, weights, analysis, training)."""
    import importlib

    for module in ("inpaintbench.masks.cli", "inpaintbench.cli_weights", "inpaintbench.analysis.cli",
                   "inpaintbench.train.cli", "inpaintbench.analysis.power_cli", "inpaintbench.humans.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
                raise
            continue
        mod.register(app)


_register_subcommands()


def _register_models_subcommands() -> None:
    """`inpaintbench models register NAME RUN_DIR` (same as `inpaintbench register-model`)."""
    from inpaintbench.train.cli import register_model_cmd

    models_app.command("register")(register_model_cmd)


_register_models_subcommands()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: user errors become one line on stderr and exit code 1.

    Usage errors are reported by typer itself (exit code 2).
    """
    warnings.simplefilter("default")
    warnings.formatwarning = _format_warning
    try:
        app(args=argv, standalone_mode=True)
    except InpaintBenchError as exc:
        # Messages are plain text: escape them, or rich eats "[diffusers]" in "pip install inpaintbench[diffusers]".
        err_console.print(f"[bold red]error:[/bold red] {escape(exc.message)}", highlight=False)
        if exc.fix:
            err_console.print(f"[bold]fix:[/bold] {escape(exc.fix)}", highlight=False)
        return 1
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        warnings.formatwarning = _default_formatwarning
    return 0


_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_default_formatwarning = warnings.formatwarning


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None) -> str:
    """Our own warnings are messages for the user (one line naming the file and the fix), not code
    locations; third-party warnings keep Python's format so that their origin stays visible."""
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        return f"warning: {message}\n"
    return _default_formatwarning(message, category, filename, lineno, line)


if __name__ == "__main__":
    sys.exit(main())
