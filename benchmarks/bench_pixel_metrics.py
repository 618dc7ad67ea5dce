"""Pixel metrics: our batched PSNR+SSIM+L1 (+ hole variants) vs MAT's per-image loop.

Reference = MAT ``evaluatoin/cal_psnr_ssim_l1.py`` restated: per pair, float64 NumPy PSNR and L1,
SSIM with ``cv2.filter2D`` on the 11x11 Gaussian and a 5 px crop. Same 64 pairs at 256x256 (4 at
64x64 under ``--benchmark-disable``). Survey: MAT loop ~49 ms/pair for SSIM; target >= 2x.
Rounds of the two are interleaved and the best of each is compared (the machine is shared).
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from inpaintbench.metrics.pixel import pixel_metrics


def _mat_loop(preds: np.ndarray, gts: np.ndarray) -> np.ndarray:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    win = k @ k.T
    out = np.empty((len(preds), 3))
    for i in range(len(preds)):
        a = preds[i].astype(np.float64)
        b = gts[i].astype(np.float64)
        mse = np.mean((a - b) ** 2)
        psnr = float("inf") if mse == 0 else 20 * np.log10(255.0 / np.sqrt(mse))
        mu1 = cv2.filter2D(a, -1, win)[5:-5, 5:-5]
        mu2 = cv2.filter2D(b, -1, win)[5:-5, 5:-5]
        s11 = cv2.filter2D(a * a, -1, win)[5:-5, 5:-5] - mu1**2
        s22 = cv2.filter2D(b * b, -1, win)[5:-5, 5:-5] - mu2**2
        s12 = cv2.filter2D(a * b, -1, win)[5:-5, 5:-5] - mu1 * mu2
        smap = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
        out[i] = psnr, smap.mean(), np.mean(np.abs(a / 255 - b / 255))
    return out


def _pairs(n: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gts = cv2.GaussianBlur(rng.integers(0, 256, (n * size, size, 3), dtype=np.uint8), (0, 0), 2.0)
    gts = gts.reshape(n, size, size, 3)
    preds = np.clip(gts.astype(int) + rng.integers(-25, 26, gts.shape), 0, 255).astype(np.uint8)
    holes = rng.random((n, size, size)) < 0.3
    return preds, gts, holes


def test_pixel_metrics_batched_vs_mat_loop(benchmark):
    small = benchmark.disabled
    n, size = (4, 64) if small else (64, 256)
    preds, gts, holes = _pairs(n, size)
    tp, tg, th = torch.from_numpy(preds), torch.from_numpy(gts), torch.from_numpy(holes)

    def ours() -> dict[str, torch.Tensor]:
        return pixel_metrics(tp, tg, th)

    ours()
    _mat_loop(preds[:2], gts[:2])  # warm-up
    t_ours, t_ref = [], []
    for _ in range(1 if small else 3):
        t0 = time.perf_counter()
        ref = _mat_loop(preds, gts)
        t_ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = ours()
        t_ours.append(time.perf_counter() - t0)
    np.testing.assert_allclose(got["psnr"].numpy(), ref[:, 0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["ssim"].numpy(), ref[:, 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["l1"].numpy(), ref[:, 2], rtol=0, atol=1e-6)

    benchmark.pedantic(ours, rounds=1 if small else 3, iterations=1)
    best_ours, best_ref = min(t_ours), min(t_ref)
    benchmark.extra_info.update(
        pairs=n, size=size, torch_threads=torch.get_num_threads(),
        ours_ms_per_pair=1e3 * best_ours / n, mat_loop_ms_per_pair=1e3 * best_ref / n,
        speedup=best_ref / best_ours,
    )
    print(f"\npixel metrics {n}x{size}²: ours {1e3 * best_ours / n:.1f} ms/pair, "
          f"MAT loop {1e3 * best_ref / n:.1f} ms/pair, speed-up {best_ref / best_ours:.2f}x")
