"""The set-metric inputs of a comparison: which set metrics two runs can be tested on, the shared
samples' features in each feature space (Inception, DINOv2, CLIP), each run's KID settings, and why a
metric cannot be tested. Pure functions over :class:`~inpaintbench.analysis.load.Run`; used by
:mod:`inpaintbench.analysis.compare` and :mod:`inpaintbench.analysis.power_report`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inpaintbench.analysis.load import SET_METRICS, Run
from inpaintbench.analysis.stats import KIDSettings
from inpaintbench.errors import InputError


def space_features_dir(run: Run, space: str) -> Path | None:
    """The run's ``features/`` folder when it holds both arrays of ``space``, else None."""
    return run.features_dir_for(space)


def load_space_features(run: Run, space: str) -> tuple[np.ndarray, np.ndarray]:
    """(fake, real) features of one space, float64, in the run's row order."""
    return run.load_features(space)


def _set_metrics_to_test(a: Run, b: Run) -> list[str]:
    """Set metrics either summary lists; FID and KID also whenever both runs saved features."""
    names = [m for m in SET_METRICS if a.set_metric(m) is not None or b.set_metric(m) is not None]
    if a.features_dir is not None and b.features_dir is not None:
        names = [m for m in SET_METRICS if m in names or m in ("fid", "kid")]
    return names


def _kid_settings(run: Run) -> KIDSettings:
    """The run's KID subsets and seed (summary ``set_metrics.kid.extra``, manifest ``seed``); the
    runner's defaults where a writer did not record them."""
    entry = run.set_metric("kid") or {}
    extra = entry.get("extra") if isinstance(entry.get("extra"), dict) else {}
    default = KIDSettings()
    return KIDSettings(
        subsets=int(extra.get("subsets", default.subsets)),
        subset_size=int(extra.get("subset_size", default.subset_size)),
        seed=int(run.manifest.get("seed", default.seed)),
    )


def _unavailable_in(metric: str, *labelled: tuple[str, Run]) -> str:
    """'A (reason)' for the runs whose summary marks ``metric`` unavailable; '' when none does.

    Such a metric was never computed (missing weights, too few images), so the honest reason is that,
    not a missing features folder.
    """
    by_reason: dict[str, list[str]] = {}
    for label, run in labelled:
        entry = run.set_metric(metric)
        if entry is not None and entry.get("status", "ok") != "ok":
            why = str(entry.get("reason") or "no reason recorded").removeprefix("unavailable: ")
            by_reason.setdefault(why.split(" [")[0], []).append(label)  # the details are in the run's summary
    return "; ".join(f"{' and '.join(labels)}: {why}" for why, labels in by_reason.items())


def _shared_features(
    a: Run,
    b: Run,
    labels: tuple[str, str],
    ja: pd.DataFrame,
    jb: pd.DataFrame,
    ok: np.ndarray,
    set_names: list[str],
    notes: list[str],
    space: str = "inception",
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None, str]:
    """(fake_a, real_a, fake_b, real_b) of the shared samples both runs scored, in one feature space
    (Inception, DINOv2, CLIP), from :meth:`Run.load_features`, or None and the reason they cannot be used."""
    if not set_names:
        return None, "no set-level metric requested"
    mismatch = _network_mismatch(a, b, labels, space)
    if mismatch:
        return None, mismatch
    loaded = []
    missing: list[str] = []
    broken: list[str] = []
    for label, run in zip(labels, (a, b), strict=True):
        try:
            loaded.append(load_space_features(run, space))
        except InputError as e:
            if space_features_dir(run, space) is None:
                missing.append(label)
            else:
                broken.append(f"{label}: {e.message}")
    if missing:
        return None, (
            f"no saved features in {' and '.join(missing)} (re-run with deep metrics so features/ is written)"
        )
    if broken:
        return None, "unusable features (" + "; ".join(broken) + ")"
    (fake_a, real_a), (fake_b, real_b) = loaded
    ia, ib = ja["_pos"].to_numpy()[ok], jb["_pos"].to_numpy()[ok]
    out = fake_a[ia], real_a[ia], fake_b[ib], real_b[ib]
    bad = ~(
        np.isfinite(out[0]).all(1)
        & np.isfinite(out[1]).all(1)
        & np.isfinite(out[2]).all(1)
        & np.isfinite(out[3]).all(1)
    )
    if bad.any():
        which = "FID/KID/IDS/PRDC" if space == "inception" else f"the {space} set metrics"
        notes.append(f"{int(bad.sum())} sample(s) with non-finite {space} features excluded from {which}.")
        out = tuple(x[~bad] for x in out)  # type: ignore[assignment]
    if out[0].shape[0] < 3:
        return None, "fewer than 3 shared samples with features"
    for label, n_run in ((labels[0], len(a.ok_rows)), (labels[1], len(b.ok_rows))):
        if out[0].shape[0] != n_run:
            notes.append(
                f"Set-level metrics of {label} are recomputed on the {out[0].shape[0]} shared samples "
                f"with features, not on all {n_run} it scored: they differ from its summary."
            )
    if np.max(np.abs(out[1] - out[3])) > 1e-3 * (1 + np.max(np.abs(out[1]))):
        notes.append(
            f"The two runs' ground-truth {space} features differ (different feature extractor or "
            "preprocessing?); each run is scored against its own."
        )
    return out, ""


def _network_mismatch(a: Run, b: Run, labels: tuple[str, str], space: str) -> str:
    """Why two runs' DINOv2/CLIP features are not comparable (other weights), or ''. Inception is
    checked by the comparison key (analysis groups by the extractor)."""
    if space == "inception":
        return ""

    def key(run: Run) -> str | None:
        emb = ((run.manifest.get("metrics") or {}).get("embedders") or {}).get(space) or {}
        weights = emb.get("weights") or {}
        return weights.get("sha256") if isinstance(weights, dict) else None

    ka, kb = key(a), key(b)
    if ka and kb and ka != kb:
        return (f"{labels[0]} and {labels[1]} computed their {space} features with different weights "
                f"(sha256 {ka[:12]}… vs {kb[:12]}…)")
    return ""


# --- rendering ----------------------------------------------------------------------------------------
