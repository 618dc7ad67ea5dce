"""Overlay previews of a mask set: the hole tinted on real images, tiled into one contact sheet."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from inpaintbench.atomic import atomic_write_bytes
from inpaintbench.errors import InputError
from inpaintbench.masks.maskset import MaskSet

TINT = np.array([255, 40, 40], dtype=np.float32)  # red
TINT_ALPHA = 0.55
TILE = 256
CONTACT_SHEET = "contact_sheet.png"


def overlay(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``image`` (uint8 HxWx3) with the hole tinted red and its border drawn; resized to the mask."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"preview images must be uint8 HxWx3, got {image.dtype} {image.shape}",
                         "pass RGB uint8 arrays")
    h, w = hole.shape
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    out = image.astype(np.float32)
    out[hole] = (1 - TINT_ALPHA) * out[hole] + TINT_ALPHA * TINT
    edge = hole & ~cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    out[edge] = TINT
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _save_png(img: np.ndarray, path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def preview_masks(mask_set: MaskSet, images: Sequence[np.ndarray], out_dir: str | os.PathLike,
                  n: int = 16) -> Path:
    """Write overlays of the first ``n`` masks (mask ``i`` on ``images[i % len(images)]``).

    Writes ``overlay_<id>.png`` per mask and ``contact_sheet.png`` (tiles of at most 256 px, labelled
    with id and hole ratio) into ``out_dir``; returns the contact sheet's path.
    """
    if not images:
        raise InputError("no images to preview masks on", "pass at least one image")
    n = max(1, min(n, len(mask_set)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    label_h = 14
    sheet = Image.new("RGB", (cols * TILE, rows * (TILE + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        mid = mask_set.ids[i]
        hole = mask_set.get(i)
        over = overlay(np.asarray(images[i % len(images)]), hole)
        _save_png(over, out / f"overlay_{mid}.png")
        tile = Image.fromarray(over)
        tile.thumbnail((TILE, TILE), Image.Resampling.LANCZOS)
        x, y = (i % cols) * TILE, (i // cols) * (TILE + label_h)
        sheet.paste(tile, (x, y + label_h))
        draw.text((x + 2, y + 1), f"{mid}  hole {mask_set.hole_ratio(i):.1%}", fill=(0, 0, 0))
    path = out / CONTACT_SHEET
    _save_png(np.asarray(sheet), path)
    return path
