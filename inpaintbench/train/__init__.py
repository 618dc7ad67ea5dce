"""Fine-tuning MAT on a folder of images (``inpaintbench data split`` / ``train`` / ``register-model``).

Public API::

    from inpaintbench.train import TrainConfig, train, split_folder, register_run, register_local_models

* :func:`split_folder` — prepare images: explicit resize policy, deterministic hashed train/val/test.
* :class:`TrainConfig` + :func:`train` — MAT's TwoStageLoss recipe (``mat-official`` by default),
  ticks/kimg, EMA, optional ADA, snapshots, validation through the ``run`` metric suite, exact resume,
  torchrun data parallelism.
* :func:`register_run` / :func:`register_local_models` — persistently register a run's ``G_ema`` as a
  model id for ``inpaintbench run``.

See ``inpaintbench/train/README.md`` for the recipe, the deviations from the official code and the
run-directory layout. Importing this package does not import torch.
"""

from __future__ import annotations

from inpaintbench.lazy import lazy_getattr

_LAZY = {
    "TrainConfig": "inpaintbench.train.config",
    "train": "inpaintbench.train.loop",
    "Trainer": "inpaintbench.train.loop",
    "TrainResult": "inpaintbench.train.loop",
    "TrainingError": "inpaintbench.train.loop",
    "TickInfo": "inpaintbench.train.loop",
    "split_folder": "inpaintbench.train.data",
    "read_splits": "inpaintbench.train.data",
    "TrainImages": "inpaintbench.train.data",
    "register_run": "inpaintbench.train.registry",
    "register_local_models": "inpaintbench.models.local",
    "local_models": "inpaintbench.models.local",
    "read_metrics": "inpaintbench.train.snapshot",
    "resolve_snapshot": "inpaintbench.train.snapshot",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
