"""Per-mask random streams: every mask is a pure function of (protocol, version, seed, index).

Seeding each mask from its own :class:`numpy.random.SeedSequence` means a mask never depends on the
worker count, on the order masks are produced in, or on anything drawn before it (unlike the MAT and
LaMa scripts, which draw from the global ``np.random`` state).
"""

from __future__ import annotations

import hashlib

import numpy as np


def protocol_key(name: str) -> int:
    """Stable 64-bit integer for a protocol name (Python's ``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def mask_rng(protocol: str, version: int, seed: int, index: int) -> np.random.Generator:
    """The private generator of mask ``index`` of ``protocol`` version ``version`` under ``seed``."""
    if seed < 0 or index < 0 or version < 0:
        raise ValueError(f"seed, index and version must be >= 0, got {seed}, {index}, {version}")
    entropy = [protocol_key(protocol), int(version), int(seed), int(index)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
