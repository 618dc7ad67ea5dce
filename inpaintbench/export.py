"""`inpaintbench export`: the exact (image, mask) pairs of a benchmark, as files for another tool.

``OUT/images/<stem>.png`` is the ground truth exactly as `run` scores it (after the resolution
policy), ``OUT/masks/<stem>.png`` its mask with the polarity the user chose, and ``OUT/export.json``
maps every stem to its sample id (image id | mask id) with the sha256 of both files. Another tool
fills the holes; ``inpaintbench score --pred PRED --gt OUT/images --masks OUT/masks`` reads the
manifest back, checks the files against it, and scores under the same sample ids, so the result
compares with `run` runs on the same samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.results import atomic_write_json, read_json, sanitize_sample_id

EXPORT_SCHEMA = "inpaintbench.export"
EXPORT_VERSION = 1
EXPORT_MANIFEST = "export.json"


@dataclass
class ExportOutcome:
    out_dir: Path
    n: int
    manifest: dict[str, Any]


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_samples(out_dir: str | Path, *, dataset: str = "samples", masks: str = "mat-large-256",
                   resolution: int = 256, resize_policy: str = "center-crop", alpha: str = "refuse",
                   hole_value: int = 255, limit: int | None = None) -> ExportOutcome:
    """Write the benchmark's (image, mask) pairs; the same pairing and sizes as `run`."""
    from inpaintbench.datasets import load_dataset
    from inpaintbench.images import write_png
    from inpaintbench.masks import resolve_mask_set
    from inpaintbench.runner import plan_samples

    if hole_value not in (0, 255):
        raise InputError(f"--hole-value must be 0 or 255, got {hole_value}",
                         "use 255 for LaMa/IOPaint-style masks (255 = hole), 0 for MAT's")
    out = Path(out_dir)
    if (out / EXPORT_MANIFEST).exists() or (out / "images").exists():
        raise InputError(f"{out} already holds an export", "choose a new --out folder, or delete the old one")
    data = load_dataset(dataset, resolution=resolution, resize_policy=resize_policy, alpha=alpha)
    mask_set = resolve_mask_set(masks)
    samples = plan_samples(data.ids, mask_set.ids, limit)
    records = []
    for s in samples:
        image = data[s.image_index][1]
        hole = mask_set.get(s.mask_index)
        if hole.shape != image.shape[:2]:
            raise InputError(f"mask set {masks} is {hole.shape[1]}x{hole.shape[0]} but images are "
                             f"{image.shape[1]}x{image.shape[0]}",
                             "use a mask set of the export resolution (e.g. mat-large-256 with --resolution 256)")
        stem = sanitize_sample_id(s.sample_id)
        image_path = write_png(out / "images" / f"{stem}.png", image)
        mask_u8 = np.where(hole, hole_value, 255 - hole_value).astype(np.uint8)
        mask_path = write_png(out / "masks" / f"{stem}.png", mask_u8)
        records.append({"stem": stem, "sample_id": s.sample_id, "image_id": s.image_id, "mask_id": s.mask_id,
                        "image_sha256": _file_sha256(Path(image_path)),
                        "mask_sha256": _file_sha256(Path(mask_path))})
    manifest = {
        "schema": EXPORT_SCHEMA, "schema_version": EXPORT_VERSION,
        "dataset": {**data.describe(), "spec": dataset}, "masks": {**mask_set.describe(), "spec": masks},
        "resolution": resolution, "resize_policy": resize_policy, "hole_value": hole_value,
        "pairing": "image i <-> mask (i mod n_masks)", "limit": limit, "n": len(records), "samples": records,
    }
    atomic_write_json(out / EXPORT_MANIFEST, manifest)
    return ExportOutcome(out, len(records), manifest)


def read_export_samples(gt_dir: str | Path, masks_dir: str | Path, hole_value: int) -> dict[str, tuple[str, str]]:
    """``stem -> (image_id, mask_id)`` when ``gt_dir`` is the ``images/`` folder of an export.

    Empty when there is no export manifest next to it (plain folders are scored under their file
    stems). A manifest that does not match the files is an error: scoring edited files under the
    export's sample ids would claim a comparability they do not have.
    """
    gt = Path(gt_dir).resolve()
    manifest_path = gt.parent / EXPORT_MANIFEST
    if gt.name != "images" or not manifest_path.is_file():
        return {}
    manifest = read_json(manifest_path)
    if manifest.get("schema") != EXPORT_SCHEMA:
        return {}
    if Path(masks_dir).resolve() != gt.parent / "masks":
        raise InputError(f"{gt} comes from an export ({manifest_path}) but --masks is {masks_dir}",
                         f"pass --masks {gt.parent / 'masks'} (the export's own masks)")
    if int(manifest.get("hole_value", -1)) != hole_value:
        raise InputError(f"the export {manifest_path} wrote masks with {manifest.get('hole_value')} = hole, "
                         f"but --hole-value is {hole_value}", f"pass --hole-value {manifest.get('hole_value')}")
    out: dict[str, tuple[str, str]] = {}
    for rec in manifest.get("samples", []):
        for folder, key in (("images", "image_sha256"), ("masks", "mask_sha256")):
            path = gt.parent / folder / f"{rec['stem']}.png"
            if path.is_file() and _file_sha256(path) != rec[key]:
                raise InputError(f"{path} differs from what `inpaintbench export` wrote (sha256 mismatch)",
                                 "re-export the samples; never edit the exported ground truths or masks")
        out[rec["stem"]] = (str(rec["image_id"]), str(rec["mask_id"]))
    return out
