"""Reading foreign mask files and importing mask folders, with the polarity always stated.

Rules (each one a clear message naming the file):

* ``hole_value`` (0 or 255) must be given: MAT/CoModGAN files use 0 = hole, LaMa/IOPaint/OpenCV
  files use 255 = hole, and nothing in a file says which.
* Channels: single channel (L, 1, 16-bit) is used as is. RGB(A) is accepted when the colour channels
  are identical (a note says so) or differ by at most ``GREY_TOLERANCE`` levels (lossy/colour-managed
  files; their mean is used, with a note); channels that differ more are an error.
  An alpha channel is dropped when fully opaque; a transparent alpha is an error, because it is
  ambiguous whether the alpha or the colour marks the hole. Palette images are converted to RGB.
* Values are thresholded at 127 (``> 127`` is "white"), as IOPaint does; if any pixel lies strictly
  between 0 and 255 (blurred or JPEG masks), a warning gives how many.
* A mask without hole pixels, or made only of hole, is an error; so is a hole ratio above
  ``max_hole_ratio`` (0.9), which nearly always means the polarity is inverted.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from inpaintbench.errors import InputError
from inpaintbench.masks.maskset import MaskSet
from inpaintbench.masks.protocols import get_protocol
from inpaintbench.masks.setfiles import base_header, mask_id, write_mask, write_set

THRESHOLD = 127
MAX_HOLE_RATIO = 0.9
GREY_TOLERANCE = 8  # colour channels within this many levels count as one grey channel (JPEG noise)
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class MaskFileWarning(UserWarning):
    """Something about a mask file was converted (non-binary values, extra channels, range)."""


@dataclass
class MaskFileReport:
    """What :func:`read_mask_file` did to one file."""

    path: Path
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    in_between: int = 0


def _other(hole_value: int) -> int:
    return 255 if hole_value == 0 else 0


def _check_hole_value(hole_value: Any) -> int:
    if hole_value not in (0, 255):
        raise InputError(f"hole value must be 0 or 255, got {hole_value!r}",
                         "pass --hole-value 0 for MAT/CoModGAN masks (black = hole) or 255 for "
                         "LaMa/IOPaint/OpenCV masks (white = hole)")
    return int(hole_value)


def _gray(path: Path, report: MaskFileReport) -> np.ndarray:
    """One uint8 channel from any supported file, or an InputError naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                mode = im.mode
                report.notes.append("palette image converted to RGB")
            arr = np.asarray(im)
    except FileNotFoundError:
        raise InputError(f"mask file {path} does not exist", "check the path") from None
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"mask file {path} cannot be read as an image ({e})",
                         "give a PNG/JPEG/BMP/TIFF mask") from None
    if mode == "1":
        return arr.astype(np.uint8) * 255
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        if arr.max() > 255:
            report.notes.append(f"{mode} values scaled to 8 bits (divided by 257)")
            return np.clip(np.round(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        return arr.astype(np.uint8)
    if mode == "L":
        return arr
    if mode not in ("LA", "RGB", "RGBA"):
        raise InputError(f"mask file {path} has image mode {mode}, which is not a mask format",
                         "save the mask as an 8-bit grayscale (L) PNG")
    if mode in ("LA", "RGBA"):
        alpha = arr[..., -1]
        if np.any(alpha != 255):
            raise InputError(f"mask file {path} has a transparent alpha channel: it is ambiguous whether "
                             "the alpha or the colour marks the hole",
                             "save the channel that marks the hole as a single-channel (L) PNG")
        report.notes.append("fully opaque alpha channel ignored")
        arr = arr[..., :-1]
    if arr.ndim == 2 or arr.shape[-1] == 1:
        return arr.reshape(arr.shape[:2])
    channels = [arr[..., c] for c in range(arr.shape[-1])]
    if all(np.array_equal(channels[0], c) for c in channels[1:]):
        report.notes.append(f"{arr.shape[-1]}-channel mask with identical channels: channel 0 used")
        return channels[0]
    diff = int(max(np.abs(c.astype(np.int16) - channels[0]).max() for c in channels[1:]))
    if diff > GREY_TOLERANCE:
        n_diff = int(np.count_nonzero(np.any([c != channels[0] for c in channels[1:]], axis=0)))
        raise InputError(f"mask file {path} has {arr.shape[-1]} channels that differ (by up to {diff} "
                         f"levels on {n_diff} pixels), so it is not a grey mask",
                         "convert it to single-channel grayscale after checking which channel marks the "
                         "hole (e.g. PIL: Image.open(p).getchannel('R').save(q))")
    report.notes.append(f"{arr.shape[-1]}-channel mask whose channels differ by at most {diff} level(s) "
                        f"(<= {GREY_TOLERANCE}): their mean is used")
    return np.round(arr.astype(np.float32).mean(axis=-1)).astype(np.uint8)


def read_mask_file(path: str | os.PathLike, hole_value: int,
                   expected_size: tuple[int, int] | int | None = None,
                   max_hole_ratio: float = MAX_HOLE_RATIO,
                   allow_trivial: bool = False) -> tuple[np.ndarray, MaskFileReport]:
    """Like :func:`load_mask_file` but also returns the notes/warnings instead of emitting them."""
    path = Path(path)
    hole_value = _check_hole_value(hole_value)
    report = MaskFileReport(path)
    gray = _gray(path, report)
    h, w = gray.shape
    if expected_size is not None:
        eh, ew = (expected_size, expected_size) if isinstance(expected_size, int) else tuple(expected_size)
        if (h, w) != (eh, ew):
            raise InputError(f"mask file {path} is {w}x{h} (WxH) but the image is {ew}x{eh}",
                             "give a mask of the image's size (resize it with nearest-neighbour "
                             "interpolation if it was made for a resized image)")
    in_between = int(np.count_nonzero((gray != 0) & (gray != 255)))
    if in_between:
        report.in_between = in_between
        share = 100 * in_between / gray.size
        report.warnings.append(f"{in_between} pixels ({share:.2f}%) were between 0 and 255 (blurred or "
                               f"lossy mask); thresholded at {THRESHOLD} (> {THRESHOLD} = white)")
    white = gray > THRESHOLD
    hole = white if hole_value == 255 else ~white
    n_hole = int(np.count_nonzero(hole))
    what = "white (255)" if hole_value == 255 else "black (0)"
    if allow_trivial and n_hole in (0, hole.size):
        return hole, report
    if n_hole == 0:
        raise InputError(f"mask file {path} has no hole pixels (hole = {what})",
                         f"check the polarity (try --hole-value {_other(hole_value)}) or drop the file")
    if n_hole == hole.size:
        raise InputError(f"mask file {path} is entirely hole (hole = {what})",
                         f"check the polarity (try --hole-value {_other(hole_value)}) or drop the file")
    ratio = n_hole / hole.size
    if ratio > max_hole_ratio:
        raise InputError(f"mask file {path} has hole ratio {ratio:.3f} > {max_hole_ratio}: looks like wrong "
                         f"polarity", f"try --hole-value {_other(hole_value)} (or raise --max-hole-ratio if "
                         "such large holes are intended)")
    return hole, report


def load_mask_file(path: str | os.PathLike, hole_value: int,
                   expected_size: tuple[int, int] | int | None = None,
                   max_hole_ratio: float = MAX_HOLE_RATIO, allow_trivial: bool = False) -> np.ndarray:
    """Read one mask file as bool ``[H, W]`` (True = hole), with the polarity stated by the caller.

    ``expected_size`` is ``(H, W)`` (or one int for square); a mismatch raises :class:`InputError`
    naming the file and both sizes. Conversions are reported as :class:`MaskFileWarning`. A mask with
    no hole or only hole is an error unless ``allow_trivial`` (then the caller decides what to do).
    """
    hole, report = read_mask_file(path, hole_value, expected_size, max_hole_ratio, allow_trivial)
    for msg in report.notes + report.warnings:
        warnings.warn(MaskFileWarning(f"{report.path}: {msg}"), stacklevel=2)
    return hole


def list_mask_files(src_dir: Path) -> list[Path]:
    """Image files directly inside ``src_dir``, sorted by name (the order of the imported ids)."""
    if not src_dir.is_dir():
        raise InputError(f"{src_dir} is not a folder", "give the folder that holds the mask files")
    files = sorted(p for p in src_dir.iterdir() if p.is_file() and p.suffix.lower() in MASK_EXTENSIONS)
    if not files:
        raise InputError(f"{src_dir} holds no mask images ({', '.join(MASK_EXTENSIONS)})",
                         "point at the folder that directly contains the mask files")
    return files


def _summarize_reports(reports: list[MaskFileReport]) -> list[str]:
    """One line per kind of conversion (not one per file: an import may hold 36,500 masks)."""
    notes: dict[str, list[str]] = {}
    for r in reports:
        for m in r.notes:
            key = m
            if "whose channels differ" in m:
                key = m.split(" whose channels differ")[0] + " whose channels differ slightly: mean used"
            notes.setdefault(key, []).append(r.path.name)
    out = [f"note: {k} ({len(v)} of {len(reports)} files, first: {v[0]})" for k, v in notes.items()]
    blurred = [r for r in reports if r.in_between]
    if blurred:
        total = sum(r.in_between for r in blurred)
        worst = max(blurred, key=lambda r: r.in_between)
        out.append(f"warning: {len(blurred)} of {len(reports)} masks had pixels between 0 and 255 ({total} "
                   f"pixels in all, most in {worst.path.name}: {worst.in_between}); thresholded at "
                   f"{THRESHOLD} (> {THRESHOLD} = white)")
    return out


def import_mask_folder(src_dir: str | os.PathLike, hole_value: int, out_dir: str | os.PathLike,
                       protocol_hint: str | None = None, max_hole_ratio: float = MAX_HOLE_RATIO,
                       overwrite: bool = False) -> MaskSet:
    """Import the mask images of ``src_dir`` (sorted by file name) as a mask set in ``out_dir``.

    Ids are ``000000``... in that order; each manifest entry keeps its ``source_file``. Every file is
    validated with :func:`read_mask_file` before anything is written; notes and warnings are emitted
    as :class:`MaskFileWarning` and recorded in the manifest (``source.notes``). With
    ``protocol_hint``, masks outside the protocol's hole-ratio range or size are warned about.
    """
    src = Path(src_dir).expanduser().absolute()
    hole_value = _check_hole_value(hole_value)
    proto = get_protocol(protocol_hint) if protocol_hint else None
    files = list_mask_files(src)
    holes, reports = [], []
    for f in files:
        hole, report = read_mask_file(f, hole_value, None, max_hole_ratio)
        holes.append(hole)
        reports.append(report)
    messages = _summarize_reports(reports)
    if proto is not None:
        lo, hi = proto.hole_ratio_range
        outside = [f.name for f, h in zip(files, holes, strict=True) if not lo <= float(h.mean()) <= hi]
        if outside:
            messages.append(f"warning: {len(outside)} of {len(files)} masks have hole ratios outside "
                            f"{proto.name}'s range [{lo}, {hi}] (first: {outside[0]})")
        square = (proto.resolution, proto.resolution)
        wrong = [f.name for f, h in zip(files, holes, strict=True) if h.shape != square]
        if wrong:
            messages.append(f"warning: {len(wrong)} of {len(files)} masks are not {proto.resolution}x"
                            f"{proto.resolution} like {proto.name} (first: {wrong[0]})")
    sizes = {h.shape for h in holes}
    if len(sizes) > 1:
        messages.append(f"note: masks have {len(sizes)} different sizes; the set has no single resolution")
    for m in messages:
        if m.startswith("warning: "):
            warnings.warn(MaskFileWarning(m[len("warning: "):]), stacklevel=2)
    header = base_header(Path(out_dir).name, len(holes))
    header.update({
        "protocol": proto.name if proto else None,
        "version": None,
        "source": {"kind": "imported", "src_dir": str(src), "hole_value": hole_value,
                   "threshold": f"> {THRESHOLD} is white", "max_hole_ratio": max_hole_ratio,
                   "notes": messages},
    })

    def produce(tmp: Path) -> list[dict[str, Any]]:
        entries = []
        for i, (f, hole) in enumerate(zip(files, holes, strict=True)):
            entry = write_mask(tmp, mask_id(i), hole)
            entry["source_file"] = f.name
            entries.append(entry)
        return entries

    return MaskSet.load(write_set(Path(out_dir), header, produce, "replace" if overwrite else "error"))
