"""A trainer's ``metrics.jsonl``: parsing (tolerant of a run killed mid-write) and key selection.

Pure data, no plotting: :func:`inpaintbench.analysis.plots.plot_training` draws what this returns.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from inpaintbench.errors import InputError
from inpaintbench.metrics.info import METRICS

__all__ = ["TRAINING_BOOKKEEPING", "X_KEYS", "read_training_log", "select_training_keys", "training_keys"]

X_KEYS = ("kimg", "tick", "step", "epoch")


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, (int, float)):
            out[key] = float(v)
        elif isinstance(v, str) and v.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
            out[key] = float(v)
    return out


def read_training_log(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A trainer's ``metrics.jsonl`` as a DataFrame of numeric keys (nested keys as ``val.psnr``).

    Tolerant by design: blank or broken lines (a run killed mid-write) and non-numeric values are
    skipped; ``df.attrs["skipped"]`` counts the skipped lines.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise InputError(
            f"{path} does not exist", "pass a trainer's metrics.jsonl (or its run folder)"
        ) from None
    records, skipped = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(obj, dict):
            skipped += 1
            continue
        flat = _flatten(obj)
        if flat:
            records.append(flat)
        else:
            skipped += 1
    df = pd.DataFrame.from_records(records)
    if df.empty:
        raise InputError(f"{path} has no numeric records", "pass a metrics.jsonl written by the trainer")
    df.attrs["skipped"] = skipped
    df.attrs["path"] = str(path)
    return df


def training_keys(frames: Sequence[pd.DataFrame], x: str | None) -> list[str]:
    keys = list(dict.fromkeys(k for f in frames for k in f.columns if k != x and k not in X_KEYS))

    def order(k: str) -> tuple[int, int, str]:
        leaf = k.split(".")[-1]
        metric_pos = list(METRICS).index(leaf) if leaf in METRICS else len(METRICS)
        group = 0 if k.startswith("val.") else 1 if k.startswith("loss.") else 2
        return group, metric_pos, k

    return sorted(keys, key=order)


#: bookkeeping columns of the trainer's log: plotted only when asked for by name or pattern
TRAINING_BOOKKEEPING = ("iteration", "nimg", "time_s", "world_size", "sec_per_tick")


def select_training_keys(available: list[str], keys: Sequence[str] | None) -> list[str]:
    """Which panels to draw: the keys (or ``fnmatch`` patterns such as ``loss.*``) asked for; by default
    the validation metrics (metric-over-training curves), or the losses when no validation ran yet."""
    if keys:
        chosen: list[str] = []
        missing = []
        for k in keys:
            hits = [a for a in available if fnmatch.fnmatchcase(a, k)]
            if not hits:
                missing.append(k)
            chosen.extend(h for h in hits if h not in chosen)
        if missing:
            raise InputError(
                f"key(s) {', '.join(missing)} not in the training log(s)",
                f"use some of: {', '.join(available)} (patterns such as 'loss.*' work too)",
            )
        return chosen
    for prefix in ("val.", "loss."):
        picked = [a for a in available if a.startswith(prefix)]
        if picked:
            return picked
    return [a for a in available if a not in TRAINING_BOOKKEEPING and not a.startswith("best.")]
