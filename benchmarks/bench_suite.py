"""The whole metric suite (pixel + LPIPS + Inception + FID + IDS) in one batched pass vs MAT's three
evaluation scripts run back to back, restated per image (``cal_psnr_ssim_l1.py``: numpy/cv2 per
image; ``cal_lpips.py``: one pair per forward; ``cal_fid_pids_uids.py``: Inception one image at a
time, population covariance + ``scipy.linalg.sqrtm``, ``LinearSVC(dual=False)`` for P-/U-IDS).

Same networks on both sides (seeded random AlexNet trunk + lpips heads, torch-fidelity Inception
with a seeded random state dict), same images. Model construction is outside both timings.
Also timed: our suite when the reference (ground-truth) features are already cached.

Full size: 256 pairs at 256×256 (slow on a 2-core CPU: tens of minutes, mostly the reference;
``BENCH_SUITE_PAIRS=64`` runs fewer). With ``--benchmark-disable``: 3 pairs at 48×48 and FID/IDS on
the first 2 feature dimensions (a 2048² ``sqrtm`` alone takes about a minute on this CPU, and at tiny N
the product of covariances is singular: ``sqrtm`` returns NaN where our eigh path does not) so that
the file runs quickly.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from pathlib import Path

import cv2
import lpips
import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.svm import LinearSVC

from inpaintbench import weights as W
from inpaintbench.metrics.feature_cache import FeatureCache
from inpaintbench.metrics.suite import MetricSuite

METRICS = ("psnr", "ssim", "l1", "psnr_hole", "l1_hole", "lpips", "fid", "p_ids", "u_ids")


def _helpers():
    path = Path(__file__).resolve().parent.parent / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_inpaintbench_test_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory):
    h = _helpers()
    files = h.RandomWeightFiles(tmp_path_factory.mktemp("bench_suite_src"))
    folder = tmp_path_factory.mktemp("bench_suite") / "weights"
    old = h.install_random_weights(files, folder, ("torchvision-alexnet", "inception-tf"))
    yield folder
    for spec in old.values():
        W.register_weights(spec, replace=True)


def _pairs(n: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 8, size // 8, 3), dtype=np.uint8)
    gt = np.stack([cv2.resize(b, (size, size), interpolation=cv2.INTER_CUBIC) for b in base])
    holes = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        y, x = rng.integers(0, size // 2, 2)
        holes[i, y:y + size // 3, x:x + size // 2] = True
    pred = gt.copy()
    blurred = np.stack([cv2.blur(g, (9, 9)) for g in gt])
    pred[holes] = np.clip(blurred[holes].astype(int) + rng.integers(-20, 21, blurred[holes].shape), 0, 255)
    return pred, gt, holes


# ----------------------------------------------------------------------------- MAT, restated


def _mat_ssim_u8(a: np.ndarray, b: np.ndarray) -> float:
    """MAT-style SSIM: float64 0..255, 11x11 Gaussian (σ 1.5), per channel, crop 5 px, mean."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    w = k @ k.T
    x, y = a.astype(np.float64), b.astype(np.float64)
    f = lambda z: cv2.filter2D(z, -1, w)[5:-5, 5:-5]  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(m.mean())


def _mat_scripts(preds, gts, lpips_model, inception, dims: int) -> dict[str, float]:
    # 1. cal_psnr_ssim_l1.py
    psnr, ssim, l1 = [], [], []
    for a, b in zip(preds, gts, strict=True):
        x, y = a.astype(np.float64), b.astype(np.float64)
        mse = np.mean((x - y) ** 2)
        psnr.append(20 * np.log10(255.0 / np.sqrt(mse)))
        ssim.append(_mat_ssim_u8(a, b))
        l1.append(np.mean(np.abs(x / 255 - y / 255)))
    # 2. cal_lpips.py
    with torch.no_grad():
        lp = [lpips_model(lpips.im2tensor(a), lpips.im2tensor(b)).mean().item()
              for a, b in zip(preds, gts, strict=True)]
    # 3. cal_fid_pids_uids.py: one image per forward, then the statistics
    def one(img: np.ndarray) -> np.ndarray:
        return inception(torch.from_numpy(img).permute(2, 0, 1)[None])[0].numpy()

    with torch.no_grad():
        fake = np.concatenate([one(a) for a in preds])
        real = np.concatenate([one(b) for b in gts])
    fake, real = fake[:, :dims].astype(np.float64), real[:, :dims].astype(np.float64)
    mu_f, mu_r = fake.mean(0), real.mean(0)
    s_f = fake.T @ fake / len(fake) - np.outer(mu_f, mu_f)  # population covariance, as MAT
    s_r = real.T @ real / len(real) - np.outer(mu_r, mu_r)
    with warnings.catch_warnings():  # singular product at small N: MAT ignores it too
        warnings.simplefilter("ignore")
        root = scipy.linalg.sqrtm(s_f @ s_r)
    fid = float(np.real(np.sum((mu_f - mu_r) ** 2) + np.trace(s_f + s_r - 2 * root)))
    svm = LinearSVC(dual=False)
    x = np.concatenate([real, fake])
    t = np.concatenate([np.ones(len(real)), np.zeros(len(fake))])
    svm.fit(x, t)
    u_ids = 1 - svm.score(x, t)
    p_ids = float(np.mean(svm.decision_function(fake) > svm.decision_function(real)))
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)), "l1": float(np.mean(l1)),
            "lpips": float(np.mean(lp)), "fid": fid, "p_ids": p_ids, "u_ids": float(u_ids)}


# ----------------------------------------------------------------------------- ours


def _ours(suite: MetricSuite, preds, gts, holes, ids, dims: int, batch: int = 32) -> dict[str, float]:
    suite.reset()
    per: dict[str, list[np.ndarray]] = {}
    fake, real = [], []
    for i in range(0, len(preds), batch):
        out = suite.update(preds[i:i + batch], gts[i:i + batch], holes[i:i + batch], ids[i:i + batch])
        for k, v in out.per_image.items():
            per.setdefault(k, []).append(v)
        fake.append(out.features["fake"])
        if "real" in out.features:
            real.append(out.features["real"])
    f = np.concatenate(fake)[:, :dims]
    r = np.concatenate(real) if real else suite.reference_features(ids)
    res = suite.compute_from_features(f, r[:, :dims], ids)
    out_values = {k: float(np.mean(np.concatenate(v))) for k, v in per.items()}
    out_values.update({k: v.value for k, v in res.items()})
    return out_values


def test_suite_vs_mat_scripts(benchmark, weights_dir: Path, tmp_path: Path):
    small = benchmark.disabled
    n, size, dims = (3, 48, 2) if small else (int(os.environ.get("BENCH_SUITE_PAIRS", 256)), 256, 2048)
    preds, gts, holes = _pairs(n, size)
    ids = [f"img{i:05d}" for i in range(n)]

    cache = FeatureCache(tmp_path / "features")
    kw = dict(metrics=METRICS, weights_dir=weights_dir, offline=True, fid_n_boot=0, reference_cache=cache,
              reference_ids=ids)
    suite = MetricSuite(**kw)
    assert all(v == "ok" for v in suite.status.values()), suite.status
    assert not suite.reference_cached
    lpips_ref = suite._lpips["alex"].model  # the package's LPIPS module, same weights
    inception_ref = suite.extractor.net  # torch-fidelity's module, same weights

    t0 = time.perf_counter()
    ref = _mat_scripts(preds, gts, lpips_ref, inception_ref, dims)
    t_ref = time.perf_counter() - t0

    timing: dict[str, float] = {}

    def run_ours() -> dict[str, float]:
        t = time.perf_counter()
        values = _ours(suite, preds, gts, holes, ids, dims)
        timing["ours"] = time.perf_counter() - t
        return values

    ours = benchmark.pedantic(run_ours, rounds=1, iterations=1)
    assert suite.save_reference()  # the ground-truth features of this run go to the cache

    cached = MetricSuite(**kw)  # e.g. the next model evaluated on the same images
    assert cached.reference_cached
    t0 = time.perf_counter()
    ours_cached = _ours(cached, preds, gts, holes, ids, dims)
    t_cached = time.perf_counter() - t0
    t_ours = timing["ours"]

    for k in ("psnr", "ssim", "l1", "lpips"):
        assert ours[k] == pytest.approx(ref[k], rel=1e-6, abs=1e-6), k
    for k in ("fid", "p_ids", "u_ids"):
        assert ours[k] == pytest.approx(ref[k], rel=1e-3, abs=1e-3), (k, ours[k], ref[k])
        assert ours_cached[k] == pytest.approx(ours[k], rel=1e-5, abs=1e-5), k

    benchmark.extra_info.update(
        pairs=n, size=size, feature_dims=dims, ours_s=t_ours, ours_cached_s=t_cached, mat_scripts_s=t_ref,
        speedup=t_ref / t_ours, speedup_cached=t_ref / t_cached,
    )
    print(f"\nsuite {n} pairs {size}²: ours {t_ours:.1f}s, ours+cached reals {t_cached:.1f}s, "
          f"MAT scripts {t_ref:.1f}s → {t_ref / t_ours:.2f}x / {t_ref / t_cached:.2f}x")
