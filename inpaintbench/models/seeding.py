"""Per-sample seeds of stochastic models, so that a sample's result depends neither on its batch nor
on the number of processes (one definition for every model family)."""

from __future__ import annotations

import hashlib

import numpy as np


def sample_seed(seed: int, sample_id: str) -> int:
    """63-bit seed of one sample from (run seed, sample id), for a ``torch.Generator`` (MAT, diffusers).

    The first 8 bytes (little endian) of ``sha256("mat-v1|<seed>|<sample id>")``: stable across
    machines, Python versions and batchings. The tag stays "mat-v1" so existing runs keep their seeds.
    """
    digest = hashlib.sha256(f"mat-v1|{int(seed)}|{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def content_id(image: np.ndarray, hole: np.ndarray) -> str:
    """A sample id from its pixels and hole, for callers that pass no ids."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(image).tobytes())
    h.update(np.packbits(hole).tobytes())
    return "sha256:" + h.hexdigest()


def library_seed_32(seed: int, sample_id: str | None, image: np.ndarray, hole: np.ndarray) -> int:
    """A 32-bit seed per sample for libraries that take only 32 bits (PatchMatch's global seed).

    From ``(seed, id)`` when the harness gives ids; otherwise from ``(seed, image bytes, hole bytes)``.
    """
    h = hashlib.sha256(f"{seed}\0".encode())
    if sample_id is not None:
        h.update(b"id\0" + sample_id.encode())
    else:
        h.update(b"px\0" + image.tobytes() + np.packbits(hole).tobytes())
    return int.from_bytes(h.digest()[:4], "little")
