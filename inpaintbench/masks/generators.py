"""Mask generators, written from the protocol descriptions (not copied from the original code).

All functions take an explicit :class:`numpy.random.Generator` and return a bool ``[s, s]`` array
with **True = hole**. Drawing uses OpenCV's integer rasteriser (thick lines with round caps, filled
circles), which is deterministic across platforms, so a seed gives the same bits everywhere.

Sources of the algorithms:

* MAT / CoModGAN ``RandomMask`` + DeepFill-v2 free-form ``RandomBrush``: fenglinglwb/MAT
  ``datasets/mask_generator_{256,512}[_small].py`` (Li et al., CVPR'22), zsyzzsoft/co-mod-gan
  ``training/mask_generator.py`` (Zhao et al., ICLR'21), Yu et al. ICCV'19.
* LaMa random masks: advimman/lama ``saicinpainting/training/data/masks.py`` and
  ``bin/gen_mask_dataset.py`` with ``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``
  (Suvorov et al., WACV'22).

Deliberate differences from the originals (none changes the distribution):

* draws come from a private generator per mask, in our own order; MAT's two wasted ``random()``
  calls per stroke (a no-op ``transpose``) are not reproduced, bit-exactness with the original global
  ``np.random`` stream being impossible anyway;
* a requested shape count of 0 draws 0 shapes (the original ``randint(0)`` would raise);
* LaMa: when none of the 5 variants passes ``max_tamper_area`` the original drops the image; we draw
  5 new variants from the same stream so every index yields a mask. Empty candidates are rejected
  too (the original's crop routine fails on them).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image, ImageDraw


def _count(rng: np.random.Generator, maximum: int) -> int:
    """``randint(maximum)`` as the originals use it (0..maximum-1), 0 when ``maximum <= 0``."""
    return int(rng.integers(maximum)) if maximum > 0 else 0


# ---------------------------------------------------------------------------------------------- MAT


def _mat_boxes(rng: np.random.Generator, hole: np.ndarray, max_tries: int, max_size: int) -> None:
    """Up to ``max_tries - 1`` axis-aligned boxes; a box may stick out by half its size."""
    s = hole.shape[0]
    for _ in range(_count(rng, max_tries)):
        w, h = int(rng.integers(max_size)), int(rng.integers(max_size))
        x = int(rng.integers(-(w // 2), s - w + w // 2))
        y = int(rng.integers(-(h // 2), s - h + h // 2))
        hole[max(y, 0) : min(y + h, s), max(x, 0) : min(x + w, s)] = True


def mat_brush(
    rng: np.random.Generator,
    max_tries: int,
    s: int,
    min_vertices: int = 4,
    max_vertices: int = 18,
    mean_angle: float = 2 * math.pi / 5,
    angle_range: float = 2 * math.pi / 15,
    min_width: int = 12,
    max_width: int = 48,
) -> np.ndarray:
    """DeepFill-v2 / MAT free-form strokes: zig-zag polylines of round-jointed thick segments."""
    canvas = Image.new("L", (s, s), 0)
    draw = ImageDraw.Draw(canvas)
    mean_radius = math.sqrt(2 * s * s) / 8  # half the canvas diagonal / 4 (DeepFill-v2 convention)
    for _ in range(_count(rng, max_tries)):
        n_vertices = int(rng.integers(min_vertices, max_vertices))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = rng.uniform(angle_min, angle_max, size=n_vertices)
        angles[0::2] = 2 * math.pi - angles[0::2]  # alternate turning direction
        radii = np.clip(rng.normal(mean_radius, mean_radius // 2, size=n_vertices), 0, 2 * mean_radius)
        x, y = int(rng.integers(s)), int(rng.integers(s))
        points = [(x, y)]
        for r, a in zip(radii.tolist(), angles.tolist(), strict=True):
            x = int(min(max(x + r * math.cos(a), 0.0), float(s)))
            y = int(min(max(y + r * math.sin(a), 0.0), float(s)))
            points.append((x, y))
        width = int(rng.uniform(min_width, max_width))
        draw.line(points, fill=1, width=width)
        half = width // 2
        for px, py in points:  # round joints and caps
            draw.ellipse((px - half, py - half, px + half, py + half), fill=1)
    hole = np.asarray(canvas, dtype=np.uint8).astype(bool)
    if rng.random() > 0.5:
        hole = hole[::-1, :]
    if rng.random() > 0.5:
        hole = hole[:, ::-1]
    return np.ascontiguousarray(hole)


def mat_random_mask(
    rng: np.random.Generator,
    s: int,
    max_small_boxes: int,
    max_large_boxes: int,
    max_strokes: int,
    hole_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """MAT's ``RandomMask``: boxes up to s/2, boxes up to s, free-form strokes; rejection on the
    hole ratio, both bounds exclusive (so the default range only rejects empty/full masks)."""
    lo, hi = hole_range
    coef = min(lo + hi, 1.0)  # lower target ranges draw fewer shapes, as in CoModGAN's -h0..-h4
    while True:
        hole = np.zeros((s, s), bool)
        _mat_boxes(rng, hole, int(max_small_boxes * coef), s // 2)
        _mat_boxes(rng, hole, int(max_large_boxes * coef), s)
        hole |= mat_brush(rng, int(max_strokes * coef), s)
        ratio = float(hole.mean())
        if lo < ratio < hi:
            return hole


# --------------------------------------------------------------------------------------------- LaMa


def lama_irregular(
    rng: np.random.Generator,
    s: int,
    min_times: int,
    max_times: int,
    max_width: int,
    max_len: int,
    max_angle: int = 4,
) -> np.ndarray:
    """LaMa ``make_random_irregular_mask`` (LINE draw method), parameters as in the YAML configs.

    Stroke count is ``min_times .. max_times + 1`` inclusive: without a ramp LaMa passes
    ``max_times + 1`` as the upper bound of an inclusive draw. Each stroke chains 1-5 segments with
    an integer angle (+0.01 rad) mirrored on even strokes, length ``10 + [0, max_len)`` and width
    ``5 + [0, max_width)``; end points are clipped to the canvas.
    """
    canvas = np.zeros((s, s), np.uint8)
    # all draws of this mask up front (a few vectorised calls instead of ~1000 scalar ones)
    n_strokes = int(rng.integers(min_times, max_times + 2))
    starts = rng.integers(s, size=(n_strokes, 2)).tolist()
    n_segments = (1 + rng.integers(5, size=n_strokes)).tolist()
    total = sum(n_segments)
    angles = (0.01 + rng.integers(max_angle, size=total)).tolist()
    lengths = (10 + rng.integers(max_len, size=total)).tolist()
    widths = (5 + rng.integers(max_width, size=total)).tolist()
    k = 0
    for i in range(n_strokes):
        x, y = starts[i]
        for _ in range(n_segments[i]):
            angle = 2 * math.pi - angles[k] if i % 2 == 0 else angles[k]
            ex = min(max(int(x + lengths[k] * math.sin(angle)), 0), s)
            ey = min(max(int(y + lengths[k] * math.cos(angle)), 0), s)
            cv2.line(canvas, (x, y), (ex, ey), 1, thickness=widths[k], lineType=cv2.LINE_8)
            x, y = ex, ey
            k += 1
    return canvas.astype(bool)


def lama_boxes(
    rng: np.random.Generator,
    s: int,
    margin: int,
    bbox_min_size: int,
    bbox_max_size: int,
    min_times: int,
    max_times: int,
) -> np.ndarray:
    """LaMa ``make_random_rectangle_mask``: ``min_times..max_times`` boxes fully inside the margin."""
    hole = np.zeros((s, s), bool)
    side_hi = min(bbox_max_size + 1, s - 2 * margin)
    for _ in range(int(rng.integers(min_times, max_times + 1))):
        bw, bh = int(rng.integers(bbox_min_size, side_hi)), int(rng.integers(bbox_min_size, side_hi))
        x = int(rng.integers(margin, s - margin - bw + 1))
        y = int(rng.integers(margin, s - margin - bh + 1))
        hole[y : y + bh, x : x + bw] = True
    return hole


def lama_mixed(
    rng: np.random.Generator,
    s: int,
    irregular: dict | None,
    box: dict | None,
    irregular_proba: float = 1.0,
    box_proba: float = 0.0,
) -> np.ndarray:
    """LaMa ``MixedMaskGenerator``: ONE sub-generator per mask, chosen with renormalised weights."""
    kinds = [(irregular_proba, "irregular"), (box_proba, "box")]
    kinds = [(p, k) for p, k in kinds if p > 0 and (irregular if k == "irregular" else box) is not None]
    total = sum(p for p, _ in kinds)
    u = rng.random() * total
    kind = kinds[-1][1]
    for p, k in kinds:
        if u < p:
            kind = k
            break
        u -= p
    if kind == "irregular":
        assert irregular is not None
        return lama_irregular(rng, s, **irregular)
    assert box is not None
    return lama_boxes(rng, s, **box)


def lama_eval_mask(
    rng: np.random.Generator,
    s: int,
    irregular: dict | None,
    box: dict | None,
    irregular_proba: float = 1.0,
    box_proba: float = 0.0,
    variants_n: int = 5,
    max_tamper_area: float = 0.5,
) -> np.ndarray:
    """``gen_mask_dataset.py`` on a square ``s x s`` image: draw ``variants_n`` candidates, drop
    those with hole fraction ``> max_tamper_area`` (0.5 itself passes), keep one survivor at random."""
    while True:
        survivors = []
        for _ in range(variants_n):
            hole = lama_mixed(rng, s, irregular, box, irregular_proba, box_proba)
            ratio = float(hole.mean())
            if 0.0 < ratio <= max_tamper_area:
                survivors.append(hole)
        if survivors:
            return survivors[int(rng.integers(len(survivors)))]


# ---------------------------------------------------------------------------------------------- box


def centered_box(s: int, side_fraction: float = 0.5) -> np.ndarray:
    """A centred square hole of side ``round(s * side_fraction)`` (the classic "center" protocol)."""
    side = int(round(s * side_fraction))
    start = (s - side) // 2
    hole = np.zeros((s, s), bool)
    hole[start : start + side, start : start + side] = True
    return hole
