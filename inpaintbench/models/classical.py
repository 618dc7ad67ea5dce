"""Weights-free baselines: OpenCV Telea and Navier–Stokes, scikit-image biharmonic, and PatchMatch.

They make a GPU-free evaluation meaningful and sanity-check the metrics: the diffusion-like fills
(Telea, NS, biharmonic) are smooth and tend to win on PSNR/L1, while PatchMatch copies real texture and
should do relatively better on perceptual metrics.

Conventions shared by all of them (recorded by ``describe()``):

* Input uint8 RGB, holes bool (True = missing); output float32 in [0, 1] (the uint8 result / 255 for
  the OpenCV and PatchMatch fills, the clipped float result for biharmonic). Known pixels come back
  unchanged; the harness composites anyway.
* Channels are filled independently by every method, so RGB vs BGR order does not matter.
* A sample with no hole is returned as is. A sample that is *all* hole has no information to
  propagate; it is filled with mid-grey 0.5 (OpenCV would return the undefined input pixels and
  biharmonic would fail).
* ``workers``: samples of a batch are filled on that many threads (OpenCV and SciPy release the GIL);
  ``None`` = the CPUs this process may use (or ``OMP_NUM_THREADS``). Results do not depend on it (each
  sample is independent); PatchMatch always runs one at a time (its library's seed is process-global).
* Radius 3 for Telea/NS matches the timings and quality figures measured for this project; IOPaint's cv2
  default is NS with radius 4. Both are kwargs.

References: A. Telea, "An image inpainting technique based on the fast marching method", J. Graphics
Tools 2004; Bertalmío, Bertozzi, Sapiro, "Navier–Stokes, fluid dynamics, and image and video
inpainting", CVPR 2001; Damelin & Hoang, "On surface completion and image inpainting by biharmonic
functions", 2018 (scikit-image's implementation); Barnes et al., "PatchMatch", SIGGRAPH 2009
(package ``pypatchmatch``, MIT).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.models.seeding import library_seed_32

ALL_HOLE_FILL = 0.5


def check_batch(images: np.ndarray, holes: np.ndarray, ids: list[str] | None) -> None:
    """Reject arrays that break the Inpainter contract (a bug in the caller, hence ValueError)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[3] != 3:
        raise ValueError(f"images must be uint8 [B,H,W,3], got {getattr(images, 'dtype', type(images))} "
                         f"{getattr(images, 'shape', '')}")
    if not isinstance(holes, np.ndarray) or holes.dtype != np.bool_ or holes.shape != images.shape[:3]:
        raise ValueError(f"holes must be bool {images.shape[:3]} (True = hole), got "
                         f"{getattr(holes, 'dtype', type(holes))} {getattr(holes, 'shape', '')}")
    if ids is not None and len(ids) != images.shape[0]:
        raise ValueError(f"got {len(ids)} ids for {images.shape[0]} images")


def _default_workers() -> int:
    """The CPUs this process may use, or ``OMP_NUM_THREADS`` when set (torchrun sets it to 1 per process,
    so K ranks on K cores do not oversubscribe)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class ClassicalInpainter:
    """Shared batching and edge cases; subclasses implement ``_fill(image_u8, hole_bool, seed)``."""

    name = "classical"
    native_resolution: int | None = None
    pad_multiple = 1
    value_range = (0.0, 1.0)
    thread_safe = True  # may samples be filled concurrently?
    workers: int | None = None

    def _n_workers(self, batch: int) -> int:
        if not self.thread_safe:
            return 1
        n = self.workers if self.workers is not None else _default_workers()
        return max(1, min(int(n), batch))

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        check_batch(images, holes, ids)
        out = np.empty(images.shape, dtype=np.float32)

        def fill_one(b: int) -> None:
            img, hole = images[b], holes[b]
            if not hole.any():
                out[b] = img.astype(np.float32) / 255.0
            elif hole.all():
                out[b] = ALL_HOLE_FILL
            else:
                out[b] = self._fill(np.ascontiguousarray(img), hole, None if ids is None else ids[b])

        n = self._n_workers(images.shape[0])
        if n == 1:
            for b in range(images.shape[0]):
                fill_one(b)
        else:
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"inpaintbench-{self.name}") as pool:
                list(pool.map(fill_one, range(images.shape[0])))  # list(): re-raise a worker's exception
        return out

    @staticmethod
    def _check_workers(workers: int | None) -> int | None:
        if workers is not None and int(workers) < 1:
            raise InputError(f"workers must be >= 1, got {workers}", "pass a positive integer, or omit it (auto)")
        return None if workers is None else int(workers)

    def _fill(self, image: np.ndarray, hole: np.ndarray, sample_id: str | None) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "all_hole_fill": ALL_HOLE_FILL, "deterministic": True,
                "workers": self.workers if self.thread_safe else 1}


class OpenCVInpainter(ClassicalInpainter):
    """``cv2.inpaint`` with the Telea (fast marching) or Navier–Stokes method."""

    def __init__(self, method: str = "telea", radius: float = 3.0, workers: int | None = None):
        import cv2

        self.workers = self._check_workers(workers)

        flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
        if method not in flags:
            raise InputError(f"unknown OpenCV inpainting method {method!r}", "use telea or ns")
        if not radius > 0:
            raise InputError(f"inpainting radius must be positive, got {radius}", "e.g. radius=3")
        self.name = method
        self.method = method
        self.radius = float(radius)
        self._flag = flags[method]
        self._cv2 = cv2

    def _fill(self, image: np.ndarray, hole: np.ndarray, sample_id: str | None) -> np.ndarray:
        mask = hole.astype(np.uint8) * 255  # OpenCV: non-zero = inpaint
        res = self._cv2.inpaint(image, mask, self.radius, self._flag)
        return res.astype(np.float32) / 255.0

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"implementation": f"cv2.inpaint(INPAINT_{self.method.upper()})", "radius": self.radius,
                  "opencv": self._cv2.__version__})
        return d


class BiharmonicInpainter(ClassicalInpainter):
    """``skimage.restoration.inpaint_biharmonic`` on float64 [0, 1], per channel."""

    name = "biharmonic"

    def __init__(self, split_into_regions: bool = False, workers: int | None = None):
        self.split_into_regions = bool(split_into_regions)
        self.workers = self._check_workers(workers)

    def _fill(self, image: np.ndarray, hole: np.ndarray, sample_id: str | None) -> np.ndarray:
        from skimage.restoration import inpaint_biharmonic

        res = inpaint_biharmonic(image.astype(np.float64) / 255.0, hole, channel_axis=-1,
                                 split_into_regions=self.split_into_regions)
        return np.clip(res, 0.0, 1.0).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        import skimage

        d = super().describe()
        d.update({"implementation": "skimage.restoration.inpaint_biharmonic(channel_axis=-1)",
                  "split_into_regions": self.split_into_regions, "scikit_image": skimage.__version__,
                  "output": "float, clipped to [0, 1]"})
        return d


class PatchMatchInpainter(ClassicalInpainter):
    """PatchMatch fill from the optional ``pypatchmatch`` package, seeded per sample."""

    name = "patchmatch"
    thread_safe = False  # the library's random seed is process-global

    def __init__(self, patch_size: int = 3, seed: int = 0):
        try:
            import patchmatch
        except ImportError as e:
            raise InputError("model 'patchmatch' needs the optional package pypatchmatch (Python >= 3.11)",
                             "pip install pypatchmatch") from e
        if not patchmatch.patchmatch_available:  # pragma: no cover - the wheel ships its library
            raise InputError("pypatchmatch is installed but its native library did not load",
                             "reinstall pypatchmatch from a wheel for this platform")
        if int(patch_size) < 1:
            raise InputError(f"patch_size must be >= 1, got {patch_size}", "e.g. patch_size=3")
        self.patch_size = int(patch_size)
        self.seed = int(seed)
        self._pm = patchmatch

    def _fill(self, image: np.ndarray, hole: np.ndarray, sample_id: str | None) -> np.ndarray:
        # The library's seed is process-global; set it right before each call so every sample starts
        # from its own seed regardless of what ran before.
        self._pm.set_random_seed(library_seed_32(self.seed, sample_id, image, hole))
        res = self._pm.inpaint(image, hole.astype(np.uint8) * 255, patch_size=self.patch_size)
        return np.asarray(res, dtype=np.uint8).astype(np.float32) / 255.0

    def describe(self) -> dict[str, Any]:
        import importlib.metadata

        d = super().describe()
        d.update({"implementation": "pypatchmatch patchmatch.inpaint", "patch_size": self.patch_size,
                  "seed": self.seed,
                  "seed_policy": "sha256(seed, sample id) -> uint32, set before each sample",
                  "pypatchmatch": importlib.metadata.version("pypatchmatch")})
        return d


def telea(radius: float = 3.0, workers: int | None = None) -> OpenCVInpainter:
    return OpenCVInpainter("telea", radius, workers)


def ns(radius: float = 3.0, workers: int | None = None) -> OpenCVInpainter:
    return OpenCVInpainter("ns", radius, workers)


def biharmonic(split_into_regions: bool = False, workers: int | None = None) -> BiharmonicInpainter:
    return BiharmonicInpainter(split_into_regions, workers)


def patchmatch(patch_size: int = 3, seed: int = 0) -> PatchMatchInpainter:
    return PatchMatchInpainter(patch_size, seed)
