"""On-disk cache of reference-set (ground-truth) Inception features.

Why: a benchmark scores many models on the same images; the real-image features are the same
for all of them, so the second model only extracts its own (fake) features.

Key = sha256 of (digest of the ordered image-id list, extractor name, extractor weights sha256,
resolution policy, feature dim, format version). Masks are not in the key: the pairs are
(image i, mask i) and ground-truth features depend on image i only; the id order is kept so that
P-IDS, which needs real_i aligned with fake_i, can pick rows by id.

Layout: ``<root>/<key>.npy`` (float32 [N, D]) + ``<key>.json`` (ids and provenance). Both are
written atomically (temp file + ``os.replace``) and the json, written last, is the commit
marker: an entry without its json does not exist.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.weights import inpaintbench_home

CACHE_FORMAT = 1


def ids_digest(image_ids: Sequence[str]) -> str:
    """sha256 of the ordered id list (one id per line)."""
    h = hashlib.sha256()
    for i in image_ids:
        s = str(i)
        if "\n" in s:
            raise ValueError(f"image id {s!r} contains a newline")
        h.update(s.encode("utf-8") + b"\n")
    return h.hexdigest()


def reference_key(image_ids: Sequence[str], extractor: str, weights_sha256: str, resolution_policy: str,
                  feature_dim: int = 2048, dataset_digest: str | None = None) -> str:
    """Cache key for the features of ``image_ids`` (in this order) under one extractor."""
    payload = {
        "format": CACHE_FORMAT, "ids": dataset_digest or ids_digest(image_ids), "extractor": extractor,
        "weights_sha256": weights_sha256, "resolution_policy": resolution_policy, "dim": feature_dim,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CachedFeatures:
    ids: list[str]
    features: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def rows_for(self, ids: Sequence[str]) -> np.ndarray:
        """Features for ``ids`` in that order (KeyError naming the first unknown id)."""
        index = {k: i for i, k in enumerate(self.ids)}
        try:
            return self.features[[index[str(i)] for i in ids]]
        except KeyError as e:
            raise KeyError(f"image id {e.args[0]!r} is not in the cached reference set") from None


def _atomic_write_bytes(path: Path, write: Any) -> None:
    """``write(file)`` into memory, then the project's one atomic write (:mod:`inpaintbench.atomic`)."""
    import io

    from inpaintbench.atomic import atomic_write_bytes

    buf = io.BytesIO()
    write(buf)
    atomic_write_bytes(path, buf.getvalue())


class FeatureCache:
    """Reference features by key; default root ``$INPAINTBENCH_HOME/features``."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root).expanduser() if root else inpaintbench_home() / "features"

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npy", self.root / f"{key}.json"

    def __contains__(self, key: str) -> bool:
        npy, js = self.paths(key)
        return npy.is_file() and js.is_file()

    def load(self, key: str) -> CachedFeatures | None:
        """The entry, or None when absent or unreadable (a broken entry is treated as a miss)."""
        npy, js = self.paths(key)
        try:
            meta = json.loads(js.read_text())
            feats = np.load(npy, allow_pickle=False)
        except (OSError, ValueError):
            return None
        ids = [str(i) for i in meta.get("ids", [])]
        if feats.ndim != 2 or feats.shape[0] != len(ids) or meta.get("rows") != len(ids):
            return None
        return CachedFeatures(ids, feats, meta)

    def save(self, key: str, ids: Sequence[str], features: np.ndarray,
             meta: dict[str, Any] | None = None) -> Path:
        feats = np.ascontiguousarray(features, dtype=np.float32)
        ids = [str(i) for i in ids]
        if feats.ndim != 2 or feats.shape[0] != len(ids):
            raise ValueError(f"features {feats.shape} do not match {len(ids)} ids")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate image ids in a reference set")
        self.root.mkdir(parents=True, exist_ok=True)
        npy, js = self.paths(key)
        _atomic_write_bytes(npy, lambda f: np.save(f, feats, allow_pickle=False))
        record = dict(meta or {})
        record.update(key=key, ids=ids, rows=len(ids), dim=int(feats.shape[1]), format=CACHE_FORMAT,
                      ids_digest=ids_digest(ids))
        _atomic_write_bytes(js, lambda f: f.write(json.dumps(record, indent=1).encode()))
        return npy
