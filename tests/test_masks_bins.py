"""Hole-ratio bins (inpaintbench/masks/bins.py) and how mask sets report them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inpaintbench.masks import BIN_EDGES, BIN_LABELS, MaskSet, hole_ratio_bin, standard_definitions


@pytest.mark.parametrize("ratio, label", [
    (0.0, "0-10%"), (0.0999, "0-10%"), (0.1, "10-20%"), (0.25, "20-30%"), (0.3, "30-40%"),
    (0.5, "50-60%"), (0.5999, "50-60%"), (0.6, ">60%"), (0.95, ">60%"), (1.0, ">60%"),
])
def test_edges_are_left_closed(ratio: float, label: str) -> None:
    assert hole_ratio_bin(ratio) == label


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan])
def test_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        hole_ratio_bin(bad)


def test_exact_fractions_of_real_masks_land_on_the_right_side() -> None:
    # 6553.6 px is 10% of 256x256: 6554 hole pixels is >= 0.1, 6553 is below
    assert hole_ratio_bin(6554 / 65536) == "10-20%" and hole_ratio_bin(6553 / 65536) == "0-10%"


@given(a=st.floats(0, 1), b=st.floats(0, 1))
def test_bins_are_monotone(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert BIN_LABELS.index(hole_ratio_bin(lo)) <= BIN_LABELS.index(hole_ratio_bin(hi))
    i = BIN_LABELS.index(hole_ratio_bin(a))
    assert BIN_EDGES[i] - 1e-9 <= a and (i == len(BIN_LABELS) - 1 or a < BIN_EDGES[i + 1] + 1e-9)


def test_mask_set_bin_counts_agree_with_per_mask_bins() -> None:
    ms = MaskSet.generate("mat-large-256", 60, 1)
    bins = ms.manifest["hole_ratio_summary"]["bins"]
    assert list(bins) == list(BIN_LABELS)
    counted = {label: 0 for label in BIN_LABELS}
    for i in range(len(ms)):
        counted[hole_ratio_bin(float(ms.get(i).mean()))] += 1
    assert bins == counted
    assert ms.hole_ratio_bin(0) == hole_ratio_bin(float(np.mean(ms.get(0))))


def test_committed_bins_reflect_the_protocols() -> None:
    defs = standard_definitions()
    for name in ("lama-thin-256", "lama-thick-512", "lama-medium-256"):
        b = defs[name].hole_ratio  # LaMa's max_tamper_area 0.5: nothing above 0.5 (0.5 itself is allowed)
        assert b["max"] <= 0.5
    assert defs["box-256"].hole_ratio["mean"] == 0.25
    assert defs["mat-large-512"].hole_ratio["max"] > 0.6  # MAT large reaches the top bin, LaMa never does
