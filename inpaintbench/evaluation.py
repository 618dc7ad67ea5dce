"""The scoring loop shared by `run` and `score`: batches in, a resumable, self-contained run directory out.

A producer (the model harness in :mod:`inpaintbench.runner`, or the file reader in
:mod:`inpaintbench.scoring`) yields :class:`BatchResult` objects; :class:`Evaluation` scores them with
the metric suite, writes one chunk per batch (the unit of resume), and on rank 0 gathers the chunks,
computes the set metrics and writes ``per_image.parquet``, ``summary.json``, both feature sets and the
manifest with the run identity and comparison key (:mod:`inpaintbench.identity`).
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench import distributed
from inpaintbench.env_info import device_description, package_versions
from inpaintbench.errors import InputError
from inpaintbench.identity import (
    diff_paths,
    extractor_key,
    hole_sha256,
    identity_hash,
    image_sha256,
    samples_digest,
)
from inpaintbench.masks.bins import hole_ratio_bin
from inpaintbench.metrics.info import feature_files
from inpaintbench.results import (
    FEATURES,
    IMAGES,
    MANIFEST,
    PER_IMAGE,
    RUN_SCHEMA,
    SCHEMA_VERSION,
    SUMMARY,
    PartialStore,
    atomic_write_json,
    atomic_write_npy,
    atomic_write_parquet,
    read_json,
    rows_frame,
    sanitize_sample_id,
)
from inpaintbench.summary import summarize


@dataclass(frozen=True)
class Sample:
    index: int
    image_index: int
    mask_index: int
    image_id: str
    mask_id: str

    @property
    def sample_id(self) -> str:
        return f"{self.image_id}|{self.mask_id}"


@dataclass
class BatchResult:
    """What a batch producer hands to the scoring loop."""

    gt: np.ndarray  # uint8 [B,H,W,3]
    holes: np.ndarray  # bool [B,H,W]
    pred: np.ndarray  # uint8 [B,H,W,3], composited and quantised
    errors: list[str | None]  # per sample: None = ok
    seconds: float
    masked_input: np.ndarray | None = None
    #: per sample: the ids of the ground-truth and hole arrays actually scored (see identity.py)
    hashes: list[tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.hashes is None:
            self.hashes = [(image_sha256(g), hole_sha256(h)) for g, h in zip(self.gt, self.holes, strict=True)]


@dataclass
class RunOutcome:
    run_dir: Path
    manifest: dict[str, Any]
    summary: dict[str, Any]
    rows: pd.DataFrame
    resumed_batches: int = 0
    computed_batches: int = 0


class Evaluation:
    """Scores batches from any producer into a resumable run directory.

    ``identity`` is everything that determines the numbers (see :mod:`inpaintbench.identity`);
    ``execution`` is what only has to match to resume an unfinished directory (the batch layout of
    its chunks). A finished directory with the same identity is reused; one with another identity
    is refused, naming what changed, unless ``overwrite``.
    """

    def __init__(self, run_dir: Path, identity: dict[str, Any], manifest: dict[str, Any],
                 samples: list[Sample], batches: list[list[Sample]], suite: Any, metric_names: list[str],
                 ctx: distributed.DistContext, save_images: bool, overwrite: bool = False,
                 execution: dict[str, Any] | None = None):
        self.run_dir = Path(run_dir)
        # Compare as they look after a JSON round trip (tuples become lists, etc.).
        self.identity = json.loads(json.dumps(identity, default=str))
        self.execution = json.loads(json.dumps(execution or {}, default=str))
        self.manifest = manifest
        self.manifest["identity"] = self.identity
        self.manifest["identity_hash"] = identity_hash(self.identity)
        self.manifest["execution"] = self.execution
        self.samples = samples
        self.batches = batches
        self.suite = suite
        self.metric_names = metric_names
        self.ctx = ctx
        self.save_images = save_images
        self.partial = PartialStore(self.run_dir)
        self._recompute_all = False
        self._prepare(overwrite)
        if save_images and self._complete() and not (self.run_dir / IMAGES).is_dir():
            # A finished run without its images (run earlier without --save-images): recompute it with
            # the same identity, so the same numbers, and write the images this time. The old files
            # stay until the new ones replace them atomically.
            warnings.warn(f"{self.run_dir}: finished without saved images; recomputing it to save them",
                          UserWarning, stacklevel=3)
            self._recompute_all = True

    def _prepare(self, overwrite: bool) -> None:
        """Refuse to mix identities in one directory; otherwise create it or resume it."""
        manifest_path = self.run_dir / MANIFEST
        if manifest_path.exists():
            old = read_json(manifest_path)
            problem = self._mismatch(old)
            if problem:
                if not overwrite:
                    raise InputError(f"{self.run_dir} holds a run with a different {problem}",
                                     "pass another --out, or --overwrite to replace it (its numbers are "
                                     "not the ones this command would compute)")
                if self.ctx.is_main:
                    shutil.rmtree(self.run_dir)
        distributed.barrier(self.ctx)
        if self.ctx.is_main and not manifest_path.exists():
            atomic_write_json(manifest_path, self.manifest)
        distributed.barrier(self.ctx)

    def _mismatch(self, old: dict[str, Any]) -> str | None:
        """What keeps ``old`` from being this run, in words; None when it is this run."""
        if "identity" not in old:
            return "identity (written by an older inpaintbench that did not record weights hashes)"
        changed = diff_paths(old["identity"], self.identity)
        if changed:
            shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
            return f"configuration (differs in: {shown})"
        finished = (self.run_dir / SUMMARY).exists() and (self.run_dir / PER_IMAGE).exists()
        if not finished and old.get("execution", {}) != self.execution:
            changed = diff_paths(old.get("execution", {}), self.execution)
            return (f"chunk layout of an unfinished run (differs in: {', '.join(changed)}); resume it with "
                    "the same batch size")
        return None

    def _complete(self) -> bool:
        return (self.run_dir / SUMMARY).exists() and (self.run_dir / PER_IMAGE).exists()

    @property
    def finished(self) -> bool:
        return self._complete() and not self._recompute_all

    def my_batches(self) -> set[int]:
        return {b for b in range(len(self.batches)) if b % self.ctx.world_size == self.ctx.rank}

    def todo(self) -> set[int]:
        if self._recompute_all:
            return self.my_batches()
        return self.my_batches() - self.partial.done_batches()

    def consume(self, produced: Iterator[tuple[int, BatchResult]], on_batch: Callable[[int], None]) -> int:
        count = 0
        for b, result in produced:
            self._score_batch(b, result)
            on_batch(len(self.batches[b]))
            count += 1
        return count

    def _score_batch(self, b: int, result: BatchResult) -> None:
        batch = self.batches[b]
        ok = np.array([e is None for e in result.errors])
        per_image: dict[str, np.ndarray] = {}
        features: dict[str, np.ndarray] = {}
        if ok.any():
            out = self.suite.update(result.pred[ok], result.gt[ok], result.holes[ok],
                                    ids=[s.image_id for s, good in zip(batch, ok, strict=True) if good])
            per_image = out.per_image
            # Features aligned with the batch's rows; failed rows are NaN (excluded downstream).
            for kind, array in out.features.items():
                aligned = np.full((len(batch), array.shape[1]), np.nan, dtype=np.float32)
                aligned[ok] = array
                features[kind] = aligned
        rows = []
        k = 0
        for i, s in enumerate(batch):
            ratio = float(result.holes[i].mean())
            row: dict[str, Any] = {
                "sample_id": s.sample_id, "image_id": s.image_id, "mask_id": s.mask_id,
                "image_sha256": result.hashes[i][0], "hole_sha256": result.hashes[i][1],
                "hole_ratio": ratio, "bin": hole_ratio_bin(ratio),
                "status": "ok" if ok[i] else "failed", "error": result.errors[i],
                "seconds": result.seconds / len(batch),
            }
            if ok[i]:
                for name, values in per_image.items():
                    row[name] = float(values[k])
                k += 1
            rows.append(row)
        if self.save_images:
            self._save_images(batch, result, ok)
        self.partial.write(b, rows_frame(rows, self.metric_names), features)

    def _save_images(self, batch: list[Sample], result: BatchResult, ok: np.ndarray) -> None:
        from inpaintbench.images import write_png

        folder = self.run_dir / IMAGES
        for i, s in enumerate(batch):
            stem = sanitize_sample_id(s.sample_id)
            if ok[i]:
                write_png(folder / f"{stem}_pred.png", result.pred[i])
            if result.masked_input is not None:
                write_png(folder / f"{stem}_input.png", result.masked_input[i])
            write_png(folder / f"{stem}_mask.png", np.where(result.holes[i], 255, 0).astype(np.uint8))

    def finalize(self, timings: dict[str, float]) -> RunOutcome | None:
        """Gather every rank's chunks on rank 0, compute set metrics and write the final files."""
        local = {b: self._read_chunk(b) for b in sorted(self.my_batches())}
        gathered = distributed.gather_to_main(local, self.ctx)
        if not self.ctx.is_main:
            distributed.barrier(self.ctx)
            return None
        chunks: dict[int, tuple[pd.DataFrame, dict[str, np.ndarray]]] = {}
        for part in gathered or []:
            chunks.update(part)
        missing = [b for b in range(len(self.batches)) if b not in chunks]
        if missing:
            raise RuntimeError(f"batches {missing[:5]} were never scored")
        order = sorted(chunks)
        rows = pd.concat([chunks[b][0] for b in order], ignore_index=True)
        feats = self._aligned_features(chunks, order, rows)
        ok = (rows["status"] == "ok").to_numpy()
        ok_ids = rows.loc[ok, "image_id"].tolist()
        fake = feats["fake"][ok] if "fake" in feats else None
        real = feats["real"][ok] if "real" in feats else None
        embeddings = {}
        for space in getattr(self.suite, "embedders", {}):
            kf, kr = feature_files(space)
            if kf in feats and kr in feats:
                embeddings[space] = (feats[kf][ok], feats[kr][ok])
        if embeddings:
            set_metrics = self.suite.compute_from_features(fake, real, ok_ids, embeddings=embeddings)
        else:
            set_metrics = self.suite.compute_from_features(fake, real, ok_ids)
        set_metrics = {k: _as_dict(v) for k, v in set_metrics.items()}
        status = dict(getattr(self.suite, "status", {}))
        unavailable = {m: status[m] for m in self.metric_names if status.get(m, "ok") != "ok"}
        # An unavailable per-image metric gets no column at all rather than a column of NaN.
        rows = rows.drop(columns=[m for m in unavailable if m in rows.columns])
        scored = [m for m in self.metric_names if m not in unavailable]
        summary = summarize(rows, scored, set_metrics, seed=int(self.manifest.get("seed", 0)))
        summary["unavailable"] = unavailable
        # The run directory is self-contained: both feature sets of every extractor are saved
        # (Inception as fake/real.npy, cached reals included; DINOv2/CLIP as <space>_fake/_real.npy),
        # rows aligned with per_image.parquet (NaN for failed samples), so compare/report can
        # bootstrap every set metric for every pair of runs.
        for kind, array in feats.items():
            atomic_write_npy(self.run_dir / FEATURES / f"{kind}.npy", array)
        atomic_write_parquet(self.run_dir / PER_IMAGE, rows)
        atomic_write_json(self.run_dir / SUMMARY, summary)
        self.manifest["finished"] = _now()
        self.manifest["timings"] = timings
        self.manifest["metric_status"] = status
        self.manifest["comparison"] = comparison_key(rows, self.manifest.get("metrics", {}))
        atomic_write_json(self.run_dir / MANIFEST, self.manifest)
        self.partial.clear()
        distributed.barrier(self.ctx)
        return RunOutcome(self.run_dir, self.manifest, summary, rows)

    def _aligned_features(self, chunks: dict[int, tuple[pd.DataFrame, dict[str, np.ndarray]]],
                          order: list[int], rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """fake/real features with one row per per-image row (NaN where a sample failed).

        Reals that came from the reference cache are looked up by image id, so every run directory
        holds its own copy whatever model ran first.
        """
        feats: dict[str, np.ndarray] = {}
        for kind in ("fake", "real", *self._extra_kinds()):
            if any(kind in chunks[b][1] for b in order):
                feats[kind] = np.concatenate([chunks[b][1][kind] for b in order])
        if "fake" in feats and "real" not in feats:
            ok = (rows["status"] == "ok").to_numpy()
            cached = self.suite.reference_features(rows.loc[ok, "image_id"].tolist())
            if cached is not None:
                real = np.full_like(feats["fake"], np.nan)
                real[ok] = cached
                feats["real"] = real
        return feats


    def _extra_kinds(self) -> list[str]:
        """Feature files of the DINOv2/CLIP extractors (``<space>_fake``/``<space>_real``)."""
        return list(getattr(self.suite, "feature_kinds", []) or [])

    def _read_chunk(self, b: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """A finished batch's rows and features, the DINOv2/CLIP kinds included (PartialStore.read
        knows only Inception's fake/real)."""
        df, feats = self.partial.read(b)
        for kind in self._extra_kinds():
            if kind not in feats:
                path = self.partial.features_path(b, kind)
                if path.exists():
                    feats[kind] = np.load(path, allow_pickle=False)
        return df, feats


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    from dataclasses import asdict as _asdict
    from dataclasses import is_dataclass

    if is_dataclass(value):
        return _asdict(value)
    return dict(vars(value))


def comparison_key(rows: pd.DataFrame, metrics_description: dict[str, Any]) -> dict[str, Any]:
    """What analysis must match before ranking two runs together: the scored samples (ids, image and
    hole hashes, identical for `run` and `score`) and the Inception network behind the set metrics."""
    digest = samples_digest(zip(rows["sample_id"].astype(str), rows["image_sha256"].astype(str),
                                rows["hole_sha256"].astype(str), strict=True))
    return {"samples_digest": digest, "n_samples": int(len(rows)),
            "feature_extractor": extractor_key(metrics_description)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def base_manifest(identity: dict[str, Any], device: str, ctx: distributed.DistContext,
                  argv: Sequence[str] | None, run_id: str) -> dict[str, Any]:
    config = identity.get("config", {})
    return {
        "schema": RUN_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "command": list(argv if argv is not None else sys.argv),
        "created": _now(),
        "finished": None,
        "config": config,
        "seed": config.get("seed", 0),
        "device": device,
        "device_info": device_description(device),
        "world_size": ctx.world_size,
        "versions": package_versions(),
        "conventions": {
            "hole_polarity": "bool True = hole inside inpaintbench",
            "pairing": "image i <-> mask (i mod n_masks)",
            "composite": "harness composites known pixels back before scoring",
            "quantisation": "round half to even, clamp to [0,255], once, before scoring",
        },
    }
