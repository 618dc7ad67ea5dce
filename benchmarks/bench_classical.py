"""Per-image time of the classical adapters vs calling OpenCV / scikit-image / PatchMatch directly.

The reference is the wrapped library on the same image and hole in the same run, so the ratio measures
the adapter overhead (uint8 -> float conversion, validation); ~1.0 is expected. For scale, the project
notes (models-harness-facts §3.2, 256², ~30% hole, 1 thread) measured Telea 0.018 s, NS 0.017 s,
biharmonic 0.149 s and PatchMatch ps=3 0.86 s per image.

With ``--benchmark-disable`` (CI) a 64² image is used so the file runs in a few seconds.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

import cv2
import numpy as np
import pytest
from skimage.restoration import inpaint_biharmonic

from inpaintbench.datasets import load_dataset
from inpaintbench.models.base import create_model
from inpaintbench.models.seeding import library_seed_32 as sample_seed

MODELS = ["telea", "ns", "biharmonic"] + (["patchmatch"] if importlib.util.find_spec("patchmatch") else [])


def _case(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A samples image and a seeded ~30% hole made of rectangles."""
    img = load_dataset("samples")[0][1]
    img = np.ascontiguousarray(img[:size, :size])
    rng = np.random.default_rng(0)
    hole = np.zeros((size, size), bool)
    while hole.mean() < 0.3:
        h, w = rng.integers(size // 16, size // 4, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        hole[y:y + h, x:x + w] = True
    return img, hole


def _reference(name: str, img: np.ndarray, hole: np.ndarray):
    mask = hole.astype(np.uint8) * 255
    if name in ("telea", "ns"):
        flag = cv2.INPAINT_TELEA if name == "telea" else cv2.INPAINT_NS
        return lambda: cv2.inpaint(img, mask, 3, flag)
    if name == "biharmonic":
        return lambda: inpaint_biharmonic(img / 255.0, hole, channel_axis=-1)
    import patchmatch

    seed = sample_seed(0, "bench", img, hole)

    def run():
        patchmatch.set_random_seed(seed)
        return patchmatch.inpaint(img, mask, patch_size=3)

    return run


def _median_seconds(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@pytest.mark.parametrize("name", MODELS)
def test_classical_adapter_overhead(benchmark, name):
    size = 64 if benchmark.disabled else 256
    img, hole = _case(size)
    model = create_model(name)
    ours = lambda: model.inpaint(img[None], hole[None], ids=["bench"])  # noqa: E731
    ref = _reference(name, img, hole)
    ours(), ref()  # warm-up (imports, caches)
    reps = 1 if benchmark.disabled else (3 if name == "patchmatch" else 7)
    # Interleave so that load from other processes hits both alike.
    t_ours, t_ref = [], []
    for _ in range(reps):
        t_ref.append(_median_seconds(ref, 1))
        t_ours.append(_median_seconds(ours, 1))
    result = benchmark.pedantic(ours, rounds=1 if benchmark.disabled else reps, iterations=1)
    assert result.shape == (1, size, size, 3)
    med_ours, med_ref = statistics.median(t_ours), statistics.median(t_ref)
    benchmark.extra_info.update({
        "size": size, "hole_ratio": round(float(hole.mean()), 3),
        "ours_median_s": round(med_ours, 5), "reference_median_s": round(med_ref, 5),
        "ratio_ours_over_reference": round(med_ours / med_ref, 3),
    })


@pytest.mark.parametrize("name", ["telea", "biharmonic"])
def test_classical_batch_on_threads_vs_a_loop(benchmark, name):
    """A batch of 8 filled on the CPUs' threads (workers=auto, the default) vs the library called in a
    loop, as MAT/LaMa-style scripts do. Results are identical (tests/test_classical.py)."""
    size = 64 if benchmark.disabled else 256
    img, hole = _case(size)
    images, holes = np.repeat(img[None], 8, 0), np.repeat(hole[None], 8, 0)
    model = create_model(name)
    ours = lambda: model.inpaint(images, holes)  # noqa: E731
    one = _reference(name, img, hole)

    def loop():
        for _ in range(8):
            one()

    ours(), one()
    t_ref, t_ours = _median_seconds(loop, 1 if benchmark.disabled else 3), \
        _median_seconds(ours, 1 if benchmark.disabled else 3)
    benchmark.pedantic(ours, rounds=1 if benchmark.disabled else 3, iterations=1)
    benchmark.extra_info.update({"size": size, "batch": 8, "workers": model._n_workers(8),
                                 "loop_s": round(t_ref, 4), "ours_s": round(t_ours, 4),
                                 "speedup": round(t_ref / t_ours, 2)})
    print(f"\n{name} batch 8 at {size}²: loop {t_ref:.3f} s, ours ({model._n_workers(8)} threads) "
          f"{t_ours:.3f} s, {t_ref / t_ours:.2f}x")
