"""`inpaintbench sanity`: does a metric react to controlled damage on *your* images?

The ground truth is degraded **inside the holes only** (the known pixels stay exact, as after the
harness's composite), in six ways, each at severities 1..4 (severity 0 is the identity):

========  ==============================================================  ======================
name      what replaces the hole pixels                                   severities 1..4
========  ==============================================================  ======================
blur      Gaussian blur of the image (σ in px, reflected borders)          σ = 1, 2, 4, 8 (×R/256)
noise     + σ·z, z ~ N(0, 1) per pixel and channel (one z per image)      σ = 8, 16, 32, 64 levels
colour    + s·u, u a unit chroma direction ⊥ (1,1,1) (one per image)     s = 8, 16, 32, 64 levels
shuffle   tiles (R/16 px) meeting the hole, a growing share cyclically   25, 50, 75, 100 % of
          permuted (nested: each severity moves the tiles of the last)   the tiles
mean      blend towards the mean colour of the known pixels              t = 0.25, 0.5, 0.75, 1
copy      the image displaced by a fixed direction (reflected borders)   5, 10, 20, 40 % of R
========  ==============================================================  ======================

Results are rounded to uint8 and clipped, as a saved prediction. Everything random is drawn from
``numpy.random.default_rng([seed, crc32(image id), degradation index])``: deterministic, and the
same for an image whatever ``--limit`` or batch it comes in. For noise, colour and mean the damage
``|degraded − gt|`` grows monotonically with severity at every pixel (same draw, growing scale; the
clip and the rounding of an integer plus a growing offset are monotone); blur, shuffle and copy
grow it on average over natural images (tested on the embedded samples).

Each degraded set is scored by the scoring loop of ``run``/``score``
(:class:`inpaintbench.evaluation.Evaluation`, one pass per set, the metric suite of the
selected metrics) into its own run directory, then read back as runs: the meta-evaluation is in
:mod:`inpaintbench.analysis.sanity_eval`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np

SEVERITIES = (1, 2, 3, 4)
#: the parameter of each degradation at severities 1..4 (units in the module docstring)
LEVELS: dict[str, tuple[float, ...]] = {
    "blur": (1.0, 2.0, 4.0, 8.0),
    "noise": (8.0, 16.0, 32.0, 64.0),
    "colour": (8.0, 16.0, 32.0, 64.0),
    "shuffle": (0.25, 0.5, 0.75, 1.0),
    "mean": (0.25, 0.5, 0.75, 1.0),
    "copy": (0.05, 0.1, 0.2, 0.4),
}
DEGRADATIONS: tuple[str, ...] = tuple(LEVELS)
DESCRIPTIONS = {
    "blur": "Gaussian blur, σ = 1, 2, 4, 8 px at 256",
    "noise": "Gaussian noise, σ = 8, 16, 32, 64 grey levels",
    "colour": "chroma shift, 8, 16, 32, 64 levels",
    "shuffle": "patch shuffle, 25-100 % of the tiles",
    "mean": "blend to the mean known colour, 25-100 %",
    "copy": "copy from elsewhere, shifted 5-40 % of the size",
}


def rng_for(seed: int, key: str, degradation: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode()), DEGRADATIONS.index(degradation)])


def _paste(gt: np.ndarray, hole: np.ndarray, values: np.ndarray) -> np.ndarray:
    """uint8 image: ``values`` (float, rounded half to even and clipped) in the hole, ``gt`` elsewhere."""
    v = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.where(hole[..., None], v, gt)


def _blur(gt: np.ndarray, hole: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    sigma = level * gt.shape[0] / 256.0
    out = gaussian_filter(gt.astype(np.float64), sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0)
    return _paste(gt, hole, out)


def _noise(gt: np.ndarray, hole: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    return _paste(gt, hole, gt + level * rng.standard_normal(gt.shape))


def _colour(gt: np.ndarray, hole: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * math.pi)
    e1 = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    e2 = np.array([1.0, 1.0, -2.0]) / math.sqrt(6)  # e1, e2: orthonormal basis of the chroma plane
    return _paste(gt, hole, gt + level * (math.cos(a) * e1 + math.sin(a) * e2))


def _mean(gt: np.ndarray, hole: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    known = gt[~hole]
    colour = known.mean(axis=0) if known.size else gt.reshape(-1, 3).mean(axis=0)
    return _paste(gt, hole, gt + level * (colour - gt))


def _reflect(i: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into [0, n) (period 2n, edge pixels not repeated twice: 'symmetric')."""
    i = np.mod(i, 2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def _copy(gt: np.ndarray, hole: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    h, w = hole.shape
    a = rng.uniform(0, 2 * math.pi)
    dist = level * max(h, w)
    dy, dx = int(round(dist * math.sin(a))), int(round(dist * math.cos(a)))
    ys = _reflect(np.arange(h) + dy, h)
    xs = _reflect(np.arange(w) + dx, w)
    return np.where(hole[..., None], gt[ys][:, xs], gt)


def _shuffle(gt: np.ndarray, hole: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    h, w = hole.shape
    t = max(4, h // 16)
    cells = [(y, x) for y in range(0, h, t) for x in range(0, w, t) if hole[y:y + t, x:x + t].any()]
    order = rng.permutation(len(cells))
    k = int(math.ceil(level * len(cells)))
    out = gt.copy()
    if k < 2:
        return out
    chosen = [cells[i] for i in order[:k]]
    for (y, x), (sy, sx) in zip(chosen, chosen[1:] + chosen[:1], strict=True):
        src = np.pad(gt[sy:sy + t, sx:sx + t], ((0, t - min(t, h - sy)), (0, t - min(t, w - sx)), (0, 0)), mode="edge")
        dst = out[y:y + t, x:x + t]
        hh, ww = dst.shape[:2]
        region = hole[y:y + t, x:x + t]
        dst[region] = src[:hh, :ww][region]
    return out


_FUNCS: dict[str, Callable[[np.ndarray, np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "blur": _blur, "noise": _noise, "colour": _colour, "shuffle": _shuffle, "mean": _mean, "copy": _copy,
}


def degrade(name: str, gt: np.ndarray, hole: np.ndarray, severity: int, seed: int = 0, key: str = "") -> np.ndarray:
    """``gt`` (uint8 [H,W,3]) with its hole pixels (bool [H,W], True = hole) degraded by ``name`` at
    ``severity`` (0 = identity, 1..4); deterministic in (seed, key, name, severity)."""
    if name not in _FUNCS:
        raise ValueError(f"unknown degradation {name!r}; known: {', '.join(DEGRADATIONS)}")
    if not 0 <= int(severity) <= len(LEVELS[name]):
        raise ValueError(f"severity must be 0..{len(LEVELS[name])}, got {severity}")
    gt = np.asarray(gt)
    hole = np.asarray(hole, dtype=bool)
    if gt.dtype != np.uint8 or gt.ndim != 3 or gt.shape[2] != 3 or hole.shape != gt.shape[:2]:
        raise ValueError("degrade needs uint8 [H,W,3] and bool [H,W]")
    if severity == 0:
        return gt.copy()
    out = _FUNCS[name](gt, hole, LEVELS[name][int(severity) - 1], rng_for(seed, key, name))
    return np.where(hole[..., None], out, gt)  # known pixels exact, whatever a degradation did


def degrade_batch(name: str, gt: np.ndarray, holes: np.ndarray, severity: int, seed: int,
                  keys: list[str]) -> np.ndarray:
    return np.stack([degrade(name, g, h, severity, seed, k) for g, h, k in zip(gt, holes, keys, strict=True)])
