"""Hole-ratio bins as the papers report them (MAT/CoModGAN style: 0-10%, ..., 50-60%, >60%)."""

from __future__ import annotations

import math

BIN_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
BIN_LABELS: tuple[str, ...] = ("0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%", ">60%")


def hole_ratio_bin(ratio: float) -> str:
    """Label of the bin holding ``ratio`` (fraction of hole pixels, 0..1).

    Bins are half-open ``[lo, hi)`` except the last, which holds everything from 0.6 up.
    """
    if not (0.0 <= ratio <= 1.0) or math.isnan(ratio):
        raise ValueError(f"hole ratio must be within [0, 1], got {ratio}")
    index = min(int(math.floor(ratio * 10 + 1e-9)), len(BIN_LABELS) - 1)
    return BIN_LABELS[index]
