"""Resize policies: how an image of any size becomes exactly R×R (``center-crop``, ``pad``, ``resize``,
``short-side``; the rules are in :mod:`inpaintbench.datasets`' docstring).

Pure functions on uint8 arrays and image sizes, shared by every dataset kind (``samples``,
``folder:``, ``hf:``) and the trainer's data loader: :func:`plan_geometry` says what a policy will do
to a size (checked when a dataset is loaded), :func:`apply_policy` does it when an image is decoded.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from inpaintbench.errors import InputError
from inpaintbench.images import ALPHA_POLICIES

RESIZE_POLICIES = ("center-crop", "pad", "resize", "short-side")
RESIZE_FILTER = "PIL bicubic (antialiased when shrinking)"
PAD_MODE = "reflect (numpy mode='reflect'), bottom/right"
_SIZE_FIX = "pass --resize-policy pad (mirror-pad small images) or resize/short-side (resample them)"


class ResizePolicyWarning(UserWarning):
    """The resize policy upscaled, padded or changed the aspect ratio of some images."""


# ----------------------------------------------------------------------------------------------------
# Geometry


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def _center_crop(img: np.ndarray, r: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - r) // 2, (w - r) // 2
    return np.ascontiguousarray(img[y:y + r, x:x + r])


def plan_geometry(width: int, height: int, r: int, policy: str) -> str:
    """What ``policy`` does to a ``width × height`` image: one of ``exact``, ``crop``, ``pad``,
    ``resize``, ``upscale``, ``too-small`` (the last only for ``center-crop``)."""
    if (width, height) == (r, r):
        return "exact"
    if policy == "center-crop":
        return "crop" if min(width, height) >= r else "too-small"
    if policy == "pad":
        return "crop" if min(width, height) >= r else "pad"
    if policy == "resize":
        return "upscale" if min(width, height) < r else "resize"
    if policy == "short-side":
        return "upscale" if min(width, height) < r else ("crop" if min(width, height) == r else "resize")
    raise InputError(f"unknown resize policy {policy!r}", f"use one of: {', '.join(RESIZE_POLICIES)}")


def apply_policy(img: np.ndarray, r: int, policy: str, name: str = "image") -> np.ndarray:
    """Bring a uint8 [H, W, 3] image to [r, r, 3] under ``policy`` (see the module docstring)."""
    h, w = img.shape[:2]
    plan = plan_geometry(w, h, r, policy)
    if plan == "exact":
        return img
    if plan == "too-small":
        raise InputError(f"{name}: {w}x{h} is smaller than {r}x{r} and the resize policy is center-crop",
                         _SIZE_FIX)
    if policy == "pad":
        ph, pw = max(0, r - h), max(0, r - w)
        if ph or pw:
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        return _center_crop(img, r)
    if policy == "center-crop":
        return _center_crop(img, r)
    if policy == "resize":
        return _resize(img, r, r)
    # short-side
    short = min(w, h)
    if short != r:
        nw, nh = (r, max(r, round(h * r / w))) if w <= h else (max(r, round(w * r / h)), r)
        img = _resize(img, nw, nh)
    return _center_crop(img, r)


def _check_args(resolution: int, resize_policy: str, alpha: str) -> None:
    if not isinstance(resolution, int) or resolution < 8:
        raise InputError(f"resolution must be an integer >= 8, got {resolution!r}", "e.g. --resolution 256")
    if resize_policy not in RESIZE_POLICIES:
        raise InputError(f"unknown resize policy {resize_policy!r}",
                         f"use one of: {', '.join(RESIZE_POLICIES)}")
    if alpha not in ALPHA_POLICIES:
        raise InputError(f"unknown alpha policy {alpha!r}", f"use one of: {', '.join(ALPHA_POLICIES)}")


def _announce(spec: str, counts: dict[str, int], n_aspect: int, n: int) -> None:
    """One :class:`ResizePolicyWarning` naming how many images a dataset's policy upscaled,
    padded or stretched (nothing when none)."""
    notes = []
    if counts.get("upscale"):
        notes.append(f"{counts['upscale']} upscaled")
    if counts.get("pad"):
        notes.append(f"{counts['pad']} mirror-padded")
    if n_aspect:
        notes.append(f"{n_aspect} with changed aspect ratio")
    if notes:
        warnings.warn(f"{spec}: of {n} images, " + ", ".join(notes), ResizePolicyWarning, stacklevel=4)
