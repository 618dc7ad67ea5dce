"""Run identity: everything that determines a run's numbers, and the sample identity shared by
`run`, `score` and `export`.

Two questions decide whether numbers can be trusted:

* *Is this directory's result the one I asked for?* The run identity holds the model's own
  description (weights sha256, every factory option), the data (dataset digest with resolution,
  resize policy and alpha handling, mask-set digest, limit), and every metric variant (feature
  extractor and its weights' hash, LPIPS weights, preset, seed, which metrics were available). Its
  hash names the default output directory and is the resume key: a changed checkpoint behind the same
  name or path gets a new directory, or, with an explicit ``--out``, a refusal that names what changed.
* *Are these two runs on the same samples?* Each per-image row carries the sha256 of the ground
  truth it was scored against and of its hole mask, computed the same way on both paths (``run``
  from the dataset and mask set, ``score`` from files). The comparison key is a digest over
  (sample id, image hash, mask hash) plus the feature extractor: analysis ranks two runs together
  only when their keys match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: keys of a model's or metric's ``describe()`` that record where or how fast something ran, not
#: what it computes; left out of the identity so that moving a run to another machine resumes it
_NOT_IDENTITY = frozenset({"device", "workers", "path", "root", "hit", "status", "verified", "found"})


def _canonical(obj: Any) -> Any:
    """JSON-stable form: tuples as lists, paths as strings, numpy scalars as Python numbers."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_default))


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _strip(obj: Any) -> Any:
    """Drop the volatile keys (see :data:`_NOT_IDENTITY`) at every level."""
    if isinstance(obj, Mapping):
        return {k: _strip(v) for k, v in obj.items() if k not in _NOT_IDENTITY}
    if isinstance(obj, (list, tuple)):
        return [_strip(v) for v in obj]
    return obj


def identity_hash(identity: Mapping[str, Any], length: int = 12) -> str:
    """Short, stable hash of an identity (sorted-key JSON, sha256)."""
    text = json.dumps(_canonical(identity), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def metric_identity(suite_description: Mapping[str, Any], preset: str | None) -> dict[str, Any]:
    """What the metric suite contributes: selection, availability, variants and network weights."""
    d = dict(suite_description)
    status = d.get("status", {})
    return _canonical({
        "selected": list(d.get("metrics", [])),
        "available": sorted(m for m, s in status.items() if s == "ok"),
        "variants": d.get("variants", {}),
        "feature_extractor": _strip(d.get("feature_extractor")),
        "lpips": _strip(d.get("lpips", {})),
        # issue-12 networks: each one's weights id + sha256 (a changed network never resumes old
        # numbers); keys appear only when the metric is selected, so older identities are unchanged
        **{k: _strip(d[k]) for k in ("embedders", "dists", "lpips_hole_margin_px", "set_n_boot")
           if d.get(k) not in (None, {})},
        "fid_n_boot": d.get("fid_n_boot"),
        "kid": d.get("kid"),
        "seed": d.get("seed"),
        "preset": preset,
    })


def model_identity(name: str, options: Mapping[str, Any], description: Mapping[str, Any]) -> dict[str, Any]:
    """The model's name, every option it was built with, and its own description (weights sha256...)."""
    return _canonical({"name": name, "options": dict(options), "describe": _strip(dict(description))})


def extractor_key(suite_description: Mapping[str, Any]) -> str | None:
    """``name@sha256`` of the Inception network behind the set metrics, or None when none ran."""
    fx = suite_description.get("feature_extractor") or {}
    if not fx or fx.get("available") is False:
        return None
    weights = fx.get("weights") or {}
    return f"{fx.get('extractor')}@{str(weights.get('sha256') or '?')[:16]}"


def diff_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ (for 'differs in: model.describe.weights.sha256')."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out.extend(diff_paths(old[key], new[key], path))
        return out
    return [] if old == new else [prefix or "(whole)"]


def image_sha256(image_u8: np.ndarray) -> str:
    """sha256 of a uint8 [H,W,3] image as scored (shape first, then the C-order bytes)."""
    arr = np.ascontiguousarray(image_u8, dtype=np.uint8)
    h = hashlib.sha256(f"u8{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def hole_sha256(hole: np.ndarray) -> str:
    """sha256 of a bool [H,W] hole mask (True = hole), bit-packed."""
    arr = np.ascontiguousarray(hole, dtype=bool)
    h = hashlib.sha256(f"hole{arr.shape}".encode())
    h.update(np.packbits(arr, axis=None).tobytes())
    return h.hexdigest()


def samples_digest(rows: Iterable[tuple[str, str, str]]) -> str:
    """Digest of the evaluated samples: (sample id, image sha256, hole sha256), sorted by id.

    `run` and `score` compute it the same way from what they scored, so a `score` of files written
    by `inpaintbench export` lands in the same comparison group as `run` on those samples.
    """
    h = hashlib.sha256(b"inpaintbench-samples-digest-v1\n")
    for sample_id, img, hole in sorted(rows):
        h.update(f"{sample_id}\0{img}\0{hole}\n".encode())
    return h.hexdigest()
