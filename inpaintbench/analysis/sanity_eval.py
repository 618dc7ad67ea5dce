"""The meta-evaluation of `inpaintbench sanity`: score every degraded set, then ask each metric three questions.

For every metric and degradation (severities 1..4, see :mod:`inpaintbench.analysis.sanity`):

- **ρ (monotonicity)**: Spearman's ρ between severity and score, signed by the metric's direction
  (``higher_is_better`` in :mod:`inpaintbench.metrics.info`) so that +1 means "worse score with every
  step of damage". Per-image metrics: ρ of each image over its four severities, averaged over the
  images (within-image, so image difficulty does not dilute it); set metrics: ρ of the four set values.
- **ranking kept**: the share of images whose scores are strictly ordered with severity (set
  metrics: whether the four set values are).
- **detected at**: the smallest severity s ≥ 2 at which ``compare`` (the same function, Holm over
  all metrics, the bootstrap CI) calls the *mildest* degradation (severity 1) better than severity
  s on these images. The reference is severity 1, not the clean ground truth: every metric trivially
  tells any damage from a perfect copy (PSNR is capped, FID(x, x) = 0, so the paired differences all
  have one sign); the question a user has is whether it tells *more* damage from *less* at this N.
  A difference called the other way ("inverted at s") is reported as such.

The degraded sets are scored into run directories (``OUT/<degradation>-s<k>-<identity hash>``)
by :class:`inpaintbench.evaluation.Evaluation`, the loop behind ``run`` and ``score``; the same
command again reuses them.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from inpaintbench.analysis.sanity import DEGRADATIONS, DESCRIPTIONS, LEVELS, SEVERITIES, degrade_batch
from inpaintbench.errors import InputError
from inpaintbench.metrics.info import METRICS, is_higher_better

COLUMNS = ["metric", "degradation", "kind", "n", "rho", "kept", "detected_at", "inverted_at", "means", "note"]


@dataclass
class SanityResult:
    table: pd.DataFrame
    out_dir: Path
    n: int
    data: str
    masks: str
    metric_status: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def default_out(data: str, masks: str, resolution: int, limit: int | None) -> Path:
    from inpaintbench.results import sanitize_sample_id

    ds = sanitize_sample_id(data.replace("folder:", ""))[-40:]
    ms = sanitize_sample_id(masks)[-40:]
    return Path("results/sanity") / (f"{ds}__{ms}__r{resolution}" + (f"-limit{limit}" if limit else ""))


def score_degraded_sets(config: Any, out_dir: Path, degradations: Sequence[str], progress: Any | None = None,
                        argv: Sequence[str] | None = None) -> dict[tuple[str, int], Path]:
    """Score every (degradation, severity) set with the metric suite; returns their run directories.

    ``config`` is a :class:`inpaintbench.runner.RunConfig` (data, masks, metrics, weights, seed).
    """
    from inpaintbench import distributed
    from inpaintbench.datasets import load_dataset
    from inpaintbench.env_info import resolve_device
    from inpaintbench.evaluation import BatchResult, Evaluation, base_manifest
    from inpaintbench.identity import identity_hash, metric_identity
    from inpaintbench.masks import resolve_mask_set
    from inpaintbench.runner import _describe, batches_of, build_suite, mask_problem, plan_samples

    device = resolve_device(config.device)
    ctx = distributed.DistContext(0, 1, 0)  # one process: the sets are small (no torchrun sharding here)
    dataset = load_dataset(config.dataset, resolution=config.resolution, resize_policy=config.resize_policy,
                           alpha=config.alpha)
    masks = resolve_mask_set(config.masks)
    samples = plan_samples(dataset.ids, masks.ids, config.limit)
    batches = batches_of(samples, config.batch_size)
    suite = build_suite(config, device, reference_ids=[s.image_id for s in samples],
                        resolution_policy=f"{dataset.digest}|{config.resolution}|{config.resize_policy}")
    metrics_description = _describe(suite)
    out: dict[tuple[str, int], Path] = {}
    for name in degradations:
        for sev in SEVERITIES:
            identity = {
                "kind": "sanity",
                "config": config.resume_key(),
                "model": {"name": f"sanity:{name}", "degradation": name, "severity": sev,
                          "level": LEVELS[name][sev - 1], "description": DESCRIPTIONS[name]},
                "data": {"dataset_digest": dataset.digest, "resolution": config.resolution,
                         "resize_policy": config.resize_policy, "alpha": config.alpha, "masks_digest": masks.digest,
                         "limit": config.limit, "n_samples": len(samples)},
                "metrics": metric_identity(metrics_description, config.preset),
            }
            run_hash = identity_hash(identity)
            run_dir = Path(out_dir) / f"{name}-s{sev}-{run_hash}"
            manifest = base_manifest(identity, device, ctx, argv, run_id=f"sanity-{name}-s{sev}-{run_hash}")
            manifest["dataset"] = {**dataset.describe(), "spec": config.dataset}
            manifest["masks"] = {**masks.describe(), "spec": config.masks}
            manifest["comparable"] = config.limit is None
            manifest["model"] = {"name": f"{name}@{sev}", "kind": "sanity degradation of the ground truth",
                                 "degradation": name, "severity": sev}
            manifest["metrics"] = metrics_description
            suite.reset()
            ev = Evaluation(run_dir, identity, manifest, samples, batches, suite, list(suite.metrics), ctx,
                            save_images=False, execution={"batch_size": config.batch_size})
            out[(name, sev)] = run_dir
            if ev.finished:
                continue
            todo = ev.todo()
            task = progress.add_task(f"sanity {name} s{sev}", total=len(samples)) if progress is not None else None

            def produced(todo: set[int] = todo, name: str = name, sev: int = sev):
                for b, batch in enumerate(batches):
                    if b not in todo:
                        continue
                    gt = np.stack([dataset[s.image_index][1] for s in batch])
                    holes = np.stack([masks.get(s.mask_index) for s in batch])
                    if holes.shape[1:] != gt.shape[1:3]:
                        raise InputError(f"mask set {config.masks} is {holes.shape[2]}x{holes.shape[1]} but images "
                                         f"are {gt.shape[2]}x{gt.shape[1]}",
                                         "use a mask set of the evaluation resolution (--resolution)")
                    t0 = time.perf_counter()
                    pred = degrade_batch(name, gt, holes, sev, config.seed, [s.sample_id for s in batch])
                    yield b, BatchResult(gt, holes, pred, [mask_problem(h) for h in holes], time.perf_counter() - t0)

            def advance(n: int, task: Any = task) -> None:
                if progress is not None:
                    progress.advance(task, n)

            ev.consume(produced(), advance)
            ev.finalize({"degradation": name, "severity": sev})
    return out


def _spearman_rows(values: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of ``values`` [n, k] against 1..k (NaN for constant rows)."""
    from scipy.stats import rankdata

    r = rankdata(values, axis=1)
    s = np.arange(1, values.shape[1] + 1, dtype=np.float64)
    rc = r - r.mean(axis=1, keepdims=True)
    sc = s - s.mean()
    den = np.sqrt((rc * rc).sum(axis=1) * (sc * sc).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rc * sc).sum(axis=1) / den


def meta_evaluate(run_dirs: dict[tuple[str, int], Path], n_boot: int = 1000, set_boot: int = 200,
                  ids_boot: int = 50, alpha: float = 0.05, seed: int = 0,
                  on_compare: Callable[[], None] | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table of the module docstring from the scored sets; also the metric status of the suite."""
    from inpaintbench.analysis.compare import compare_runs
    from inpaintbench.analysis.load import load_run

    runs = {key: load_run(p) for key, p in run_dirs.items()}
    first = next(iter(runs.values()))
    status = dict(first.manifest.get("metric_status", {}))
    per_image = [m for m in first.per_image_metrics]
    set_names = [m for m in METRICS if not METRICS[m].per_image and (first.set_metric(m) or {}).get("status") == "ok"]
    records: list[dict[str, Any]] = []
    for name in dict.fromkeys(k[0] for k in runs):
        sev_runs = [runs[(name, s)] for s in SEVERITIES]
        verdicts: dict[int, dict[str, str]] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s, r in zip(SEVERITIES[1:], sev_runs[1:], strict=True):
                c = compare_runs(sev_runs[0], r, n_boot=n_boot, set_n_boot=set_boot, ids_n_boot=ids_boot,
                                 alpha=alpha, seed=seed)
                verdicts[s] = dict(zip(c.table["metric"], c.table["verdict"], strict=True))
                if on_compare is not None:
                    on_compare()
        for m in per_image + set_names:
            sign = -1.0 if is_higher_better(m) else 1.0  # damage score: grows with damage for a good metric
            det = [s for s in SEVERITIES[1:] if verdicts[s].get(m) == "A better"]
            inv = [s for s in SEVERITIES[1:] if verdicts[s].get(m) == "B better"]
            rec: dict[str, Any] = {"metric": m, "degradation": name, "detected_at": det[0] if det else None,
                                   "inverted_at": inv[0] if inv else None, "note": ""}
            if m in per_image:
                ok = np.ones(len(sev_runs[0].rows), dtype=bool)
                cols = []
                for r in sev_runs:
                    v = r.rows[m].to_numpy(np.float64)
                    ok &= (r.rows["status"].to_numpy() == "ok") & np.isfinite(v)
                    cols.append(v)
                vals = np.stack(cols, axis=1)[ok]
                rho = _spearman_rows(sign * vals)
                kept = np.all(np.diff(sign * vals, axis=1) > 0, axis=1)
                rec.update(kind="per-image", n=int(ok.sum()), rho=float(np.nanmean(rho)) if np.isfinite(rho).any()
                           else math.nan, kept=float(kept.mean()) if kept.size else math.nan,
                           means=[float(x) for x in vals.mean(axis=0)] if len(vals) else [math.nan] * len(SEVERITIES))
                if np.isnan(rho).any():
                    rec["note"] = f"{int(np.isnan(rho).sum())} image(s) with the same score at every severity"
            else:
                vals = np.array([(r.set_metric(m) or {}).get("value", math.nan) for r in sev_runs], dtype=np.float64)
                rho = _spearman_rows((sign * vals)[None])[0] if np.isfinite(vals).all() else math.nan
                rec.update(kind="set", n=int(first.set_metric(m).get("n", 0) or 0), rho=float(rho),
                           kept=float(np.all(np.diff(sign * vals) > 0)), means=[float(x) for x in vals])
            records.append(rec)
    return pd.DataFrame.from_records(records, columns=COLUMNS), status


def check_degradations(names: Sequence[str] | None) -> list[str]:
    if not names:
        return list(DEGRADATIONS)
    bad = [n for n in names if n not in DEGRADATIONS]
    if bad:
        raise InputError(f"unknown degradation(s) {', '.join(bad)}", f"use some of: {', '.join(DEGRADATIONS)}")
    return list(dict.fromkeys(names))
