"""CMMD (Jayasumana et al. 2024, "Rethinking FID: Towards a Better Evaluation Metric for Image
Generation", CVPR): MMD² between CLIP embedding sets with a Gaussian RBF kernel.

Estimator exactly as google-research ``cmmd/distance.py``: the *biased* (minimum-variance,
V-statistic) estimate of Gretton et al. 2012, Eq. 5 — every mean runs over all pairs, the diagonal
k(x, x) = 1 included —

    CMMD = 1000 · ( mean_ij k(xᵢ, xⱼ) + mean_ij k(yᵢ, yⱼ) − 2 mean_ij k(xᵢ, yⱼ) ),
    k(a, b) = exp(−‖a − b‖² / (2σ²)),  σ = 10,

on the embeddings as given (the CLIP extractor L2-normalises them; this function does not). The
squared distances are formed as ‖a‖² + ‖b‖² − 2aᵀb like the reference. Float64 here (the reference
runs float32 in JAX): with unit-norm embeddings ‖a − b‖² ≤ 4, so every kernel value lies in
[exp(−0.02), 1] and the distance between sets is a small difference of means close to 1 — in
float32 that difference loses about 7 significant digits minus log10(1/value), which is why the
paper scales by 1000 for display and why we accumulate in float64.

Row blocks keep memory O(block·N). :class:`WeightedMMD` gives the same estimate for bootstrap
resamples from the resampling multiplicities (a resample repeating row i w_i times has
mean_ij k = wᵀKw / N²), with the three kernel matrices formed once when they fit in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inpaintbench.errors import InputError

CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0
_BLOCK_ELEMENTS = 4_000_000
#: largest N for which the bootstrap keeps the three N×N kernel matrices (3 × 134 MB at 4096)
KERNEL_CACHE_MAX_N = 4096

__all__ = ["cmmd", "mmd_rbf", "WeightedMMD", "CMMD_SIGMA", "CMMD_SCALE"]


def _rows(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or len(arr) == 0:
        raise InputError(f"{name}: expected embeddings [N, D] with N >= 1, got shape {arr.shape}",
                         "pass one embedding row per image")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: embeddings contain NaN or inf", "drop failed samples first")
    return arr


def _kernel_block(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    sq = -2.0 * (a @ b.T)
    sq += np.einsum("ij,ij->i", a, a)[:, None]
    sq += np.einsum("ij,ij->i", b, b)[None, :]
    return np.exp(-gamma * sq)


def _kernel_sum(a: np.ndarray, b: np.ndarray, gamma: float, wa: np.ndarray | None = None,
                wb: np.ndarray | None = None) -> float:
    """Σ_ij wa_i wb_j k(a_i, b_j) in row blocks (unit weights when None)."""
    total = 0.0
    step = max(1, _BLOCK_ELEMENTS // len(b))
    for i in range(0, len(a), step):
        k = _kernel_block(a[i:i + step], b, gamma)
        if wa is None:
            total += float(k.sum())
        else:
            total += float(wa[i:i + step] @ (k @ wb))
    return total


def mmd_rbf(x: Any, y: Any, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> float:
    """Biased MMD² with a Gaussian RBF kernel of bandwidth ``sigma``, times ``scale``."""
    x = _rows(x, "x_embeddings")
    y = _rows(y, "y_embeddings")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"embedding dimensions differ: {x.shape[1]} vs {y.shape[1]}",
                         "use the same CLIP model for both sets")
    gamma = 1.0 / (2.0 * float(sigma) ** 2)
    kxx = _kernel_sum(x, x, gamma) / len(x) ** 2
    kyy = _kernel_sum(y, y, gamma) / len(y) ** 2
    kxy = _kernel_sum(x, y, gamma) / (len(x) * len(y))
    return float(scale) * (kxx + kyy - 2.0 * kxy)


def cmmd(x_embeddings: Any, y_embeddings: Any) -> float:
    """CMMD on the paper's scale (σ = 10, × 1000) between two embedding sets, as given.

    Symmetric in its arguments; 0 for identical sets. The CLIP extractor
    (:mod:`inpaintbench.metrics.clip_features`) returns L2-normalised embeddings, as the paper uses.
    """
    return mmd_rbf(x_embeddings, y_embeddings, CMMD_SIGMA, CMMD_SCALE)


class WeightedMMD:
    """CMMD of paired resamples of (x, y) from multiplicities ``w`` (same ``w`` for both sets):
    ``(wᵀKxx w + wᵀKyy w − 2 wᵀKxy w) / N² · scale``. Exactly :func:`cmmd` of the resampled rows."""

    def __init__(self, x: Any, y: Any, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE):
        self.x = _rows(x, "x_embeddings")
        self.y = _rows(y, "y_embeddings")
        if self.x.shape != self.y.shape:
            raise InputError(f"paired resampling needs equal shapes, got {self.x.shape} and {self.y.shape}",
                             "pass index-aligned embedding sets")
        self.gamma = 1.0 / (2.0 * float(sigma) ** 2)
        self.scale = float(scale)
        n = len(self.x)
        self._k = None
        if n <= KERNEL_CACHE_MAX_N:
            self._k = (_kernel_block(self.x, self.x, self.gamma), _kernel_block(self.y, self.y, self.gamma),
                       _kernel_block(self.x, self.y, self.gamma))

    def __call__(self, w: np.ndarray) -> float:
        w = np.asarray(w, dtype=np.float64)
        total = float(w.sum())
        if self._k is not None:
            kxx, kyy, kxy = (float(w @ (k @ w)) for k in self._k)
        else:
            kxx = _kernel_sum(self.x, self.x, self.gamma, w, w)
            kyy = _kernel_sum(self.y, self.y, self.gamma, w, w)
            kxy = _kernel_sum(self.x, self.y, self.gamma, w, w)
        return self.scale * (kxx + kyy - 2.0 * kxy) / total**2
