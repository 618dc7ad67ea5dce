"""The evaluation harness: dataset x mask set x model -> composite -> uint8 -> metrics -> run dir.

One pass over the data. Each batch is read once, inpainted once, composited (the harness, not the
model, puts the known pixels back), quantised to uint8 exactly as a saved PNG would be, and scored
by one :class:`~inpaintbench.metrics.suite.MetricSuite` call. Finished batches are written as
chunks, so a killed run restarted with the same command recomputes nothing already written and ends
with identical results. Under ``torchrun`` each rank takes every K-th batch and rank 0 gathers.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench import distributed
from inpaintbench.env_info import resolve_device
from inpaintbench.errors import InputError

# The scoring loop lives in evaluation.py; its types are re-exported here for existing callers.
from inpaintbench.evaluation import BatchResult, Evaluation, RunOutcome, Sample, base_manifest  # noqa: F401
from inpaintbench.identity import identity_hash, metric_identity, model_identity
from inpaintbench.metrics.info import DEFAULT_METRICS, check_metric_names, select_lpips_net
from inpaintbench.metrics.suite import PIXEL_METRICS  # noqa: F401  (re-exported for callers)
from inpaintbench.results import sanitize_sample_id

CLASSICAL_MODELS = ("telea", "ns", "biharmonic")
#: how far outside [0, 1] a model output may stray: half a uint8 step, which quantisation absorbs
#: (values within it round to 0 or 255 exactly as clamping would)
OUTPUT_RANGE_TOLERANCE = 0.5 / 255


@dataclass
class RunConfig:
    """Everything that determines a run's numbers (and so whether a directory can be resumed)."""

    model: str = "telea"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "samples"
    #: ``hf:`` dataset settings (image_column, filters, id_column); empty for other kinds
    dataset_options: dict[str, Any] = field(default_factory=dict)
    resolution: int = 256
    resize_policy: str = "center-crop"
    alpha: str = "refuse"
    masks: str = "mat-large-256"
    seed: int = 0
    batch_size: int = 8
    limit: int | None = None
    metrics: tuple[str, ...] = DEFAULT_METRICS
    feature_extractor: str = "inception-tf"
    lpips_net: str = "alex"
    save_images: bool = False
    # Where things run and where weights come from: recorded, but not part of the resume key.
    device: str = "auto"
    weights_dir: str | None = None
    offline: bool | None = None
    allow_unverified: bool = False
    require_metrics: tuple[str, ...] = ()
    #: the paper preset the metric settings came from (recorded in the identity)
    preset: str | None = None

    def __post_init__(self) -> None:
        # Validate names now, before a mask set is built or a model loaded; `--lpips-net vgg`
        # selects the `lpips_vgg` column, so the `lpips` column always means AlexNet.
        self.metrics = select_lpips_net(check_metric_names(self.metrics), self.lpips_net)
        self.require_metrics = select_lpips_net(check_metric_names(self.require_metrics), self.lpips_net)

    def resume_key(self) -> dict[str, Any]:
        """The configuration fields that change numbers (the run identity adds what the model, data
        and metric networks say about themselves)."""
        skip = {"device", "weights_dir", "offline", "allow_unverified", "require_metrics", "batch_size",
                "model_kwargs", "model", "save_images"}
        if not self.dataset_options:  # absent, not {}, so that identities of runs without it are unchanged
            skip.add("dataset_options")
        return {k: v for k, v in asdict(self).items() if k not in skip}


# --------------------------------------------------------------------------------------------------
# Pure helpers


def quantize(pred01: np.ndarray) -> np.ndarray:
    """Float [0,1] -> uint8 by round-half-to-even and clamp, as writing a PNG would."""
    return np.clip(np.rint(np.asarray(pred01, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def composite(pred_u8: np.ndarray, gt_u8: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Known pixels from the ground truth, hole pixels from the prediction (uint8 in, uint8 out)."""
    return np.where(holes[..., None], pred_u8, gt_u8)


def masked_input(gt_u8: np.ndarray, holes: np.ndarray, fill: int = 255) -> np.ndarray:
    """What the model was shown: the known pixels, holes painted white."""
    return np.where(holes[..., None], np.uint8(fill), gt_u8)


def pad_to_multiple(images: np.ndarray, holes: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflect-pad bottom/right to a multiple; the padded border counts as known (mirrored) pixels."""
    if multiple <= 1:
        return images, holes
    h, w = images.shape[1:3]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return images, holes
    images = np.pad(images, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
    holes = np.pad(holes, ((0, 0), (0, ph), (0, pw)), mode="constant", constant_values=False)
    return images, holes


def plan_samples(image_ids: Sequence[str], mask_ids: Sequence[str], limit: int | None) -> list[Sample]:
    """Pair image i with mask i (masks cycle when there are fewer masks than images)."""
    if not mask_ids:
        raise InputError("the mask set is empty", "build it with `inpaintbench masks build NAME`")
    n = len(image_ids) if limit is None else min(limit, len(image_ids))
    return [Sample(i, i, i % len(mask_ids), image_ids[i], mask_ids[i % len(mask_ids)]) for i in range(n)]


def batches_of(samples: Sequence[Sample], batch_size: int) -> list[list[Sample]]:
    return [list(samples[i : i + batch_size]) for i in range(0, len(samples), batch_size)]


def default_group_dir(config: RunConfig, root: str | Path = "results/runs") -> Path:
    """``results/runs/<dataset>__<masks>__r<res>``: the folder a command's models share."""
    ds = sanitize_sample_id(config.dataset.replace("folder:", ""))[-40:]
    ms = sanitize_sample_id(config.masks)[-40:]
    suffix = f"-limit{config.limit}" if config.limit else ""
    return Path(root) / f"{ds}__{ms}__r{config.resolution}{suffix}"


def default_out_dir(config: RunConfig, run_hash: str, group: str | Path | None = None) -> Path:
    """``<group>/<model>-<identity hash>``: the same identity resumes, a different one (another
    checkpoint behind the same name, other options or metric networks) never reuses old numbers."""
    model = sanitize_sample_id(config.model + ("" if not config.model_kwargs.get("weights")
                                               else "-" + Path(str(config.model_kwargs["weights"])).stem))
    return Path(group if group is not None else default_group_dir(config)) / f"{model}-{run_hash}"


# --------------------------------------------------------------------------------------------------
# Sources of predictions


def model_batches(model: Any, dataset: Any, masks: Any, batches: list[list[Sample]],
                  todo: set[int]) -> Iterator[tuple[int, BatchResult]]:
    """Inpaint each batch with ``model``; bad outputs mark rows failed instead of stopping the run."""
    for b, batch in enumerate(batches):
        if b not in todo:
            continue
        gt = np.stack([dataset[s.image_index][1] for s in batch])
        holes = np.stack([masks.get(s.mask_index) for s in batch])
        if holes.shape[1:] != gt.shape[1:3]:
            raise InputError(
                f"mask set {masks.describe().get('name')} is {holes.shape[2]}x{holes.shape[1]} but images are "
                f"{gt.shape[2]}x{gt.shape[1]}",
                "use a mask set of the evaluation resolution (e.g. mat-large-256 with --resolution 256)",
            )
        errors: list[str | None] = [mask_problem(h) for h in holes]
        shown = masked_input(gt, holes)
        padded, padded_holes = pad_to_multiple(shown, holes, int(getattr(model, "pad_multiple", 1) or 1))
        t0 = time.perf_counter()
        try:
            raw = model.inpaint(padded, padded_holes, ids=[s.sample_id for s in batch])
            raw = np.asarray(raw)
        except Exception as exc:  # a model failure fails its rows, not the run
            raw = None
            errors = [e or f"model raised {type(exc).__name__}: {exc}" for e in errors]
        seconds = time.perf_counter() - t0
        pred = np.zeros_like(gt)
        if raw is not None:
            batch_problem = output_problem(raw, padded.shape)
            if batch_problem:
                errors = [e or batch_problem for e in errors]
            else:
                raw = raw[:, : gt.shape[1], : gt.shape[2]]
                for i in range(len(batch)):
                    errors[i] = errors[i] or sample_output_problem(raw[i])
                    if errors[i] is None:
                        pred[i] = composite(quantize(raw[i]), gt[i], holes[i])
        yield b, BatchResult(gt, holes, pred, errors, seconds, masked_input=shown)


def output_problem(raw: np.ndarray, expected_shape: tuple[int, ...]) -> str | None:
    """Why a whole batch output breaks the Inpainter contract (float [B,H,W,3] in [0, 1]), or None.

    A uint8 or [-1, 1] output would otherwise be clipped into something plausible and scored as
    ``ok``: the worst kind of wrong number.
    """
    if raw.shape != tuple(expected_shape):
        return f"model output has shape {raw.shape}, expected {tuple(expected_shape)}"
    if not np.issubdtype(raw.dtype, np.floating):
        return (f"model output is {raw.dtype}, expected floating point in [0, 1] (the Inpainter contract; "
                "convert in the model's adapter, e.g. uint8 / 255)")
    return None


def sample_output_problem(raw: np.ndarray) -> str | None:
    """Per-sample checks: finite, and inside [0, 1] up to :data:`OUTPUT_RANGE_TOLERANCE`."""
    if not np.isfinite(raw).all():
        return "model output contains NaN or Inf"
    lo, hi = float(raw.min()), float(raw.max())
    if lo < -OUTPUT_RANGE_TOLERANCE or hi > 1 + OUTPUT_RANGE_TOLERANCE:
        return (f"model output spans [{lo:.4g}, {hi:.4g}], outside [0, 1] (the Inpainter contract; a model "
                "working in [-1, 1] must convert with (x + 1) / 2 in its adapter)")
    return None


def mask_problem(hole: np.ndarray) -> str | None:
    """The mask-validity rule of both `run` and `score`: a sample needs some hole and some context."""
    if not hole.any():
        return "mask has no hole (nothing to inpaint)"
    if hole.all():
        return "mask is all hole (nothing known to inpaint from)"
    return None


# --------------------------------------------------------------------------------------------------
# The scoring loop shared by `run` and `score`


def build_suite(config: RunConfig, device: str, reference_ids: Sequence[str] | None = None,
                resolution_policy: str = "native") -> Any:
    """The metric suite; with ``reference_ids`` the ground-truth features are cached on disk, so a
    second model on the same images extracts only its own features."""
    from inpaintbench.metrics.feature_cache import FeatureCache
    from inpaintbench.metrics.suite import MetricSuite

    return MetricSuite(
        metrics=tuple(config.metrics), device=device, feature_extractor=config.feature_extractor,
        lpips_net=config.lpips_net, weights_dir=config.weights_dir, offline=config.offline,
        allow_unverified=config.allow_unverified, require=tuple(config.require_metrics), seed=config.seed,
        reference_cache=FeatureCache() if reference_ids is not None else None,
        reference_ids=list(reference_ids) if reference_ids is not None else None,
        resolution_policy=resolution_policy,
    )


# --------------------------------------------------------------------------------------------------
# Public entry points


def evaluate_model(config: RunConfig, out_dir: str | Path | None = None, *, model: Any | None = None,
                   dataset: Any | None = None, masks: Any | None = None, suite: Any | None = None,
                   progress: Any | None = None, overwrite: bool = False,
                   argv: Sequence[str] | None = None, out_group: str | Path | None = None,
                   check_run_dir: Callable[[Path], None] | None = None) -> RunOutcome | None:
    """Evaluate one model; returns the outcome on rank 0 (None on other ranks).

    Without ``out_dir`` the run goes to :func:`default_out_dir` in ``out_group`` (default
    ``results/runs/<dataset>__<masks>__r<res>``), named by the model and the run identity's hash.
    ``check_run_dir(path)`` is called with the run directory before anything is read from or written
    to it (the Python API refuses to reuse the directory of an in-memory model it cannot vouch for).
    """
    from inpaintbench.datasets import load_dataset
    from inpaintbench.masks import resolve_mask_set

    device = resolve_device(config.device)
    ctx = distributed.init_from_env(device)
    if ctx.active and device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
    t_start = time.perf_counter()
    dataset = dataset or load_dataset(config.dataset, resolution=config.resolution,
                                      resize_policy=config.resize_policy, alpha=config.alpha,
                                      options=config.dataset_options, offline=config.offline)
    masks = masks or resolve_mask_set(config.masks)
    samples = plan_samples(dataset.ids, masks.ids, config.limit)
    batches = batches_of(samples, config.batch_size)

    if model is None:
        # Hand the model what the run knows (device, seed, where weights live) when its factory takes it.
        offered = {"device": device, "seed": config.seed, "weights_dir": config.weights_dir,
                   "offline": config.offline, "allow_unverified": config.allow_unverified}
        accepted = _factory_parameters(config.model)
        extra = {k: v for k, v in offered.items() if k in accepted and k not in config.model_kwargs}
        model = _create_with_options(config.model, dict(config.model_kwargs), extra)
    model_description = {"name": config.model, **_describe(model)}
    native = getattr(model, "native_resolution", None)
    if native and native != config.resolution:
        warnings.warn(f"model {config.model} was trained at {native}px but is evaluated at "
                      f"{config.resolution}px", stacklevel=2)
    suite = suite or build_suite(config, device, reference_ids=[s.image_id for s in samples],
                                 resolution_policy=f"{dataset.digest}|{config.resolution}|{config.resize_policy}")
    metrics_description = _describe(suite)

    identity = {
        "kind": "run",
        "config": config.resume_key(),
        "model": model_identity(config.model, config.model_kwargs, model_description),
        "data": {"dataset_digest": dataset.digest, "resolution": config.resolution,
                 "resize_policy": config.resize_policy, "alpha": config.alpha, "masks_digest": masks.digest,
                 "limit": config.limit, "n_samples": len(samples)},
        "metrics": metric_identity(metrics_description, config.preset),
    }
    run_hash = identity_hash(identity)
    out_dir = Path(out_dir) if out_dir else default_out_dir(config, run_hash, out_group)
    if check_run_dir is not None:
        check_run_dir(out_dir)
    manifest = base_manifest(identity, device, ctx, argv, run_id=f"{config.model}-{run_hash}")
    manifest["dataset"] = {**dataset.describe(), "spec": config.dataset}
    manifest["masks"] = {**masks.describe(), "spec": config.masks}
    manifest["comparable"] = config.limit is None
    manifest["n_samples"] = len(samples)
    if config.limit is not None:
        manifest["not_comparable_reason"] = f"--limit {config.limit}: only the first samples were evaluated"
    manifest["model"] = model_description
    manifest["metrics"] = metrics_description

    evaluation = Evaluation(out_dir, identity, manifest, samples, batches, suite,
                            list(suite.metrics if hasattr(suite, "metrics") else config.metrics), ctx,
                            config.save_images, overwrite, execution={"batch_size": config.batch_size})
    if evaluation.finished:
        from inpaintbench.results import read_run_files

        m, rows, summary = read_run_files(out_dir)
        return RunOutcome(out_dir, m, summary, rows) if ctx.is_main else None
    todo = evaluation.todo()
    resumed = len(evaluation.my_batches()) - len(todo)
    mine = evaluation.my_batches()
    on_batch = _progress_hook(progress if ctx.is_main else None, config.model,
                              total=sum(len(batches[b]) for b in mine),
                              already=sum(len(batches[b]) for b in mine - todo))
    computed = evaluation.consume(model_batches(model, dataset, masks, batches, todo), on_batch)
    outcome = evaluation.finalize({"seconds_total": time.perf_counter() - t_start})
    if outcome is not None:
        outcome.resumed_batches, outcome.computed_batches = resumed, computed
    return outcome


def _factory_signature(name: str) -> tuple[set[str], bool] | None:
    """A model factory's named parameters and whether it also takes ``**kwargs`` (None: not inspectable)."""
    import inspect

    from inpaintbench.models.base import get_model_spec

    try:
        params = inspect.signature(get_model_spec(name).factory).parameters
    except (TypeError, ValueError):
        return None
    named = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params.values())


def _create_with_options(name: str, options: dict[str, Any], extra: dict[str, Any]) -> Any:
    """Build the model with the user's options; an option it cannot take is a clear message, not a TypeError.

    A factory with a fixed signature (the classical models) silently cannot use MAT's options when one
    command evaluates several models, so those are dropped for it with a warning; a factory taking
    ``**kwargs`` (MAT) is given everything, and a rejected name is reported with the fix.
    """
    from inpaintbench.models.base import create_model

    signature = _factory_signature(name)
    if signature is not None and signature[0] and not signature[1]:
        named = signature[0]
        unused = sorted(k for k in options if k not in named)
        if unused:
            warnings.warn(f"model {name} does not take option(s) {', '.join(unused)}; ignored for it",
                          stacklevel=3)
        options = {k: v for k, v in options.items() if k in named}
    try:
        return create_model(name, **options, **extra)
    except TypeError as exc:
        bad = [k for k in options if f"unexpected keyword argument '{k}'" in str(exc)]
        if not bad:
            raise
        raise InputError(f"model {name} does not take the option {bad[0]!r}",
                         "check the name (see the model's documentation) or drop the option") from None


def _factory_parameters(name: str) -> set[str]:
    """Named parameters of a model factory (all offered ones if it takes **kwargs)."""
    signature = _factory_signature(name)
    if signature is None:
        return set()
    named, open_ended = signature
    return {"device", "seed", "weights_dir", "offline", "allow_unverified"} if open_ended else named


def _describe(obj: Any) -> dict[str, Any]:
    describe = getattr(obj, "describe", None)
    return dict(describe()) if callable(describe) else {}


def _progress_hook(progress: Any, label: str, total: int, already: int) -> Callable[[int], None]:
    if progress is None:
        return lambda n: None
    task = progress.add_task(label, total=total, completed=already)
    return lambda n: progress.advance(task, n)
