"""LPIPS: our batched call vs MAT's ``cal_lpips.py`` way (one pair per forward, numpy → tensor per
pair), same weights (seeded random AlexNet trunk + the package's linear heads), same images.

Survey figure to beat: 440 ms vs 26 ms per pair. Full size: 64 pairs at 256×256.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch

from inpaintbench import weights as W
from inpaintbench.metrics.lpips import LPIPSMetric, build_lpips


def _helpers():
    """Random-weight helpers shared with the tests (tests/conftest.py, loaded under its own name)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_inpaintbench_test_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def alex_weights(tmp_path_factory: pytest.TempPathFactory):
    h = _helpers()
    files = h.RandomWeightFiles(tmp_path_factory.mktemp("bench_lpips_src"))
    folder = tmp_path_factory.mktemp("bench_lpips") / "weights"
    old = h.install_random_weights(files, folder, ("torchvision-alexnet",))
    yield folder
    for spec in old.values():
        W.register_weights(spec, replace=True)


def _mat_style(model: torch.nn.Module, preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """MAT evaluatoin/cal_lpips.py, restated: per pair, HWC uint8 → [-1,1] NCHW, forward, .mean()."""
    out = np.empty(len(preds))
    with torch.no_grad():
        for i in range(len(preds)):
            a = lpips.im2tensor(preds[i])  # uint8 HWC → (x/127.5 - 1) [1,3,H,W], as MAT does
            b = lpips.im2tensor(gts[i])
            out[i] = model(a, b).mean().item()
    return out


def test_lpips_batched_vs_one_pair_per_call(benchmark, alex_weights: Path):
    small = benchmark.disabled
    n, size = (4, 64) if small else (64, 256)
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    gts = np.clip(preds.astype(int) + rng.integers(-30, 31, preds.shape), 0, 255).astype(np.uint8)

    ours = LPIPSMetric("alex", weights_dir=alex_weights, offline=True, max_batch=32)
    trunk = torch.load(ours.trunk.path, weights_only=True)
    ref_model = build_lpips("alex", trunk)  # same weights in the package's own module

    ref_values = _mat_style(ref_model, preds[:2], gts[:2])  # warm-up both paths
    ours(preds[:2], gts[:2])

    t0 = time.perf_counter()
    ref_values = _mat_style(ref_model, preds, gts)
    t_ref = time.perf_counter() - t0

    values = benchmark.pedantic(lambda: ours(preds, gts).numpy(), rounds=1 if small else 3, iterations=1)
    np.testing.assert_allclose(values, ref_values, atol=1e-6)

    t_ours = benchmark.stats.stats.mean if not small else None
    if t_ours is None:
        t0 = time.perf_counter()
        ours(preds, gts)
        t_ours = time.perf_counter() - t0
    benchmark.extra_info.update(
        pairs=n, size=size, ours_ms_per_pair=1e3 * t_ours / n, reference_ms_per_pair=1e3 * t_ref / n,
        speedup=t_ref / t_ours,
    )
    print(f"\nLPIPS {n}x{size}²: ours {1e3 * t_ours / n:.1f} ms/pair, "
          f"MAT-style {1e3 * t_ref / n:.1f} ms/pair, speed-up {t_ref / t_ours:.2f}x")
