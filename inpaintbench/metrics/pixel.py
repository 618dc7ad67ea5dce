"""Per-image pixel metrics (PSNR, SSIM, L1, hole-only PSNR/L1), batched torch, MAT conventions.

Why our own implementation instead of torchmetrics or piq: we want the numbers of MAT's
``evaluatoin/cal_psnr_ssim_l1.py`` (Li et al., CVPR 2022) exactly, per image, on any device:

* inputs are the **uint8** images (what a PNG on disk holds), values 0..255, computed in float64;
* PSNR = ``20*log10(255/sqrt(mse))`` per image, mse over H*W*3, then **capped at**
  :data:`PSNR_CAP_DB` = 100 dB (hole-only PSNR too). MAT has no eps, so an identical pair gives
  ``+inf``; an infinite value cannot be averaged, and excluding it averaged two models over
  different image subsets (the better model lost its best images). For uint8 256x256x3 the smallest
  non-zero MSE, one channel of one pixel off by 1, gives 20*log10(255) + 10*log10(196608) ≈ 101.1 dB,
  so 100 dB only replaces ``+inf`` and that single-unit case at 256 px (at 512 px, whose minimum
  is ≈107.1 dB, a squared-error sum up to 5 is capped too). Many papers cap PSNR in the same way;
  values at the cap are counted (``n_capped`` in ``summary.json``) so tables can say so. Finite
  values below the cap are MAT's exactly;
* SSIM: 11x11 Gaussian window (sigma 1.5, normalised), C1=(0.01*255)^2, C2=(0.03*255)^2, statistics
  ``E[x^2]-mu^2`` (population), the SSIM map is kept **only where the window fits entirely inside
  the image** (MAT filters with OpenCV then crops 5 px on every side), mean over the valid map and
  the 3 RGB channels (no grayscale conversion);
* L1 = mean |a/255 - b/255| over the whole image (not only the hole).

Where the common libraries differ from that (demonstrated in
``tests/test_pixel_metrics.py``):

* torchmetrics ``structural_similarity_index_measure`` (1.9): reflect-pads by 5 px and keeps the
  border windows (mean SSIM +0.012 on the survey's 64 pairs, up to 0.027 per image); ``data_range=None``
  infers the range from the *batch* (min/max of the whole batch), so results depend on the batch
  composition. ``PeakSignalNoiseRatio`` with the default ``dim=None`` pools the squared error over
  the whole batch (PSNR of the mean MSE, not the mean of per-image PSNR) and accumulates in float32.
* piq ``ssim``: same valid-window Gaussian SSIM as MAT, but ``downsample=True`` by default average-
  pools by ``round(min(H, W)/256)`` first (halves 512x512 images, no effect at 256); inputs must be
  scaled into ``[0, data_range]``; float32 inputs give |diff| up to ~2e-5. piq ``psnr`` adds 1e-8 to
  the MSE on a [0,1] scale (biases high-PSNR pairs low, never returns inf).
* skimage ``structural_similarity`` defaults to a 7x7 *uniform* window with sample covariance; with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1``
  it equals MAT (it filters with reflection and crops the same 5 px).
* LaMa's SSIM zero-pads (border windows see black) and works on [0,1] floats.

Speed: the Gaussian blur is separable, so each 1-D pass is a banded matrix product on blocks of
~32 output columns (about 4x the flops of a direct 11-tap convolution, but a few large BLAS calls)
in exact float64; float32 convolutions miss MAT by ~1e-6 per image because ``E[x^2]-mu^2``
cancels on the 0..255 scale. On the CPU the images are spread over ``torch.get_num_threads()``
worker threads with single-threaded NumPy/OpenBLAS inside: torch's MKL GEMM was 2-3x slower on the
AMD CPUs we measured, and mixing torch's OpenMP pool with OpenBLAS' threads made a loaded 2-core
machine 10x slower. On a GPU the same algorithm runs in torch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from inpaintbench.errors import InputError

MAX_VALUE = 255.0
#: PSNR ceiling in dB (see the module docstring): +inf for a pixel-perfect prediction becomes this.
PSNR_CAP_DB = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_BLOCK = 32  # output columns per banded block (the fastest of 24..246 on a 2-core CPU)
# pixels (H*W summed over the images of one chunk) per SSIM task: one 256² image per task on the
# CPU (fastest measured: stays in cache); on a GPU bigger chunks amortise kernel launches (8·512²
# pixels = 0.5 GB of float64 moment maps).
_CHUNK_PIXELS_CPU = 256 * 256
_CHUNK_PIXELS_GPU = 8 * 512 * 512

__all__ = ["PSNR_CAP_DB", "pixel_metrics", "psnr", "ssim", "l1", "masked_l1", "masked_psnr",
           "gaussian_kernel_1d"]


# ----------------------------------------------------------------------------------------------
# input checking
# ----------------------------------------------------------------------------------------------
def _as_images(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - anything unconvertible is a user error here
            raise InputError(f"{name}: cannot convert {type(x).__name__} to a tensor",
                             "pass uint8 images as a torch tensor or numpy array [B,H,W,3]") from exc
    if x.dtype != torch.uint8:
        raise InputError(f"{name}: expected uint8 images, got {x.dtype}",
                         "quantise once to uint8 (round, clamp 0..255) as a saved PNG would be")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[-1] != 3:
        raise InputError(f"{name}: expected shape [B,H,W,3] (RGB, channels last), got {list(x.shape)}",
                         "convert to RGB HWC (gray: repeat the channel 3 times, as MAT does)")
    return x


def _check_pair(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    pred = _as_images(pred, "pred")
    gt = _as_images(gt, "gt")
    if pred.shape != gt.shape:
        raise InputError(f"pred and gt shapes differ: {list(pred.shape)} vs {list(gt.shape)}",
                         "resize/crop both to the same size before computing metrics")
    if pred.device != gt.device:
        raise InputError(f"pred is on {pred.device} but gt on {gt.device}", "move both to one device")
    return pred, gt


def _check_holes(holes: Tensor, pred: Tensor) -> Tensor:
    if not isinstance(holes, Tensor):
        holes = torch.as_tensor(holes)
    if holes.dtype != torch.bool:
        raise InputError(f"holes: expected a bool mask (True = hole), got {holes.dtype}",
                         "convert at the edge: MAT files 0 = hole, LaMa files 255 = hole")
    if holes.dim() == 2:
        holes = holes.unsqueeze(0)
    if holes.dim() == 4 and holes.shape[-1] == 1:
        holes = holes[..., 0]
    if tuple(holes.shape) != tuple(pred.shape[:3]):
        raise InputError(f"holes shape {list(holes.shape)} does not match images {list(pred.shape[:3])}",
                         "pass one [H,W] bool mask per image, same size as the image")
    return holes.to(pred.device)


# ----------------------------------------------------------------------------------------------
# PSNR / L1 (exact integer sums, then float64)
# ----------------------------------------------------------------------------------------------
def _error_sums(pred: Tensor, gt: Tensor, holes: Tensor | None) -> dict[str, Tensor]:
    """Exact per-image integer sums of squared and absolute differences (whole image and, with
    ``holes``, over hole pixels), and the hole value counts (pixels x 3), as int64 tensors [B].

    CPU tensors go through NumPy (zero-copy): torch's small integer kernels were several times
    slower there, and it keeps the CPU path on one thread pool (see :func:`ssim`)."""
    if pred.device.type == "cpu":
        return _error_sums_np(pred, gt, holes)
    return _error_sums_torch(pred, gt, holes)


def _error_sums_np(pred: Tensor, gt: Tensor, holes: Tensor | None) -> dict[str, Tensor]:
    b = pred.shape[0]
    d = np.subtract(pred.numpy(), gt.numpy(), dtype=np.int32)
    sq = d * d
    ab = np.abs(d)
    # per-pixel sums over the 3 channels (explicit adds: a strided axis=-1 reduction is slow)
    sq = (sq[..., 0] + sq[..., 1] + sq[..., 2]).reshape(b, -1)
    ab = (ab[..., 0] + ab[..., 1] + ab[..., 2]).reshape(b, -1)
    out = {"sse": sq.sum(axis=1, dtype=np.int64), "sad": ab.sum(axis=1, dtype=np.int64)}
    if holes is not None:
        hn = holes.numpy().reshape(b, -1)
        out["sse_h"] = (sq * hn).sum(axis=1, dtype=np.int64)
        out["sad_h"] = (ab * hn).sum(axis=1, dtype=np.int64)
        out["count_h"] = hn.sum(axis=1, dtype=np.int64) * 3
    return {k: torch.from_numpy(np.asarray(v)) for k, v in out.items()}


def _error_sums_torch(pred: Tensor, gt: Tensor, holes: Tensor | None) -> dict[str, Tensor]:
    d = pred.to(torch.int32) - gt.to(torch.int32)
    sq = (d * d).sum(dim=-1)
    ab = d.abs().sum(dim=-1)
    res = {"sse": sq.sum(dim=(1, 2), dtype=torch.int64), "sad": ab.sum(dim=(1, 2), dtype=torch.int64)}
    if holes is not None:
        res["sse_h"] = (sq * holes).sum(dim=(1, 2), dtype=torch.int64)
        res["sad_h"] = (ab * holes).sum(dim=(1, 2), dtype=torch.int64)
        res["count_h"] = holes.sum(dim=(1, 2), dtype=torch.int64) * 3
    return res


def _psnr_from_sse(sse: Tensor, count: Tensor | int) -> Tensor:
    """MAT's PSNR capped at :data:`PSNR_CAP_DB` (mse == 0 -> the cap; count 0 -> NaN, kept)."""
    mse = sse.to(torch.float64) / count
    # MAT's expression, kept literally: 20*log10(255/sqrt(mse)); mse == 0 -> +inf, then capped.
    # torch.clamp keeps NaN (an image without hole has no hole-only PSNR).
    return torch.clamp(20.0 * torch.log10(MAX_VALUE / torch.sqrt(mse)), max=PSNR_CAP_DB)


def _l1_from_sad(sad: Tensor, count: Tensor | int) -> Tensor:
    return sad.to(torch.float64) / (MAX_VALUE * count)


@torch.no_grad()
def psnr(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-image PSNR in dB on uint8 RGB [B,H,W,3], MAX=255, float64 [B]; capped at
    :data:`PSNR_CAP_DB` (an identical pair gives exactly the cap, not +inf)."""
    pred, gt = _check_pair(pred, gt)
    return _psnr_from_sse(_error_sums(pred, gt, None)["sse"], pred[0].numel())


@torch.no_grad()
def l1(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-image mean |pred/255 - gt/255| over all pixels and channels, float64 [B]."""
    pred, gt = _check_pair(pred, gt)
    return _l1_from_sad(_error_sums(pred, gt, None)["sad"], pred[0].numel())


@torch.no_grad()
def masked_l1(pred: Tensor, gt: Tensor, holes: Tensor) -> Tensor:
    """L1 on [0,1] over hole pixels x 3 channels only; an image without hole gives NaN."""
    pred, gt = _check_pair(pred, gt)
    s = _error_sums(pred, gt, _check_holes(holes, pred))
    return _l1_from_sad(s["sad_h"], s["count_h"].to(torch.float64))


@torch.no_grad()
def masked_psnr(pred: Tensor, gt: Tensor, holes: Tensor) -> Tensor:
    """PSNR over hole pixels x 3 channels only, capped at :data:`PSNR_CAP_DB`; no hole -> NaN,
    hole reproduced exactly -> the cap."""
    pred, gt = _check_pair(pred, gt)
    s = _error_sums(pred, gt, _check_holes(holes, pred))
    return _psnr_from_sse(s["sse_h"], s["count_h"].to(torch.float64))


# ----------------------------------------------------------------------------------------------
# SSIM
# ----------------------------------------------------------------------------------------------
def gaussian_kernel_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
                       dtype: torch.dtype = torch.float64) -> Tensor:
    """Normalised 1-D Gaussian taps, as ``cv2.getGaussianKernel(size, sigma)`` computes them."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (k / k.sum()).to(dtype)


@lru_cache(maxsize=64)
def _band(block: int, device_str: str) -> Tensor:
    """[block+10, block] matrix whose column j holds the 11 taps at rows j..j+10 (float64)."""
    taps = gaussian_kernel_1d()
    band = torch.zeros(block + SSIM_WINDOW - 1, block, dtype=torch.float64)
    for j in range(block):
        band[j:j + SSIM_WINDOW, j] = taps
    return band.to(device_str)


def _valid_blur_rows_np(x: np.ndarray, band: np.ndarray, block: int) -> np.ndarray:
    """'Valid' 11-tap Gaussian correlation along the rows of a 2-D float64 array [r, n] -> [r, n-10].

    Each block of output columns is one GEMM on a strided view of the input (no copy).
    """
    n_out = x.shape[1] - (SSIM_WINDOW - 1)
    out = np.empty((x.shape[0], n_out), dtype=np.float64)
    for start in range(0, n_out, block):
        width = min(block, n_out - start)
        np.matmul(x[:, start:start + width + SSIM_WINDOW - 1], band[:width + SSIM_WINDOW - 1, :width],
                  out=out[:, start:start + width])
    return out


def _valid_blur_cols_np(x: np.ndarray, band_t: np.ndarray, block: int) -> np.ndarray:
    """Same along axis 1 of [planes, n, m] -> [planes, n-10, m], as left products (no transpose)."""
    n_out = x.shape[1] - (SSIM_WINDOW - 1)
    out = np.empty((x.shape[0], n_out, x.shape[2]), dtype=np.float64)
    for start in range(0, n_out, block):
        width = min(block, n_out - start)
        np.matmul(band_t[:width, :width + SSIM_WINDOW - 1], x[:, start:start + width + SSIM_WINDOW - 1, :],
                  out=out[:, start:start + width, :])
    return out


def _valid_blur_rows_torch(x: Tensor, band: Tensor, block: int) -> Tensor:
    n_out = x.shape[1] - (SSIM_WINDOW - 1)
    parts = []
    for start in range(0, n_out, block):
        width = min(block, n_out - start)
        parts.append(x[:, start:start + width + SSIM_WINDOW - 1] @ band[:width + SSIM_WINDOW - 1, :width])
    return torch.cat(parts, dim=1)


def _block_width(n_out: int) -> int:
    n_blocks = -(-n_out // _BLOCK)
    return -(-n_out // n_blocks)  # equal-ish blocks, the last one possibly shorter


def _ssim_from_moments(mu1, mu2, e_sq, e12):  # works on NumPy arrays and tensors alike
    """SSIM map from the blurred x, y, x²+y² and xy (σ₁²+σ₂² only appears as a sum, so x² and y²
    are blurred together: 4 maps instead of 5)."""
    c1 = (SSIM_K1 * MAX_VALUE) ** 2
    c2 = (SSIM_K2 * MAX_VALUE) ** 2
    mu_sq = mu1 * mu1 + mu2 * mu2
    mu12 = mu1 * mu2
    num = (2.0 * mu12 + c1) * (2.0 * (e12 - mu12) + c2)
    den = (mu_sq + c1) * ((e_sq - mu_sq) + c2)
    return num / den


def _ssim_chunk_np(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """SSIM of uint8 [b,H,W,3] pairs -> float64 [b], NumPy (CPU path)."""
    b, h, w, _ = pred.shape
    # the maps to blur, channels first: x, y, x²+y², xy -> [4, b, 3, H, W]
    stack = np.empty((4, b, 3, h, w), dtype=np.float64)
    stack[0] = pred.transpose(0, 3, 1, 2)
    stack[1] = gt.transpose(0, 3, 1, 2)
    np.multiply(stack[0], stack[0], out=stack[2])
    stack[2] += stack[1] * stack[1]
    np.multiply(stack[0], stack[1], out=stack[3])
    # separable blur: along rows (right products), then along columns (left products)
    bw = _block_width(w - SSIM_WINDOW + 1)
    rows = _valid_blur_rows_np(stack.reshape(-1, w), _band(bw, "cpu").numpy(), bw)
    bh = _block_width(h - SSIM_WINDOW + 1)
    cols = _valid_blur_cols_np(rows.reshape(4 * b * 3, h, w - SSIM_WINDOW + 1), _band(bh, "cpu").numpy().T, bh)
    mu1, mu2, e_sq, e12 = cols.reshape(4, b, -1)
    return _ssim_from_moments(mu1, mu2, e_sq, e12).mean(axis=1)


def _ssim_chunk_torch(pred: Tensor, gt: Tensor) -> Tensor:
    """Same as :func:`_ssim_chunk_np` with torch ops (GPU path)."""
    b, h, w, _ = pred.shape
    stack = torch.empty((4, b, 3, h, w), dtype=torch.float64, device=pred.device)
    stack[0] = pred.permute(0, 3, 1, 2)
    stack[1] = gt.permute(0, 3, 1, 2)
    torch.mul(stack[0], stack[0], out=stack[2])
    stack[2] += stack[1] * stack[1]
    torch.mul(stack[0], stack[1], out=stack[3])
    bw = _block_width(w - SSIM_WINDOW + 1)
    rows = _valid_blur_rows_torch(stack.reshape(-1, w), _band(bw, str(pred.device)), bw)
    rows = rows.reshape(4, b, 3, h, w - SSIM_WINDOW + 1).transpose(-1, -2).contiguous()
    bh = _block_width(h - SSIM_WINDOW + 1)
    cols = _valid_blur_rows_torch(rows.reshape(-1, h), _band(bh, str(pred.device)), bh)
    mu1, mu2, e_sq, e12 = cols.reshape(4, b, -1).unbind(0)
    return _ssim_from_moments(mu1, mu2, e_sq, e12).mean(dim=1)


_BLAS_CONTROLLER = None


def _single_threaded_blas():
    """Context limiting BLAS to one thread (threadpoolctl), so our worker threads don't fight
    OpenBLAS' own pool: with both, a loaded 2-core machine was 10x slower."""
    global _BLAS_CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


@torch.no_grad()
def ssim(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-image SSIM (MAT convention, see module docstring) of uint8 [B,H,W,3], float64 [B].

    CPU: one image per task on ``torch.get_num_threads()`` worker threads, NumPy with single-
    threaded BLAS inside (NumPy releases the GIL). Other devices: torch, in large chunks.
    """
    pred, gt = _check_pair(pred, gt)
    n, h, w, _ = pred.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise InputError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} px, got {h}x{w}",
                         "evaluate at the native resolution (256 or 512)")
    if n == 0:
        return torch.empty(0, dtype=torch.float64, device=pred.device)
    if pred.device.type != "cpu":
        per = max(1, _CHUNK_PIXELS_GPU // (h * w))
        return torch.cat([_ssim_chunk_torch(pred[i:i + per], gt[i:i + per]) for i in range(0, n, per)])
    a, b = pred.numpy(), gt.numpy()
    per = max(1, _CHUNK_PIXELS_CPU // (h * w))
    starts = range(0, n, per)
    workers = max(1, min(torch.get_num_threads(), len(starts)))
    with _single_threaded_blas():
        if workers == 1:
            parts = [_ssim_chunk_np(a[i:i + per], b[i:i + per]) for i in starts]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(lambda i: _ssim_chunk_np(a[i:i + per], b[i:i + per]), starts))
    return torch.from_numpy(np.concatenate(parts))


@torch.no_grad()
def ssim_lama(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-image SSIM as LaMa's evaluator computes it (Po-Hsun Su's ``pytorch-ssim``; LaMa
    ``saicinpainting/evaluation/losses/ssim.py``):
    values in [0, 1], C1 = 0.01², C2 = 0.03², the same 11×11 Gaussian (σ = 1.5) per channel but with
    **zero padding** of 5 px and no crop, so border windows see black; mean over C, H, W.

    For comparing with numbers produced by LaMa's scripts only: the zero border pulls the value away from
    MAT's ``ssim`` (+0.013 on the survey's 64 pairs). Float64 on the CPU, float32 elsewhere (as LaMa).
    uint8 [B,H,W,3] in, float64 [B] out.
    """
    pred, gt = _check_pair(pred, gt)
    n, h, w, c = pred.shape
    if n == 0:
        return torch.empty(0, dtype=torch.float64, device=pred.device)
    dtype = torch.float64 if pred.device.type == "cpu" else torch.float32
    g = gaussian_kernel_1d(dtype=dtype).to(pred.device)
    window = torch.outer(g, g).expand(c, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()
    c1, c2 = 0.01**2, 0.03**2

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, window, padding=SSIM_WINDOW // 2, groups=c)

    out = []
    per = max(1, (_CHUNK_PIXELS_CPU if pred.device.type == "cpu" else _CHUNK_PIXELS_GPU) // (h * w))
    for i in range(0, n, per):
        x = pred[i:i + per].permute(0, 3, 1, 2).to(dtype) / MAX_VALUE
        y = gt[i:i + per].permute(0, 3, 1, 2).to(dtype) / MAX_VALUE
        mu1, mu2 = blur(x), blur(y)
        s11 = blur(x * x) - mu1 * mu1
        s22 = blur(y * y) - mu2 * mu2
        s12 = blur(x * y) - mu1 * mu2
        m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2))
        out.append(m.mean(dim=(1, 2, 3)).to(torch.float64))
    return torch.cat(out)


# ----------------------------------------------------------------------------------------------
# all at once
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def pixel_metrics(pred: Tensor, gt: Tensor, holes: Tensor) -> dict[str, Tensor]:
    """All per-image pixel metrics of a batch: keys psnr, ssim, l1, psnr_hole, l1_hole -> float64 [B].

    ``pred``/``gt``: uint8 [B,H,W,3] RGB; ``holes``: bool [B,H,W], True = hole. Inputs are checked
    once and one pass of integer sums serves PSNR/L1 and their hole-only variants.
    """
    pred, gt = _check_pair(pred, gt)
    holes = _check_holes(holes, pred)
    s = _error_sums(pred, gt, holes)
    n_all = pred[0].numel()
    count_h = s["count_h"].to(torch.float64)
    return {
        "psnr": _psnr_from_sse(s["sse"], n_all),
        "ssim": ssim(pred, gt),
        "l1": _l1_from_sad(s["sad"], n_all),
        "psnr_hole": _psnr_from_sse(s["sse_h"], count_h),
        "l1_hole": _l1_from_sad(s["sad_h"], count_h),
    }
