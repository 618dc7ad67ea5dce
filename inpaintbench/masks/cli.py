"""``inpaintbench masks ...``: build, verify, list, preview and import mask sets (thin wrappers)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from inpaintbench.errors import InpaintBenchError, InputError

console = Console()
err_console = Console(stderr=True)

masks_app = typer.Typer(
    help="Standard mask sets (MAT, LaMa, box): build them bit-exactly, verify digests, import your own "
    "mask folders, preview overlays. Files written: 8-bit PNG, 255 = hole.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``masks`` sub-app to the root CLI."""
    app.add_typer(masks_app, name="masks")


def _short(digest: str) -> str:
    return digest.replace("sha256:", "")[:16] + "…"


def check_committed(name: str | None, digest: str, n: int, seed: int | None) -> str:
    """Compare a set's digest with the committed definition of ``name``; raises on mismatch."""
    from inpaintbench.masks.standard import DigestMismatchError, standard_definitions

    d = standard_definitions().get(name or "")
    expected = d.expected_digest(n, seed) if (d is not None and seed is not None) else None
    if d is None or expected is None:
        return "no committed digest for this variant (nothing to compare with)"
    if digest != expected:
        raise DigestMismatchError(f"{name} (n={n}, seed={seed}) has digest {digest}, but {d.path.name} "
                                  f"commits {expected}", "this environment generates different masks; "
                                  "report it with the output of `inpaintbench env`")
    return f"matches the committed digest in {d.path.name}"


@masks_app.command("build")
def build_cmd(
    name: Annotated[str, typer.Argument(help="Standard set / protocol name, e.g. mat-large-256 "
                                             "(see `inpaintbench masks list`).")],
    n: Annotated[int | None, typer.Option("--n", min=1, help="Number of masks (default: the standard "
                                                             "set's, 1000).")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Base seed (default: the standard set's, "
                                                         "0).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the cache, "
                                                  "$INPAINTBENCH_HOME/masks).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes; the masks do not depend on it.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing mask set in --out.")] = False,
    write_definition: Annotated[bool, typer.Option(hidden=True,
                                                   help="Maintainers: rewrite masks/NAME.json.")] = False,
) -> None:
    """Generate a mask set (PNG files + manifest) and check it against the committed digest."""
    from inpaintbench.masks import standard
    from inpaintbench.masks.maskset import build_mask_set
    from inpaintbench.masks.protocols import get_protocol

    defs = standard.standard_definitions()
    d = defs.get(name)
    if write_definition:
        path = standard.write_definition(name, d.protocol if d else None, n or standard.DEFAULT_N,
                                         standard.DEFAULT_SEED if seed is None else seed, workers=workers)
        console.print(f"wrote {path}")
        return
    if out is None:
        if d is None:
            get_protocol(name)  # unknown names fail here with the list of protocols
            raise InputError(f"{name} has no standard definition, so it has no cache location",
                             "pass --out DIR")
        ms = standard.resolve_mask_set(name, n=n, seed=seed, workers=workers)
    else:
        protocol = d.protocol if d is not None else get_protocol(name).name
        n = n if n is not None else (d.n if d else standard.DEFAULT_N)
        seed = seed if seed is not None else (d.seed if d else standard.DEFAULT_SEED)
        ms = build_mask_set(protocol, n, seed, out, workers=workers, overwrite=overwrite, name=name)
    status = check_committed(name, ms.digest, len(ms), ms.seed)
    console.print(f"{ms.name}: {len(ms)} masks in {ms.path}")
    console.print(f"digest {ms.digest}: {status}")


@masks_app.command("verify")
def verify_cmd(
    target: Annotated[str | None, typer.Argument(help="Standard name or mask-set folder (default: every "
                                                      "standard set, built if missing).")] = None,
) -> None:
    """Re-hash a mask set and compare with its manifest and the committed digest; exit 1 on mismatch."""
    from inpaintbench.masks.maskset import MaskSet, MaskSetIntegrityError
    from inpaintbench.masks.standard import resolve_mask_set, standard_names

    targets = [target] if target else standard_names()
    failures = []
    for t in targets:
        try:
            if Path(t).exists():
                ms = MaskSet.load(t)
                ms.verify()
                generated = (ms.manifest.get("source") or {}).get("kind") == "generated"
                status = check_committed(ms.name if generated else None, ms.digest, len(ms), ms.seed)
            else:
                ms = resolve_mask_set(t)
                status = check_committed(t, ms.digest, len(ms), ms.seed)
            console.print(f"[green]ok[/green] {t}: {len(ms)} masks, digest {_short(ms.digest)}, {status}")
        except InpaintBenchError as e:
            if target:
                raise
            failures.append(f"{t}: {e.message}")
            err_console.print(f"[red]FAILED[/red] {t}: {e.message}", highlight=False)
    if failures:
        raise MaskSetIntegrityError(f"{len(failures)} of {len(targets)} standard mask sets failed "
                                    f"verification (first: {failures[0]})",
                                    "run `inpaintbench masks verify NAME` on each for details")


@masks_app.command("list")
def list_cmd() -> None:
    """The standard mask sets: protocol, resolution, count, seed, digest, hole-ratio statistics."""
    from inpaintbench.masks.standard import cache_path, standard_definitions

    table = Table(title="standard mask sets (files: 8-bit PNG, 255 = hole)", box=box.SIMPLE)
    for col in ("protocol", "res", "n", "seed", "digest", "mean", "p5-p95"):
        table.add_column(col, no_wrap=True)
    nan = float("nan")
    for name, d in sorted(standard_definitions().items()):
        hr = d.hole_ratio
        cached = "*" if (cache_path(name) / "manifest.json").is_file() else ""
        label = f"{d.protocol} v{d.version}{cached}" if d.protocol == name else \
            f"{name}{cached} ({d.protocol} v{d.version})"
        table.add_row(label, str(d.resolution), str(d.n), str(d.seed), d.digest.replace("sha256:", "")[:12],
                      f"{hr.get('mean', nan):.3f}", f"{hr.get('p5', nan):.2f}-{hr.get('p95', nan):.2f}")
    table.caption = "* = already built in the cache ($INPAINTBENCH_HOME/masks)"
    console.print(table)


def preview_images(resolution: int, n: int) -> list[np.ndarray]:
    """Images of the embedded ``samples`` dataset (synthetic gradients if it is unavailable)."""
    try:
        from inpaintbench.datasets import load_dataset
    except ImportError:
        err_console.print("note: inpaintbench.datasets unavailable; previewing on synthetic gradients")
        yy, xx = np.mgrid[0:resolution, 0:resolution] / max(resolution - 1, 1)
        base = np.stack([xx, yy, 1 - xx], axis=-1)
        return [np.round(255 * np.roll(base, k, axis=-1)).astype(np.uint8) for k in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # upscaled-samples note: irrelevant for a preview
        ds = load_dataset("samples", resolution=resolution)
    return [ds[i][1] for i in range(min(len(ds), n))]


@masks_app.command("preview")
def preview_cmd(
    name: Annotated[str, typer.Argument(help="Standard name or mask-set folder.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default mask-previews/NAME).")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="How many masks to show.")] = 16,
) -> None:
    """Overlay the first N masks on the embedded sample images; writes a contact sheet PNG."""
    from inpaintbench.masks.preview import preview_masks
    from inpaintbench.masks.standard import resolve_mask_set

    ms = resolve_mask_set(name)
    res = ms.resolution[0] if ms.resolution else 256
    out = out or Path("mask-previews") / Path(name).name
    sheet = preview_masks(ms, preview_images(res, n), out, n=n)
    console.print(f"contact sheet: {sheet}")


@masks_app.command("import")
def import_cmd(
    src: Annotated[Path, typer.Argument(help="Folder of mask images (read in file-name order).")],
    hole_value: Annotated[int, typer.Option(help="File value that marks the hole: 0 (MAT, CoModGAN) or 255 "
                                                 "(LaMa, IOPaint, OpenCV). Required: never guessed.")],
    out: Annotated[Path, typer.Option(help="Folder for the imported mask set.")],
    protocol: Annotated[str | None, typer.Option(help="Protocol the masks claim to follow (checks hole "
                                                      "ratios and size against it).")] = None,
    max_hole_ratio: Annotated[float, typer.Option(help="Masks with a larger hole ratio are refused as "
                                                       "probably inverted.")] = 0.9,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing mask set in --out.")] = False,
) -> None:
    """Validate and import a mask folder (polarity stated explicitly) as a hashed mask set."""
    from inpaintbench.masks.importing import MaskFileWarning, import_mask_folder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskFileWarning)  # printed below from the manifest
        ms = import_mask_folder(src, hole_value, out, protocol_hint=protocol, max_hole_ratio=max_hole_ratio,
                                overwrite=overwrite)
    for line in ms.manifest["source"]["notes"]:
        style = "yellow" if line.startswith("warning") else "dim"
        err_console.print(f"[{style}]{line}[/{style}]", highlight=False)
    ratios = ms.hole_ratios
    size = f"{ms.resolution[1]}x{ms.resolution[0]}" if ms.resolution else "mixed sizes"
    console.print(f"imported {len(ms)} masks into {ms.path} ({size}, hole ratio mean {ratios.mean():.3f}, "
                  f"min {ratios.min():.3f}, max {ratios.max():.3f})")
    console.print(f"digest {ms.digest}")
