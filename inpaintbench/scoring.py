"""`inpaintbench score`: evaluate predictions made by any tool, paired by relative path, never by order.

Three folders (predictions, ground truths, masks) are matched on the relative path without
extension (``a/b.png`` pairs with ``a/b.jpg``). A stem missing from one folder, or present twice in
one folder, is an error: silently mis-paired files are the classic way to publish wrong numbers.

When the ground truths were written by ``inpaintbench export``, the export's manifest gives every
file its sample id (image id | mask id), so the result compares with ``run`` runs on the same
samples: both paths hash the arrays they score the same way (:mod:`inpaintbench.identity`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench import distributed
from inpaintbench.env_info import resolve_device
from inpaintbench.errors import InputError
from inpaintbench.evaluation import BatchResult, Evaluation, RunOutcome, Sample, base_manifest
from inpaintbench.export import read_export_samples
from inpaintbench.identity import identity_hash, metric_identity
from inpaintbench.images import (
    IMAGE_EXTENSIONS,  # one list for every folder input
    read_image,
)
from inpaintbench.masks import load_mask_file
from inpaintbench.runner import RunConfig, _describe, build_suite, composite, mask_problem


def index_folder(folder: str | Path, role: str) -> dict[str, Path]:
    """Map relative-path-without-extension -> file for every image under ``folder``."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{role} folder {root} does not exist", f"pass an existing directory for --{role}")
    found: dict[str, Path] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
        stem = path.relative_to(root).with_suffix("").as_posix()
        if stem in found:
            raise InputError(f"{role} folder has two files for {stem!r}: {found[stem].name} and {path.name}",
                             "keep one file per image")
        found[stem] = path
    if not found:
        raise InputError(f"{role} folder {root} contains no images ({', '.join(IMAGE_EXTENSIONS)})",
                         f"point --{role} at the folder holding the files")
    return found


def pair_folders(pred: dict[str, Path], gt: dict[str, Path], masks: dict[str, Path]) -> list[str]:
    """The sorted common stems; any stem not present in all three folders is an error."""
    stems = set(gt)
    for role, files in (("pred", pred), ("masks", masks)):
        missing = sorted(stems - set(files))
        extra = sorted(set(files) - stems)
        if missing or extra:
            detail = (f"missing in --{role}: {', '.join(missing[:5])}" if missing
                      else f"in --{role} but not in --gt: {', '.join(extra[:5])}")
            more = len(missing) + len(extra) - 5
            raise InputError(f"--{role} and --gt do not pair up ({detail}{f' and {more} more' if more > 0 else ''})",
                             "files are paired by relative path without extension; rename or remove them")
    return sorted(stems)


def _digest(stems: Sequence[str], files: dict[str, Path]) -> str:
    h = hashlib.sha256()
    for stem in stems:
        h.update(stem.encode() + b"\0")
        h.update(hashlib.sha256(files[stem].read_bytes()).digest())
    return h.hexdigest()


def score_folders(pred_dir: str | Path, gt_dir: str | Path, masks_dir: str | Path, hole_value: int,
                  out_dir: str | Path, *, config: RunConfig | None = None, composite_known: bool = False,
                  alpha: str = "refuse", progress: Any | None = None, overwrite: bool = False,
                  argv: Sequence[str] | None = None) -> RunOutcome | None:
    """Score existing predictions into a run directory with the same schema as `run`."""
    config = config or RunConfig(model="external")
    device = resolve_device(config.device)
    ctx = distributed.init_from_env(device)
    if ctx.active and device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
    t0 = time.perf_counter()
    pred_files, gt_files, mask_files = (index_folder(pred_dir, "pred"), index_folder(gt_dir, "gt"),
                                        index_folder(masks_dir, "masks"))
    stems = pair_folders(pred_files, gt_files, mask_files)
    if config.limit:
        stems = stems[: config.limit]
    exported = read_export_samples(gt_dir, masks_dir, hole_value)
    ids = {stem: exported.get(stem, (stem, stem)) for stem in stems}
    samples = [Sample(i, i, i, *ids[stem]) for i, stem in enumerate(stems)]
    batches = _batches_by_shape(samples, stems, gt_files, config.batch_size)

    gt_digest, mask_digest = _digest(stems, gt_files), _digest(stems, mask_files)
    suite = build_suite(config, device)
    metrics_description = _describe(suite)
    metric_config = {k: v for k, v in config.resume_key().items()
                     if k in ("metrics", "feature_extractor", "lpips_net", "seed", "limit", "preset")}
    identity = {
        "kind": "score",
        "config": metric_config,
        "data": {"pred_digest": _digest(stems, pred_files), "gt_digest": gt_digest, "masks_digest": mask_digest,
                 "hole_value": hole_value, "composite": composite_known, "alpha": alpha, "limit": config.limit,
                 "sample_ids": "export manifest" if exported else "file stems"},
        "metrics": metric_identity(metrics_description, config.preset),
    }
    name = config.model
    manifest = base_manifest(identity, device, ctx, argv, run_id=f"{name}-{identity_hash(identity)}")
    manifest["model"] = {"name": name, "kind": "external predictions", "pred_dir": str(pred_dir),
                         "composited_by_inpaintbench": composite_known}
    manifest["dataset"] = {"name": f"folder:{gt_dir}", "spec": f"folder:{gt_dir}", "digest": gt_digest,
                           "n": len(stems), "resolution": None, "resize_policy": "none (native sizes)",
                           "sample_ids": ("from the export manifest (image id | mask id)" if exported
                                          else "file stems (stem | stem)")}
    manifest["masks"] = {"name": f"folder:{masks_dir}", "digest": mask_digest, "n": len(stems),
                         "protocol": "imported", "file_polarity": f"{hole_value}=hole"}
    manifest["comparable"] = config.limit is None
    manifest["metrics"] = metrics_description

    evaluation = Evaluation(Path(out_dir), identity, manifest, samples, batches, suite, list(suite.metrics), ctx,
                            save_images=False, overwrite=overwrite, execution={"batch_size": config.batch_size})
    if evaluation.finished:
        from inpaintbench.results import read_run_files

        m, rows, summary = read_run_files(out_dir)
        return RunOutcome(Path(out_dir), m, summary, rows)
    todo = evaluation.todo()
    task = progress.add_task(f"score {name}", total=len(samples)) if progress is not None else None

    def advance(n: int) -> None:
        if progress is not None:
            progress.advance(task, n)

    stem_of = {s.sample_id: stem for s, stem in zip(samples, stems, strict=True)}
    produced = _file_batches(batches, todo, stem_of, pred_files, gt_files, mask_files, hole_value,
                             composite_known, alpha)
    evaluation.consume(produced, advance)
    return evaluation.finalize({"seconds_total": time.perf_counter() - t0})


def _batches_by_shape(samples: list[Sample], stems: list[str], gt_files: dict[str, Path],
                      batch_size: int) -> list[list[Sample]]:
    """Consecutive samples of one image size share a batch (sizes are read from headers only)."""
    from PIL import Image

    batches: list[list[Sample]] = []
    last_size = None
    for s, stem in zip(samples, stems, strict=True):
        try:
            with Image.open(gt_files[stem]) as im:
                size = im.size
        except Exception:
            size = None  # read_image reports the corrupt file with a clear error later
        if not batches or size != last_size or len(batches[-1]) >= batch_size:
            batches.append([])
        batches[-1].append(s)
        last_size = size
    return batches


def _file_batches(batches: list[list[Sample]], todo: set[int], stem_of: dict[str, str],
                  pred_files: dict[str, Path], gt_files: dict[str, Path], mask_files: dict[str, Path],
                  hole_value: int, composite_known: bool, alpha: str) -> Iterator[tuple[int, BatchResult]]:
    for b, batch in enumerate(batches):
        if b not in todo:
            continue
        gts, holes, preds, errors = [], [], [], []
        for s in batch:
            stem = stem_of[s.sample_id]
            gt = read_image(gt_files[stem], alpha=alpha)
            # No-hole and all-hole masks fail their rows, exactly as in `run` (mask_problem).
            hole = load_mask_file(mask_files[stem], hole_value=hole_value, expected_size=gt.shape[:2],
                                  allow_trivial=True)
            pred = read_image(pred_files[stem], alpha=alpha)
            if pred.shape != gt.shape:
                raise InputError(
                    f"{pred_files[stem]} is {pred.shape[1]}x{pred.shape[0]} but its ground truth "
                    f"{gt_files[stem]} is {gt.shape[1]}x{gt.shape[0]}",
                    "predictions must have the ground truth's size; resize or crop them first",
                )
            gts.append(gt)
            holes.append(hole)
            preds.append(composite(pred, gt, hole) if composite_known else pred)
            errors.append(mask_problem(hole))
        yield b, BatchResult(np.stack(gts), np.stack(holes), np.stack(preds), errors, 0.0)
