"""Content hashes of masks and mask sets.

Hashes are taken over the DECODED mask, not the PNG bytes, so re-encoding a PNG (another zlib level
or encoder version) never changes an identity:

* mask sha256: ``sha256(hole.astype(uint8).tobytes())``, row-major ``H x W`` bytes, 1 = hole, 0 = keep;
* set digest: ``"sha256:" + sha256`` of the UTF-8 lines ``"<id> <H>x<W> <mask sha256>\\n"`` in set order.

The digest covers content, size and order only: the same masks give the same digest whatever
protocol label or seed a manifest carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

MASK_SHA256_OF = "decoded mask as row-major uint8 bytes (1 = hole, 0 = keep), H x W"
DIGEST_OF = "sha256 over lines '<id> <H>x<W> <mask sha256>\\n' in set order"


def mask_sha256(hole: np.ndarray) -> str:
    """Hex sha256 of a bool ``[H, W]`` hole array (True = hole)."""
    if hole.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {hole.shape}")
    return hashlib.sha256(np.ascontiguousarray(hole, dtype=np.uint8).tobytes()).hexdigest()


def set_digest(entries: Iterable[tuple[str, tuple[int, int], str]]) -> str:
    """Digest of a mask set from ``(id, (H, W), mask sha256)`` entries in order."""
    h = hashlib.sha256()
    for mask_id, (height, width), sha in entries:
        h.update(f"{mask_id} {height}x{width} {sha}\n".encode())
    return "sha256:" + h.hexdigest()


def hole_ratio(hole: np.ndarray) -> float:
    """Fraction of hole pixels, computed exactly as ``count / size`` (so it round-trips via JSON)."""
    return int(np.count_nonzero(hole)) / int(hole.size)
