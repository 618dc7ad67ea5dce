"""Streaming float64 feature statistics (N, Σx, Σxxᵀ) and the FID between two of them.

For features that arrive in pieces (shards, ranks) or a reference set cached as three arrays
instead of its rows. The algebra is :mod:`inpaintbench.metrics.frechet`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from inpaintbench.errors import InputError
from inpaintbench.metrics.frechet import _as_features, _row_chunks, frechet_distance_from_moments


# ----------------------------------------------------------------------------------------------
# streaming statistics
# ----------------------------------------------------------------------------------------------
class FeatureStats:
    """Float64 streaming accumulator of N, Σx and Σxxᵀ; mergeable and serialisable.

    ``update`` takes [n, d] numpy arrays or torch tensors (on any device: the outer-product sum is
    formed there in float64, then added on the CPU). ``cov()`` is the population covariance (/N),
    as MAT computes it. A reference-set cache can store :meth:`state_dict` (three arrays) instead
    of the features; note that raw moments lose the centring trick of :func:`frechet_distance`
    (irrelevant in float64 for Inception features, whose mean is of the order of their spread).
    """

    def __init__(self, dim: int | None = None):
        self.dim = None if dim is None else int(dim)
        self.n = 0
        self._sum: np.ndarray | None = None
        self._sum_outer: np.ndarray | None = None
        if self.dim is not None:
            self._alloc(self.dim)

    def _alloc(self, d: int) -> None:
        self.dim = d
        self._sum = np.zeros(d, dtype=np.float64)
        self._sum_outer = np.zeros((d, d), dtype=np.float64)

    def update(self, feats: Any) -> FeatureStats:
        """Add a batch of feature rows [n, d] (numpy array or torch tensor on any device)."""
        if isinstance(feats, torch.Tensor) and feats.device.type != "cpu":
            return self._update_torch(feats)
        x = _as_features(feats, "feats", self.dim)
        if self.dim is None:
            self._alloc(x.shape[1])
        for c in _row_chunks(x):
            self._sum += c.sum(axis=0)
            self._sum_outer += c.T @ c
        self.n += int(x.shape[0])
        return self

    def _update_torch(self, feats: torch.Tensor) -> FeatureStats:
        """Sums formed on the tensor's device in float64 (a GPU), then added on the CPU."""
        f = feats.detach()
        if f.dim() != 2 or (self.dim is not None and f.shape[1] != self.dim) or \
                not bool(torch.isfinite(f).all()):
            _as_features(f.cpu().numpy(), "feats", self.dim)  # raises the matching InputError
        f = f.to(torch.float64)
        if self.dim is None:
            self._alloc(int(f.shape[1]))
        self._sum += f.sum(dim=0).cpu().numpy()
        self._sum_outer += (f.T @ f).cpu().numpy()
        self.n += int(f.shape[0])
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add another accumulator's counts (e.g. from another rank or shard) into this one."""
        if other.n == 0:
            return self
        if self.dim is None:
            self._alloc(int(other.dim))
        if other.dim != self.dim:
            raise InputError(f"cannot merge feature stats of dimension {other.dim} into {self.dim}",
                             "use the same feature extractor for every shard")
        self._sum += other._sum
        self._sum_outer += other._sum_outer
        self.n += other.n
        return self

    def mean(self) -> np.ndarray:
        self._require(1)
        return self._sum / self.n

    def cov(self) -> np.ndarray:
        """Population covariance ΣxxᵀN⁻¹ − μμᵀ (MAT's convention), symmetrised."""
        self._require(2)
        mu = self.mean()
        c = self._sum_outer / self.n - np.outer(mu, mu)
        return 0.5 * (c + c.T)

    def _require(self, k: int) -> None:
        if self.n < k:
            raise InputError(f"feature statistics need at least {k} feature rows, have {self.n}",
                             "evaluate more images")

    def state_dict(self) -> dict[str, np.ndarray]:
        if self.dim is None:
            raise InputError("empty FeatureStats has no dimension to save", "update() it first")
        return {"n": np.asarray(self.n, dtype=np.int64), "sum": self._sum.copy(),
                "sum_outer": self._sum_outer.copy()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FeatureStats:
        def arr(v: Any) -> np.ndarray:
            if hasattr(v, "detach"):
                v = v.detach().cpu().numpy()
            return np.asarray(v)

        s = arr(state["sum"]).astype(np.float64)
        so = arr(state["sum_outer"]).astype(np.float64)
        if s.ndim != 1 or so.shape != (s.size, s.size):
            raise InputError(f"corrupt feature statistics: sum {s.shape}, sum_outer {so.shape}",
                             "delete the cached statistics and recompute them")
        out = cls(s.size)
        out._sum[:] = s
        out._sum_outer[:] = so
        out.n = int(arr(state["n"]))
        return out

    def __repr__(self) -> str:
        return f"FeatureStats(dim={self.dim}, n={self.n})"


def frechet_distance_from_stats(*args: Any) -> float:
    """FID from moments: ``(mu1, sigma1, mu2, sigma2)`` arrays, or two :class:`FeatureStats`.

    Float64 throughout; tr(Σ₁Σ₂)^{1/2} as in the module docstring. The distance is returned as
    computed (a value within round-off of 0 can come out slightly negative).
    """
    if len(args) == 2 and all(isinstance(a, FeatureStats) for a in args):
        mu1, sigma1, mu2, sigma2 = args[0].mean(), args[0].cov(), args[1].mean(), args[1].cov()
    elif len(args) == 4:
        mu1, sigma1, mu2, sigma2 = args
    else:
        raise TypeError("frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) or (stats1, stats2)")
    return frechet_distance_from_moments(mu1, sigma1, mu2, sigma2)
