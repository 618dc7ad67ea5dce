"""The Python API: ``evaluate``, ``score`` and ``load``, thin calls into what the CLI runs.

``evaluate`` builds the same :class:`~inpaintbench.runner.RunConfig` as ``inpaintbench run`` and calls
the same :func:`~inpaintbench.runner.evaluate_model`; ``score`` calls
:func:`~inpaintbench.scoring.score_folders` (arrays are written as PNG files first, so the numbers
are those of ``inpaintbench score`` on those files by construction).

Where results go:

* ``out=None``: a temporary directory, read into memory when the run finishes and removed (also on
  error). No run directory or result file is left anywhere. The only files that may appear are
  inpaintbench's shared caches under ``$INPAINTBENCH_HOME``, exactly as with the CLI: a standard
  mask set built on first use, reference Inception features, fetched weights.
* ``out=DIR``: the CLI's ``--out DIR``: ``DIR/<model>-<identity hash>`` for ``evaluate`` (resumed and
  reused by the identity, interchangeable with ``inpaintbench run --out DIR``), the run directory
  itself for ``score``.

In-memory models (an Inpainter object, a function, a wrapped ``nn.Module``) have no verifiable
identity: their code is fingerprinted but closures, globals and (except for an ``nn.Module``) weights
are not. Their manifest says ``model.in_memory: true``, and with ``out=`` they need ``name=``
and an existing run directory is reused only with ``resume=True`` (``overwrite=True`` recomputes): two
different lambdas never silently share a directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.results_api import Results, detach, load

__all__ = ["evaluate", "load", "score"]

#: keyword options of ``evaluate`` and the RunConfig field (or model option) each one sets
_RUN_OPTIONS = ("resolution", "resize_policy", "alpha", "seed", "batch_size", "limit", "device", "feature_extractor",
                "lpips_net", "weights_dir", "offline", "allow_unverified", "require_metrics", "preset", "save_images")
_MODEL_OPTIONS = ("weights", "truncation_psi", "noise_mode", "precision")
_HF_OPTIONS = ("hf_image_column", "hf_filter", "hf_id_column")
_SCORE_OPTIONS = ("seed", "batch_size", "limit", "device", "feature_extractor", "lpips_net", "weights_dir", "offline",
                  "allow_unverified", "require_metrics", "preset", "alpha")


def _names(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    return tuple(x.strip() for v in items for x in str(v).split(",") if x.strip())


def _metric_settings(metrics: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The metric fields of RunConfig: explicit values win over ``preset``; unset ones keep the defaults."""
    preset = options.pop("preset", None)
    explicit = {"metrics": _names(metrics), "feature_extractor": options.pop("feature_extractor", None),
                "lpips_net": options.pop("lpips_net", None)}
    if preset is not None:
        from inpaintbench.cli import PRESETS

        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}", f"use one of: {', '.join(PRESETS)}")
        explicit = {k: (v if v is not None else PRESETS[preset].get(k)) for k, v in explicit.items()}
    out = {k: v for k, v in explicit.items() if v is not None}
    out["require_metrics"] = _names(options.pop("require_metrics", None)) or ()
    out["preset"] = preset
    return out


def _check_options(options: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"{what}() got unknown option(s) {', '.join(unknown)}",
                         f"use some of: {', '.join(sorted(allowed))}")


# --------------------------------------------------------------------------------------------------
# Models


class _InMemoryModel:
    """An Inpainter object given to ``evaluate``, marked in-memory in its description."""

    def __init__(self, model: Any, name: str):
        self._model = model
        self.name = name
        self.native_resolution = getattr(model, "native_resolution", None)
        self.pad_multiple = int(getattr(model, "pad_multiple", 1) or 1)
        self.value_range = getattr(model, "value_range", (0.0, 1.0))

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        return self._model.inpaint(images, holes, ids=ids)

    def describe(self) -> dict[str, Any]:
        from inpaintbench.models.callable import code_fingerprint, qualified_name

        own = getattr(self._model, "describe", None)
        d = dict(own()) if callable(own) else {}
        if d.get("in_memory"):  # a from_callable adapter describes itself
            return d
        return {**d, "kind": d.get("kind", "in-memory Inpainter"), "in_memory": True,
                "object": qualified_name(self._model),
                "code_sha256": code_fingerprint(getattr(type(self._model), "inpaint", None)),
                "identity": "name, class and inpaint() bytecode plus what its describe() says; not verified"}


def _resolve_model(model: Any, name: str | None) -> tuple[str, Any | None]:
    """(name for RunConfig, model object or None for a registered name)."""
    if isinstance(model, str):
        if name is not None and name != model:
            raise InputError("name= is for in-memory models; a registered model is named by its id",
                             f"drop name= (the run is named {model!r})")
        _refresh_local_models(model)
        return model, None
    from inpaintbench.models.callable import from_callable, is_torch_module

    if is_torch_module(model):
        raise InputError(f"a torch.nn.Module ({type(model).__name__}) needs its conventions stated",
                         "wrap it: inpaintbench.models.from_callable(module, layout='NCHW', value_range=(-1, 1), "
                         "mask='hole')")
    if hasattr(model, "inpaint"):
        label = name or str(getattr(model, "name", "") or type(model).__name__)
        return label, _InMemoryModel(model, label)
    if callable(model):
        adapter = from_callable(model, name=name)
        return adapter.name, _InMemoryModel(adapter, adapter.name)
    raise InputError(f"cannot evaluate a {type(model).__name__}",
                     "pass a registered model id (see `inpaintbench models`), an Inpainter, or a function "
                     "(images uint8 [B,H,W,3], holes bool [B,H,W]) -> float [B,H,W,3] in [0, 1]")


def _refresh_local_models(model: str) -> None:
    """Pick up fine-tunes registered since this process imported the models (``inpaintbench train
    --name`` in a terminal or a subprocess while a notebook kernel runs)."""
    from inpaintbench.models.base import list_models

    if model not in list_models():
        from inpaintbench.models.local import register_local_models

        register_local_models()


def _reuse_guard(name: str, resume: bool, overwrite: bool) -> Callable[[Path], None]:
    """What an in-memory model's run directory must satisfy before it is reused (see the module doc)."""

    def check(run_dir: Path) -> None:
        if not (run_dir / "manifest.json").exists():
            return
        if overwrite:
            shutil.rmtree(run_dir)
            return
        if not resume:
            raise InputError(f"{run_dir} already holds a run of the in-memory model {name!r}; inpaintbench cannot "
                             "verify that it is the same model (closures, globals and weights are not hashed)",
                             "pass resume=True to reuse or continue it, overwrite=True to recompute it, or another "
                             "name=")

    return check


# --------------------------------------------------------------------------------------------------
# evaluate


def evaluate(model: Any, data: str = "samples", masks: str = "mat-large-256", *,
             metrics: str | Sequence[str] | None = None, out: str | os.PathLike[str] | None = None,
             name: str | None = None, resume: bool = False, overwrite: bool = False,
             model_options: Mapping[str, Any] | None = None, progress: bool | None = None,
             **options: Any) -> Results:
    """Evaluate a model on a dataset with a mask set, as ``inpaintbench run`` does.

    Args:
        model: a registered id (``"telea"``, ``"mat-places-512"``...), an Inpainter, any function
            ``(images uint8 [B,H,W,3], holes bool [B,H,W] True = missing) -> float [B,H,W,3] in [0, 1]``,
            or an ``nn.Module`` wrapped by :func:`inpaintbench.models.from_callable`.
        data: ``"samples"``, ``"folder:PATH"`` or ``"hf:NAME_OR_PATH[:split]"``.
        masks: a standard mask-set name or a mask-set folder.
        metrics: names, a list or one comma-separated string (default: the CLI's default set).
        out: ``None``: temporary, nothing left behind. A folder: the CLI's ``--out`` (resumable).
        name: the in-memory model's name (required with ``out``).
        resume: reuse an existing run directory of an in-memory model (you state it is the same model).
        overwrite: replace a run directory with another identity (and, for in-memory models, any).
        model_options: extra factory options of a registered model (the CLI's ``-O KEY=VALUE``).
        progress: ``None`` = a bar in Jupyter or on a terminal; ``True``/``False`` force it.
        **options: the CLI's ``run`` options: ``resolution, resize_policy, alpha, seed, batch_size, limit,
            device, precision, feature_extractor, lpips_net, preset, require_metrics, weights_dir,
            offline, allow_unverified, save_images, weights, truncation_psi, noise_mode,
            hf_image_column, hf_filter, hf_id_column``.

    Returns:
        :class:`~inpaintbench.results_api.Results` (None on non-zero ranks under ``torchrun``).
    """
    from inpaintbench.api_progress import api_progress
    from inpaintbench.hf_data import dataset_options
    from inpaintbench.runner import RunConfig, evaluate_model

    options = dict(options)
    _check_options(options, _RUN_OPTIONS + _MODEL_OPTIONS + _HF_OPTIONS, "evaluate")
    label, obj = _resolve_model(model, name)
    model_kwargs = {k: (str(v) if isinstance(v, Path) else v) for k in _MODEL_OPTIONS
                    if (v := options.pop(k, None)) is not None}
    model_kwargs.update(dict(model_options or {}))
    if obj is not None and model_kwargs:
        raise InputError(f"option(s) {', '.join(sorted(model_kwargs))} configure registered models",
                         "set them on your model object instead")
    ds_options = dataset_options(data, options.pop("hf_image_column", None), options.pop("hf_filter", None),
                                 options.pop("hf_id_column", None))
    settings = _metric_settings(metrics, options)
    if options.get("weights_dir") is not None:
        options["weights_dir"] = str(options["weights_dir"])
    if options.get("offline") is False:
        options["offline"] = None  # as the CLI: "not forced offline" (the environment may still say so)
    if out is None and options.get("save_images"):
        raise InputError("save_images=True needs out= (images are files)", "pass out='some/folder'")
    if obj is not None and out is not None and name is None:
        raise InputError("an in-memory model needs name= when results are written to out=",
                         "pass name='my-model' (it names the run directory and its rows in leaderboards)")
    config = RunConfig(model=label, model_kwargs=model_kwargs, dataset=data, dataset_options=ds_options,
                       masks=masks, **options, **settings)
    argv = ["<python>", "inpaintbench.evaluate", f"model={label}", f"data={data}", f"masks={masks}"]
    guard = _reuse_guard(label, resume, overwrite) if obj is not None else None
    with api_progress(progress) as bar:
        if out is not None:
            outcome = evaluate_model(config, None, model=obj, progress=bar, overwrite=overwrite, argv=argv,
                                     out_group=Path(out), check_run_dir=guard)
            return None if outcome is None else load(outcome.run_dir)  # type: ignore[return-value]
        tmp = Path(tempfile.mkdtemp(prefix="inpaintbench-"))
        try:
            outcome = evaluate_model(config, tmp / "run", model=obj, progress=bar, argv=argv)
            return None if outcome is None else Results(detach(load(outcome.run_dir).run))  # type: ignore[return-value]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# score


def _stack(x: Any) -> np.ndarray:
    return np.stack([np.asarray(i) for i in x]) if isinstance(x, (list, tuple)) else np.asarray(x)


def _write_arrays(folder: Path, pred: Any, gt: Any, masks: Any, hole_value: Any,
                  ids: Sequence[str] | None) -> tuple[Path, Path, Path]:
    """PNG files for in-memory arrays: pred/, gt/ and masks/ (255 = hole); returns the three folders."""
    from inpaintbench.images import write_png

    p, g, m = _stack(pred), _stack(gt), _stack(masks)
    for arr, what in ((p, "pred"), (g, "gt")):
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
            raise InputError(f"{what} is {arr.dtype} {arr.shape}, expected uint8 [N,H,W,3] RGB",
                             "pass what a PNG holds: np.uint8 arrays (e.g. np.rint(x * 255).astype(np.uint8))")
    if m.ndim != 3:
        raise InputError(f"masks have shape {m.shape}, expected [N,H,W]", "pass one 2-D mask per image")
    if m.dtype == bool:
        if hole_value not in (True, False):
            raise InputError(f"bool masks need hole_value=True or False, got {hole_value!r}",
                             "hole_value=True when True marks the hole (inpaintbench's convention)")
        holes = m if hole_value else ~m
    else:
        values = set(np.unique(m).tolist())
        if hole_value not in (0, 255) or not values <= {0, 255}:
            raise InputError(f"uint8 masks must hold only 0 and 255 with hole_value 0 or 255 (got values "
                             f"{sorted(values)[:5]}, hole_value {hole_value!r})",
                             "binarise the masks, or pass bool masks with hole_value=True")
        holes = m == hole_value
    n = len(g)
    if len(p) != n or len(holes) != n:
        raise InputError(f"{len(p)} predictions, {n} ground truths and {len(holes)} masks",
                         "pass one of each per image")
    names = list(ids) if ids is not None else [f"{i:06d}" for i in range(n)]
    if len(names) != n or len(set(names)) != n:
        raise InputError("ids= must give one unique name per image", "pass a list of distinct names")
    dirs = tuple(folder / d for d in ("pred", "gt", "masks"))
    for i, stem in enumerate(names):
        write_png(dirs[0] / f"{stem}.png", p[i])
        write_png(dirs[1] / f"{stem}.png", g[i])
        write_png(dirs[2] / f"{stem}.png", np.where(holes[i], 255, 0).astype(np.uint8))
    return dirs  # type: ignore[return-value]


def score(pred: Any, gt: Any, masks: Any, *, hole_value: Any, metrics: str | Sequence[str] | None = None,
          out: str | os.PathLike[str] | None = None, name: str = "external", composite: bool = False,
          ids: Sequence[str] | None = None, overwrite: bool = False, progress: bool | None = None,
          **options: Any) -> Results:
    """Score existing predictions, as ``inpaintbench score`` does.

    ``pred``, ``gt``, ``masks``: three folders (paired by relative path), or arrays: uint8 [N,H,W,3]
    predictions and ground truths and [N,H,W] masks. ``hole_value`` is required (polarity is never
    guessed): 0 or 255 for mask files and uint8 masks, True/False for bool masks (True: True = hole).
    Arrays are written as PNG to a temporary folder and scored from there, so ``score(arrays)``
    equals ``inpaintbench score`` on the same arrays saved as PNG. ``out``: the run directory
    (default: temporary, nothing left behind). Options: ``seed, batch_size, limit, device,
    feature_extractor, lpips_net, preset, require_metrics, weights_dir, offline, allow_unverified, alpha``.
    """
    from inpaintbench.api_progress import api_progress
    from inpaintbench.runner import RunConfig
    from inpaintbench.scoring import score_folders

    options = dict(options)
    _check_options(options, _SCORE_OPTIONS, "score")
    alpha = options.pop("alpha", "refuse")
    settings = _metric_settings(metrics, options)
    if options.get("weights_dir") is not None:
        options["weights_dir"] = str(options["weights_dir"])
    if options.get("offline") is False:
        options["offline"] = None
    config = RunConfig(model=name, **options, **settings)
    folders = all(isinstance(x, (str, os.PathLike)) for x in (pred, gt, masks))
    if folders and hole_value not in (0, 255):
        raise InputError(f"hole_value must be 0 or 255 for mask files, got {hole_value!r}",
                         "0 (MAT) or 255 (LaMa, IOPaint)")
    tmp = Path(tempfile.mkdtemp(prefix="inpaintbench-score-"))
    try:
        if folders:
            dirs, file_hole_value = (Path(pred), Path(gt), Path(masks)), int(hole_value)
        else:
            dirs, file_hole_value = _write_arrays(tmp / "files", pred, gt, masks, hole_value, ids), 255
        target = Path(out) if out is not None else tmp / "run"
        argv = ["<python>", "inpaintbench.score", f"name={name}"]
        with api_progress(progress) as bar:
            outcome = score_folders(*dirs, file_hole_value, target, config=config, composite_known=composite,
                                    alpha=alpha, progress=bar, overwrite=overwrite, argv=argv)
        if outcome is None:
            return None  # type: ignore[return-value]
        results = load(outcome.run_dir)
        return results if out is not None else Results(detach(results.run))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
