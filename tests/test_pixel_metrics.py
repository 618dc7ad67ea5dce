"""Pixel metrics: parity with a float64 NumPy/OpenCV restatement of MAT's evaluation formulas
(``evaluatoin/cal_psnr_ssim_l1.py`` as described in metrics-facts.md §1-3), with skimage and piq,
properties, and a demonstration of where torchmetrics differs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inpaintbench.errors import InputError
from inpaintbench.metrics.pixel import (
    PSNR_CAP_DB,
    gaussian_kernel_1d,
    l1,
    masked_l1,
    masked_psnr,
    pixel_metrics,
    psnr,
    ssim,
    ssim_lama,
)

# absolute, the parity target. Both sides are float64: each moment is a ≤121-tap sum of terms ≤ 255²,
# off by ≤ 121·2⁻⁵³·255² ≈ 9e-10 (DFT filtering in cv2 is of the same order), and every SSIM factor is
# offset by C1 = 6.5 or C2 = 58.5, so a map value moves by ≲ 4·9e-10/6.5 ≈ 6e-10; PSNR/L1 come from exact
# integer sums. 1e-6 leaves > 1000× (observed ~1e-14); convention bugs (crop, padding) are ≥ 1e-3.
TOL = 1e-6


# ---------------------------------------------------------------------------------------------
# reference restatement of MAT's per-image formulas (float64 NumPy + OpenCV), written from the facts
# ---------------------------------------------------------------------------------------------
def mat_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    if mse == 0:
        return float("inf")
    return float(20 * np.log10(255.0 / np.sqrt(mse)))


def mat_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """11x11 Gaussian (sigma 1.5) as the outer product of cv2's 1-D kernel, cv2.filter2D on HWC
    float64 0..255, 5 px cropped on every side, mean over the map and the channels."""
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    win = k @ k.T

    def filt(img: np.ndarray) -> np.ndarray:
        out = cv2.filter2D(img, -1, win)
        return out[5:-5, 5:-5]

    mu1, mu2 = filt(x), filt(y)
    s11 = filt(x * x) - mu1**2
    s22 = filt(y * y) - mu2**2
    s12 = filt(x * y) - mu1 * mu2
    smap = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return float(smap.mean())


def mat_l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) / 255 - b.astype(np.float64) / 255)))


def ref_masked(a: np.ndarray, b: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    """Hole-only PSNR and L1 over hole pixels x 3 channels."""
    if not hole.any():
        return float("nan"), float("nan")
    d = a.astype(np.float64)[hole] - b.astype(np.float64)[hole]
    mse = np.mean(d**2)
    p = float("inf") if mse == 0 else float(20 * np.log10(255.0 / np.sqrt(mse)))
    return p, float(np.mean(np.abs(d)) / 255)


# ---------------------------------------------------------------------------------------------
# test images: smooth content, texture at the borders, flat and saturated areas, degraded copies
# ---------------------------------------------------------------------------------------------
def make_pairs(n: int, h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    gts, preds, holes = [], [], []
    for i in range(n):
        f1, f2 = rng.uniform(0.02, 0.3, 2)
        base = 128 + 90 * np.sin(f1 * xx + i) * np.cos(f2 * yy)
        img = np.stack([base, base[::-1], base[:, ::-1]], -1) + rng.normal(0, 12, (h, w, 3))
        img[: h // 5, : w // 4] = 255  # saturated block (sky)
        img[-h // 6 :, -w // 5 :] = rng.integers(0, 30)  # dark flat block
        gt = np.clip(np.round(img), 0, 255).astype(np.uint8)
        hole = np.zeros((h, w), bool)
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        hole[y0 : y0 + h // 3, x0 : x0 + w // 3] = True
        fill = cv2.GaussianBlur(gt, (0, 0), 2.0).astype(np.float64) + rng.normal(0, 6, gt.shape)
        pred = gt.copy()
        pred[hole] = np.clip(np.round(fill[hole]), 0, 255).astype(np.uint8)
        if i % 3 == 1:  # whole-image degradation too (JPEG-like noise)
            pred = np.clip(pred.astype(int) + rng.integers(-3, 4, pred.shape), 0, 255).astype(np.uint8)
        gts.append(gt)
        preds.append(pred)
        holes.append(hole)
    return np.stack(preds), np.stack(gts), np.stack(holes)


@pytest.fixture(scope="module")
def pairs():
    return make_pairs(6, 64, 80, seed=1)


def each(fn, *arrays) -> list:
    """fn applied to every aligned item of the arrays (one image/pair at a time)."""
    return [fn(*items) for items in zip(*arrays, strict=True)]


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


# ---------------------------------------------------------------------------------------------
# parity with MAT's formulas
# ---------------------------------------------------------------------------------------------
def test_gaussian_kernel_matches_opencv():
    np.testing.assert_allclose(gaussian_kernel_1d().numpy(), cv2.getGaussianKernel(11, 1.5)[:, 0],
                               rtol=0, atol=1e-15)


def test_parity_with_mat_restatement(pairs):
    pred, gt, holes = pairs
    out = pixel_metrics(t(pred), t(gt), t(holes))
    assert set(out) == {"psnr", "ssim", "l1", "psnr_hole", "l1_hole"}
    for v in out.values():
        assert v.dtype == torch.float64 and v.shape == (len(pred),)
    ref_psnr = each(mat_psnr, pred, gt)
    ref_ssim = each(mat_ssim, pred, gt)
    ref_l1 = each(mat_l1, pred, gt)
    ref_h = each(ref_masked, pred, gt, holes)
    np.testing.assert_allclose(out["psnr"].numpy(), ref_psnr, rtol=0, atol=TOL)
    np.testing.assert_allclose(out["ssim"].numpy(), ref_ssim, rtol=0, atol=TOL)
    np.testing.assert_allclose(out["l1"].numpy(), ref_l1, rtol=0, atol=TOL)
    np.testing.assert_allclose(out["psnr_hole"].numpy(), [r[0] for r in ref_h], rtol=0, atol=TOL)
    np.testing.assert_allclose(out["l1_hole"].numpy(), [r[1] for r in ref_h], rtol=0, atol=TOL)
    # the individual functions give the same numbers as the combined call
    np.testing.assert_array_equal(psnr(t(pred), t(gt)).numpy(), out["psnr"].numpy())
    np.testing.assert_array_equal(ssim(t(pred), t(gt)).numpy(), out["ssim"].numpy())
    np.testing.assert_array_equal(l1(t(pred), t(gt)).numpy(), out["l1"].numpy())
    np.testing.assert_array_equal(masked_psnr(t(pred), t(gt), t(holes)).numpy(), out["psnr_hole"].numpy())
    np.testing.assert_array_equal(masked_l1(t(pred), t(gt), t(holes)).numpy(), out["l1_hole"].numpy())


@pytest.mark.parametrize("hw", [(11, 11), (12, 40), (37, 100), (130, 97)])
def test_ssim_parity_odd_sizes(hw):
    """Sizes around the window and the block width of the banded blur."""
    pred, gt, _ = make_pairs(2, *hw, seed=hw[0])
    got = ssim(t(pred), t(gt)).numpy()
    np.testing.assert_allclose(got, each(mat_ssim, pred, gt), rtol=0, atol=TOL)


def test_ssim_parity_extreme_content():
    """Flat, saturated and maximally different images: where E[x^2]-mu^2 cancels hardest."""
    h, w = 32, 48
    rng = np.random.default_rng(5)
    imgs = [
        np.full((h, w, 3), 255, np.uint8),
        np.full((h, w, 3), 254, np.uint8),
        np.zeros((h, w, 3), np.uint8),
        rng.integers(0, 2, (h, w, 3)).astype(np.uint8) * 255,
        rng.integers(250, 256, (h, w, 3)).astype(np.uint8),
    ]
    pred = np.stack([imgs[0], imgs[1], imgs[0], imgs[3], imgs[4]])
    gt = np.stack([imgs[1], imgs[4], imgs[2], imgs[3][:, ::-1], imgs[0]])
    got = ssim(t(pred), t(gt)).numpy()
    np.testing.assert_allclose(got, each(mat_ssim, pred, gt), rtol=0, atol=TOL)


def test_parity_with_skimage(pairs):
    """skimage with MAT-equivalent options filters with reflection and crops the same 5 px, so the
    valid region is identical and the tolerance is the same 1e-6."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pred, gt, _ = pairs
    ref_s = each(lambda p, g: structural_similarity(p, g, gaussian_weights=True, sigma=1.5, data_range=255,
                                                    use_sample_covariance=False, channel_axis=-1), pred, gt)
    ref_p = each(lambda p, g: peak_signal_noise_ratio(g, p, data_range=255), pred, gt)
    np.testing.assert_allclose(ssim(t(pred), t(gt)).numpy(), ref_s, rtol=0, atol=TOL)
    np.testing.assert_allclose(psnr(t(pred), t(gt)).numpy(), ref_p, rtol=0, atol=TOL)


def test_parity_with_piq_float64_no_downsample(pairs):
    import piq

    pred, gt, _ = pairs
    x = t(pred).permute(0, 3, 1, 2).double()
    y = t(gt).permute(0, 3, 1, 2).double()
    ref = piq.ssim(x, y, data_range=255.0, reduction="none", downsample=False)
    np.testing.assert_allclose(ssim(t(pred), t(gt)).numpy(), ref.numpy(), rtol=0, atol=TOL)


# ---------------------------------------------------------------------------------------------
# where the popular libraries differ (documented in the module docstring)
# ---------------------------------------------------------------------------------------------
def test_torchmetrics_ssim_differs_by_its_padded_border(pairs):
    """torchmetrics 1.x reflect-pads and keeps the border windows: its per-image SSIM is not MAT's.
    Cropping its full SSIM map by 5 px and averaging recovers our value, which pins the cause."""
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    pred, gt, _ = pairs
    x = t(pred).permute(0, 3, 1, 2).double()
    y = t(gt).permute(0, 3, 1, 2).double()
    ours = ssim(t(pred), t(gt)).numpy()
    theirs, full = tm_ssim(x, y, data_range=255.0, reduction="none", return_full_image=True)
    assert np.max(np.abs(theirs.numpy() - ours)) > 1e-3  # a real, visible difference
    cropped = full[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)).numpy()
    np.testing.assert_allclose(cropped, ours, rtol=0, atol=TOL)  # float64 inputs: float64 maps (see TOL)


def lama_ssim_restated(a: np.ndarray, b: np.ndarray) -> float:
    """LaMa's SSIM (pytorch-ssim style, metrics-facts §2) in float64 NumPy/OpenCV: [0,1] values,
    C1=0.01², C2=0.03², 11×11 Gaussian σ=1.5 per channel with zero padding (BORDER_CONSTANT), no crop."""
    x, y = a.astype(np.float64) / 255, b.astype(np.float64) / 255
    g = cv2.getGaussianKernel(11, 1.5)
    k = g @ g.T

    def blur(z):
        return cv2.filter2D(z, -1, k, borderType=cv2.BORDER_CONSTANT)

    mu1, mu2 = blur(x), blur(y)
    s11, s22, s12 = blur(x * x) - mu1**2, blur(y * y) - mu2**2, blur(x * y) - mu1 * mu2
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def test_lama_ssim_parity_and_its_difference_from_mat(pairs):
    pred, gt, _ = pairs
    ours = ssim_lama(t(pred), t(gt)).numpy()
    ref = np.array(each(lama_ssim_restated, pred, gt))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL)
    assert np.max(np.abs(ours - ssim(t(pred), t(gt)).numpy())) > 1e-3  # the zero border is visible
    same = ssim_lama(t(gt), t(gt)).numpy()
    np.testing.assert_allclose(same, 1.0, rtol=0, atol=1e-12)
    assert ssim_lama(t(pred[:0]), t(gt[:0])).shape == (0,)


def test_torchmetrics_psnr_default_pools_the_batch(pairs):
    """torchmetrics' default dim=None is the PSNR of the pooled MSE, not the mean of per-image PSNR."""
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

    pred, gt, _ = pairs
    x = t(pred).double()
    y = t(gt).double()
    pooled = float(tm_psnr(x, y, data_range=255.0))
    per_image = psnr(t(pred), t(gt)).numpy()
    pooled_ref = 20 * np.log10(255 / np.sqrt(np.mean((pred.astype(float) - gt.astype(float)) ** 2)))
    # On float64 inputs torchmetrics' sums are float64 (exact: integer SSE < 2^53) but its constants are
    # float32 tensors: ln(255) (≤ 1 ulp, u = 2^-23 relative) and 10/ln(10) (log ≤ 1 ulp + division
    # ½ ulp ≤ 2u relative). PSNR = (2·ln255 - ln mse)·10/ln10, so |error| ≤ u·(2·ln255·10/ln10 + 2·|PSNR|)
    # ≈ 1.2e-7·(48 + 2·PSNR) ≈ 1e-5 dB here; the float64 parts add < 1e-13.
    u = 2.0**-23

    def tm_bound(p):
        return u * (2 * np.log(255) * 10 / np.log(10) + 2 * np.abs(p))

    assert abs(pooled - pooled_ref) <= tm_bound(pooled_ref)
    assert abs(pooled - per_image.mean()) > 0.1
    per_image_tm = tm_psnr(x, y, data_range=255.0, dim=(1, 2, 3), reduction="none").numpy()
    assert np.all(np.abs(per_image_tm - per_image) <= tm_bound(per_image))


def test_piq_default_downsamples_large_images():
    """piq.ssim(downsample=True) average-pools by round(min(H,W)/256) first: a 512x512 (here 384x384,
    factor 2 as well) image is halved, so piq's default is not MAT beyond 256 px. (Equality with
    downsample=False is checked in test_parity_with_piq_float64_no_downsample.)"""
    import piq

    pred, gt, _ = make_pairs(1, 384, 384, seed=3)
    x = t(pred).permute(0, 3, 1, 2).float()
    y = t(gt).permute(0, 3, 1, 2).float()
    ours = float(ssim(t(pred), t(gt))[0])
    assert float(mat_ssim(pred[0], gt[0])) == pytest.approx(ours, abs=TOL)
    assert abs(float(piq.ssim(x, y, data_range=255.0)) - ours) > 1e-3


# ---------------------------------------------------------------------------------------------
# special values and properties
# ---------------------------------------------------------------------------------------------
def test_identity_and_no_hole(pairs):
    _, gt, holes = pairs
    out = pixel_metrics(t(gt), t(gt), t(holes))
    assert (out["psnr"] == PSNR_CAP_DB).all()  # capped, not +inf
    assert (out["psnr_hole"] == PSNR_CAP_DB).all()
    np.testing.assert_allclose(out["ssim"].numpy(), 1.0, rtol=0, atol=1e-12)
    assert (out["l1"] == 0).all() and (out["l1_hole"] == 0).all()
    no_hole = np.zeros_like(holes)
    out = pixel_metrics(t(pairs[0]), t(gt), t(no_hole))
    assert torch.isnan(out["psnr_hole"]).all() and torch.isnan(out["l1_hole"]).all()
    assert torch.isfinite(out["psnr"]).all()


def test_psnr_cap():
    """+inf (identical) and anything above 100 dB become exactly PSNR_CAP_DB; values below it are MAT's.

    Uint8 256x256x3 with one channel of one pixel off by 1: MSE = 1/196608, i.e.
    20*log10(255) + 10*log10(196608) = 101.07 dB, the smallest non-zero error there, above the cap.
    """
    gt = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    one_off = gt.copy()
    one_off[7, 9, 1] ^= 1  # differs by exactly 1
    assert mat_psnr(one_off, gt) == pytest.approx(101.0668, abs=1e-4) and mat_psnr(gt, gt) == np.inf
    got = psnr(t(np.stack([gt, one_off])), t(np.stack([gt, gt]))).numpy()
    np.testing.assert_array_equal(got, [PSNR_CAP_DB, PSNR_CAP_DB])
    small = gt[:32, :32]  # same one-unit error on 32x32: 82.99 dB, below the cap, unchanged
    small_off = one_off[:32, :32]
    assert float(psnr(t(small_off), t(small))[0]) == pytest.approx(mat_psnr(small_off, small), abs=TOL)
    assert float(psnr(t(small_off), t(small))[0]) < PSNR_CAP_DB
    # hole reproduced exactly while the rest differs: hole-only PSNR capped, whole-image PSNR finite
    hole = np.zeros((256, 256), bool)
    hole[100:140, 100:140] = True
    pred = gt.copy()
    pred[~hole] = 255 - pred[~hole]
    out = pixel_metrics(t(pred), t(gt), t(hole))
    assert float(out["psnr_hole"][0]) == PSNR_CAP_DB and float(out["psnr"][0]) < 20
    assert float(masked_psnr(t(pred), t(gt), t(hole))[0]) == PSNR_CAP_DB
    no_hole = pixel_metrics(t(pred), t(gt), t(np.zeros_like(hole)))
    assert torch.isnan(no_hole["psnr_hole"]).all()  # the cap does not turn "no hole" into a number


def test_all_hole_equals_whole_image(pairs):
    pred, gt, holes = pairs
    full = np.ones_like(holes)
    out = pixel_metrics(t(pred), t(gt), t(full))
    np.testing.assert_allclose(out["psnr_hole"].numpy(), out["psnr"].numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["l1_hole"].numpy(), out["l1"].numpy(), rtol=0, atol=1e-15)


def test_batch_independence(pairs):
    """A value depends on its own pair only (no batch-level data range or pooling)."""
    pred, gt, holes = pairs
    whole = pixel_metrics(t(pred), t(gt), t(holes))
    for i in (0, 3):
        one = pixel_metrics(t(pred[i]), t(gt[i]), t(holes[i]))
        for k in whole:
            np.testing.assert_array_equal(one[k].numpy(), whole[k][i : i + 1].numpy())


image_shapes = st.tuples(st.integers(11, 24), st.integers(11, 24))


@settings(max_examples=25, deadline=None)
@given(hw=image_shapes, seed=st.integers(0, 2**31 - 1), spread=st.integers(0, 255))
def test_properties(hw, seed, spread):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (2, *hw, 3), dtype=np.uint8)
    noise = rng.integers(-spread, spread + 1, a.shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    holes = rng.random((2, *hw)) < 0.5
    ab = pixel_metrics(t(a), t(b), t(holes))
    ba = pixel_metrics(t(b), t(a), t(holes))
    for k in ab:  # every metric is symmetric in (pred, gt)
        np.testing.assert_allclose(ab[k].numpy(), ba[k].numpy(), rtol=0, atol=1e-12, equal_nan=True)
    s = ab["ssim"].numpy()
    assert np.all(s <= 1 + 1e-12) and np.all(s >= -1 - 1e-12)
    assert np.all((ab["l1"].numpy() >= 0) & (ab["l1"].numpy() <= 1))
    assert np.all(ab["psnr"].numpy() >= 0)  # mse <= 255^2
    assert np.all(ab["psnr"].numpy() <= PSNR_CAP_DB) and np.isfinite(ab["psnr"].numpy()).all()
    # at <= 24x24 px the smallest non-zero MSE gives < 76 dB, so only identical pairs reach the cap
    same = ~np.any(a != b, axis=(1, 2, 3))
    assert np.array_equal(ab["psnr"].numpy() == PSNR_CAP_DB, same)
    aa = pixel_metrics(t(a), t(a), t(holes))
    np.testing.assert_allclose(aa["ssim"].numpy(), 1.0, rtol=0, atol=1e-12)
    assert np.all(aa["l1"].numpy() == 0) and np.all(aa["psnr"].numpy() == PSNR_CAP_DB)
    np.testing.assert_allclose(s, each(mat_ssim, a, b), rtol=0, atol=TOL)


def test_gpu_code_path_matches_cpu_path(pairs):
    """The torch implementation used on GPUs is device-agnostic: run it on the CPU tensors and
    compare with the NumPy CPU path (no GPU on the CI machine)."""
    from inpaintbench.metrics import pixel as px

    pred, gt, holes = (t(x) for x in pairs)
    got = px._ssim_chunk_torch(pred, gt).numpy()
    np.testing.assert_allclose(got, ssim(pred, gt).numpy(), rtol=0, atol=1e-12)
    a, b = px._error_sums_torch(pred, gt, holes), px._error_sums_np(pred, gt, holes)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------------------------------------
# user errors
# ---------------------------------------------------------------------------------------------
def test_input_errors():
    a = torch.zeros(1, 16, 16, 3, dtype=torch.uint8)
    with pytest.raises(InputError, match="uint8"):
        psnr(a.float(), a.float())
    with pytest.raises(InputError, match="shapes differ"):
        psnr(a, torch.zeros(1, 16, 17, 3, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"\[B,H,W,3\]"):
        l1(a[..., :1], a[..., :1])
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(a[:, :10], a[:, :10])
    with pytest.raises(InputError, match="bool"):
        masked_l1(a, a, torch.zeros(1, 16, 16, dtype=torch.uint8))
    with pytest.raises(InputError, match="does not match"):
        masked_psnr(a, a, torch.zeros(1, 15, 16, dtype=torch.bool))
    # numpy input and a single HWC image are accepted
    out = pixel_metrics(np.zeros((16, 16, 3), np.uint8), np.ones((16, 16, 3), np.uint8),
                        np.ones((16, 16), bool))
    assert out["l1"].shape == (1,) and out["l1"][0] == pytest.approx(1 / 255)
