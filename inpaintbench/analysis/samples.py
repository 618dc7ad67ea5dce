"""What a comparison grid shows: ground truth reloaded from a run's dataset, saved images, and
which samples to show (where the runs differ most and least).

Pure data, no plotting: :func:`inpaintbench.analysis.plots.plot_grid` draws what this returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.analysis.load import PER_IMAGE_METRICS, Run
from inpaintbench.errors import InputError

__all__ = ["DatasetGroundTruth", "GroundTruth", "dataset_ground_truth", "masked_input", "read_png", "select_samples"]

GroundTruth = Callable[[Run, str], "np.ndarray | None"]


class DatasetGroundTruth:
    """Ground truth reloaded from each run's dataset spec (cached per spec); None when unavailable.

    ``reason`` holds why the last dataset could not be opened (shown under the grid).
    """

    def __init__(self) -> None:
        self.cache: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        self.reason: str | None = None

    def _open(self, ds: dict[str, Any]) -> dict[str, Any] | None:
        try:
            from inpaintbench import datasets
        except ImportError as exc:  # pragma: no cover - the module ships with the package
            self.reason = str(exc)
            return None
        spec = ds.get("spec") or ds.get("name")
        kwargs: dict[str, Any] = {}
        if isinstance(ds.get("resolution"), int):
            kwargs["resolution"] = ds["resolution"]
        if ds.get("resize_policy") in getattr(datasets, "RESIZE_POLICIES", ()):
            kwargs["resize_policy"] = ds["resize_policy"]
        try:
            d = datasets.load_dataset(spec, **kwargs)
            return {"ds": d, "index": {str(i): k for k, i in enumerate(d.ids)}}
        except Exception as exc:  # any failure: the grid is drawn without the ground-truth column
            self.reason = f"dataset {spec!r} could not be reloaded: {getattr(exc, 'message', exc)}"
            return None

    def __call__(self, run: Run, image_id: str) -> np.ndarray | None:
        ds = run.manifest.get("dataset") or {}
        key = (ds.get("spec"), ds.get("name"), ds.get("resolution"), ds.get("resize_policy"))
        if key not in self.cache:
            self.cache[key] = self._open(ds)
        entry = self.cache[key]
        if entry is None:
            return None
        idx = entry["index"].get(image_id)
        return None if idx is None else np.asarray(entry["ds"][idx][1])


def dataset_ground_truth() -> GroundTruth:
    return DatasetGroundTruth()


def read_png(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB") if im.mode not in ("L", "1") else im.convert("L"))


def masked_input(gt: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray | None:
    """Ground truth with the hole painted grey (used when the run did not save ``_input.png``)."""
    if gt is None or mask is None:
        return None
    hole = mask > 127 if mask.ndim == 2 else mask[..., 0] > 127
    out = gt.copy()
    out[hole] = 128
    return out


def select_samples(
    runs: Sequence[Run], metric: str | None = None, n: int = 3
) -> tuple[list[str], list[str], str]:
    """Sample ids where the runs differ most and least on ``metric`` (spread = max − min over runs).

    Only samples that every run scored successfully with a finite value are considered. Returns
    (most, least, metric).
    """
    shared = [m for m in PER_IMAGE_METRICS if all(m in r.per_image_metrics for r in runs)]
    if metric is None:
        metric = next((m for m in ("lpips", "psnr", "l1") if m in shared), shared[0] if shared else None)
    if metric is None or metric not in shared:
        raise InputError(f"metric {metric!r} is not in every run", f"use one of: {', '.join(shared)}")
    table = None
    for k, r in enumerate(runs):
        col = r.ok_rows.set_index("sample_id")[metric].rename(f"v{k}")
        table = col.to_frame() if table is None else table.join(col, how="inner")
    assert table is not None
    table = table[np.isfinite(table.to_numpy(float)).all(axis=1)]
    if table.empty:
        raise InputError("the runs share no successfully scored sample", "compare runs on the same data")
    spread = (table.max(axis=1) - table.min(axis=1)).sort_values(kind="stable")
    most = list(spread.index[::-1][:n])
    least = [s for s in spread.index[:n] if s not in most]
    return most, least, metric
