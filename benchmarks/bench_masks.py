"""Mask generation throughput per protocol vs the official generators.

The official MAT/LaMa scripts cannot run here (not vendored, no network), so the reference side is
the figure measured with the original code on this class of machine (masks-facts.md §4.1: 1 thread,
NumPy 2.4 / Pillow 13 / OpenCV 5, in-memory generation only; LaMa "proto" = 5 candidates per
accepted mask). ``extra_info`` records ours in ms/mask, the documented figure and ours/official
(< 1 means faster). Timings on a shared 2-core box are noisy; compare ratios, not absolutes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from inpaintbench.masks import build_mask_set, generate_mask, list_protocols

OFFICIAL_MS_PER_MASK = {  # masks-facts.md §4.1
    "mat-large-512": 1.8, "mat-small-512": 1.0, "mat-large-256": 1.2, "mat-small-256": 0.5,
    "lama-thick-256": 2.2, "lama-thick-512": 3.5, "lama-medium-256": 2.6, "lama-medium-512": 5.2,
    "lama-thin-256": 13.7, "lama-thin-512": 20.7,
}


def _n(benchmark, full: int) -> int:  # noqa: ANN001
    return 4 if benchmark.disabled else full


@pytest.mark.parametrize("name", sorted(list_protocols()))
def test_generation_throughput(benchmark, name: str) -> None:  # noqa: ANN001
    n = _n(benchmark, 200)
    state = {"start": 0}

    def generate_batch() -> None:
        start = state["start"]  # fresh indices every round: no caching can help
        for i in range(start, start + n):
            generate_mask(name, i, 0)
        state["start"] += n

    t0 = time.perf_counter()
    generate_batch()
    ours = (time.perf_counter() - t0) * 1000 / n
    benchmark.pedantic(generate_batch, rounds=1 if benchmark.disabled else 3, iterations=1)
    if not benchmark.disabled and benchmark.stats is not None:
        ours = benchmark.stats.stats.min * 1000 / n
    benchmark.extra_info["masks_per_round"] = n
    benchmark.extra_info["ours_ms_per_mask"] = round(ours, 3)
    official = OFFICIAL_MS_PER_MASK.get(name)
    if official is not None:
        benchmark.extra_info["official_ms_per_mask"] = official
        benchmark.extra_info["ours_over_official"] = round(ours / official, 3)
    else:
        benchmark.extra_info["official_ms_per_mask"] = "n/a (no official generator for the centred box)"


def test_build_to_disk_throughput(benchmark) -> None:  # noqa: ANN001
    """Generation + PNG encoding + writing + manifest, as `masks build` does (not in the official
    figures, which exclude PNG encoding)."""
    n = _n(benchmark, 300)
    with tempfile.TemporaryDirectory() as tmp:
        counter = {"k": 0}

        def build() -> None:
            counter["k"] += 1
            build_mask_set("mat-large-256", n, counter["k"], Path(tmp) / f"s{counter['k']}")

        t0 = time.perf_counter()
        build()
        ours = (time.perf_counter() - t0) * 1000 / n
        benchmark.pedantic(build, rounds=1 if benchmark.disabled else 3, iterations=1)
        if not benchmark.disabled and benchmark.stats is not None:
            ours = benchmark.stats.stats.min * 1000 / n
    benchmark.extra_info["ours_ms_per_mask_on_disk"] = round(ours, 3)
    benchmark.extra_info["official_ms_per_mask_in_memory"] = OFFICIAL_MS_PER_MASK["mat-large-256"]
    benchmark.extra_info["ours_over_official"] = round(ours / OFFICIAL_MS_PER_MASK["mat-large-256"], 3)
