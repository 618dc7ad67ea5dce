"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity
Metrics for Generative Models", ICML), k = 5, in float64.

Definitions (paper §3 and clovaai/generative-evaluation-prdc ``prdc/prdc.py``), with
B(x, r) the closed-form ball "distance < r" and NND_k(x) the distance of x to its k-th nearest
neighbour in its own set (the point itself excluded, i.e. the (k+1)-th smallest distance with the
zero self-distance counted, as the reference does):

* precision = share of fakes within NND_k of some real;
* recall    = share of reals within NND_k of some fake (fake radii);
* density   = (1 / kM) Σ_fakes #{reals whose ball holds the fake};
* coverage  = share of reals whose ball holds at least one fake (the nearest fake).

All comparisons are strict ``<``, as the reference. Distances are plain Euclidean, computed as
√(‖x‖² + ‖y‖² − 2xᵀy) in float64 (what scikit-learn's ``pairwise_distances`` does, which the
reference calls). The distance matrices are formed in row blocks so memory is O(block·N), not
O(N²): at N = 36,500 the reference would hold three N×N matrices (10 GB each in float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inpaintbench.errors import InputError

PRDC_K = 5
PRDC_NAMES = ("precision", "recall", "density", "coverage")
_BLOCK_ELEMENTS = 4_000_000  # elements of one distance block (32 MB in float64)

__all__ = ["prdc", "PRDC_K", "PRDC_NAMES", "knn_radii", "pairwise_distances"]


def _as_rows(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected features [N, D], got shape {arr.shape}", "pass one row per image")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: features contain NaN or inf", "drop failed samples first")
    return arr


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)], float64, in scikit-learn's order of operations
    (``euclidean_distances``: −2abᵀ, += ‖a‖², += ‖b‖², negatives from round-off clipped to 0, √), so
    that strict comparisons against radii agree with the reference to the last bit."""
    aa = np.einsum("ij,ij->i", a, a)[:, None]
    bb = np.einsum("ij,ij->i", b, b)[None, :]
    d2 = -2.0 * (a @ b.T)
    d2 += aa
    d2 += bb
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2, out=d2)


def _blocks(n_rows: int, n_cols: int) -> range:
    step = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    return range(0, n_rows, step)


def knn_radii(x: np.ndarray, k: int = PRDC_K) -> np.ndarray:
    """Distance of each row to its k-th nearest other row: the (k+1)-th smallest distance in its
    row of the self-distance matrix (the zero to itself counted first, as the reference)."""
    n = len(x)
    out = np.empty(n)
    step = _blocks(n, n).step
    for i in range(0, n, step):
        d = pairwise_distances(x[i:i + step], x)
        rows = np.arange(len(d))
        d[rows, i + rows] = 0.0  # the self-distance is exactly 0 (scikit-learn sets the diagonal too)
        out[i:i + step] = np.partition(d, k, axis=1)[:, k]
    return out


def prdc(real_features: Any, fake_features: Any, k: int = PRDC_K) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage"}`` of ``fake_features`` against
    ``real_features`` ([N, D] and [M, D] arrays or tensors), nearest_k = ``k`` (paper: 5)."""
    real = _as_rows(real_features, "real_features")
    fake = _as_rows(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise InputError(f"feature dimensions differ: real {real.shape[1]}, fake {fake.shape[1]}",
                         "use the same extractor for both sets")
    k = int(k)
    if k < 1 or min(len(real), len(fake)) <= k:
        raise InputError(f"PRDC with k = {k} needs more than k images per side, got {len(real)} real and "
                         f"{len(fake)} fake", f"evaluate more than {k} images")
    r_real = knn_radii(real, k)
    r_fake = knn_radii(fake, k)
    n, m = len(real), len(fake)
    fake_in_real = np.zeros(m, dtype=bool)  # precision
    density_count = np.zeros(m)
    real_in_fake = np.zeros(n, dtype=bool)  # recall
    nearest_fake = np.full(n, np.inf)  # coverage
    step = _blocks(n, m).step
    for i in range(0, n, step):
        d = pairwise_distances(real[i:i + step], fake)  # [block of reals, M]
        inside = d < r_real[i:i + step, None]
        fake_in_real |= inside.any(axis=0)
        density_count += inside.sum(axis=0)
        real_in_fake[i:i + step] = (d < r_fake[None, :]).any(axis=1)
        nearest_fake[i:i + step] = d.min(axis=1)
    return {
        "precision": float(fake_in_real.mean()),
        "recall": float(real_in_fake.mean()),
        # (1/k)·mean(counts), in the reference's order (the counts are exact integers in float64)
        "density": float((1.0 / float(k)) * density_count.mean()),
        "coverage": float((nearest_fake < r_real).mean()),
    }


def prdc_from_distances(d_rr: np.ndarray, d_ff: np.ndarray, d_rf: np.ndarray, k: int = PRDC_K) -> dict[str, float]:
    """PRDC from precomputed distance matrices (real-real, fake-fake, real-fake). The bootstrap
    indexes them with the resampled rows (``d[idx][:, idx]``), which is exactly the distance matrix of
    the resampled sets, so each resample costs O(N²) instead of a fresh O(N²D) distance computation."""
    r_real = np.partition(d_rr, k, axis=1)[:, k]
    r_fake = np.partition(d_ff, k, axis=1)[:, k]
    inside = d_rf < r_real[:, None]
    return {
        "precision": float(inside.any(axis=0).mean()),
        "recall": float((d_rf < r_fake[None, :]).any(axis=1).mean()),
        "density": float((1.0 / float(k)) * inside.sum(axis=0).mean()),
        "coverage": float((d_rf.min(axis=1) < r_real).mean()),
    }
