"""Registering a training run as a model: export its ``G_ema`` and add it to the local model registry.

``register_run("mat-wikiart", "runs/mat-wikiart")`` exports the run's best (else latest) ``G_ema``
to ``$INPAINTBENCH_HOME/models/mat-wikiart/generator.safetensors`` (a hard link when possible, so a
later clean-up of the run does not break the model; a copy otherwise), records its sha256, and adds
an entry to the registry that :mod:`inpaintbench.models.local` reads (the models package never
imports the trainer).
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inpaintbench.errors import InputError
from inpaintbench.models.local import (  # noqa: F401  (re-exported for existing callers)
    REGISTRY_FORMAT,
    check_name,
    local_models,
    models_home,
    register_local_models,
    registry_path,
    unregister,
    write_entry,
)


def _export(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def register_run(name: str, run_dir: str | os.PathLike[str], snapshot: str = "best", overwrite: bool = False
                 ) -> dict[str, Any]:
    """Register ``G_ema`` of a training run (``snapshot``: best, latest or a snapshot name) as ``name``.

    An existing name is replaced only with ``overwrite``; runs of the old checkpoint keep their
    numbers in their own directories (the run identity holds the checkpoint's sha256).
    """
    from inpaintbench.train.snapshot import read_state, resolve_snapshot
    from inpaintbench.weights import sha256_file

    check_name(name)
    snap = resolve_snapshot(run_dir, snapshot)
    state = read_state(snap)
    models = local_models()
    if name in models and not overwrite and not _same_run(models[name], run_dir):
        raise InputError(f"model {name!r} is already registered ({models[name].get('checkpoint')}, sha256 "
                         f"{str(models[name].get('sha256'))[:12]}…, from {models[name].get('run_dir')})",
                         "pass --overwrite to replace it, or choose another name")
    dst = models_home() / name / "generator.safetensors"
    _export(snap / "G_ema.safetensors", dst)
    side = snap / "G_ema.safetensors.json"  # the MAT checkpoint sidecar (config, provenance)
    if side.is_file():
        _export(side, dst.with_name(dst.name + ".json"))
    cfg = state.get("config", {})
    entry = {
        "name": name,
        "checkpoint": str(dst),
        "sha256": sha256_file(dst),
        "run_dir": str(Path(run_dir).expanduser().resolve()),
        "snapshot": str(snap),
        "kimg": state.get("kimg"),
        "resolution": cfg.get("resolution"),
        "network_config": cfg.get("config"),
        "init": (state.get("init") or {}).get("spec"),
        "init_sha256": (state.get("init") or {}).get("sha256"),
        "train_data": (state.get("data") or {}).get("root"),
        "train_data_digest": state.get("data_digest"),
        "val": state.get("val"),
        "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_entry(name, entry)
    return entry


def _same_run(entry: dict[str, Any], run_dir: str | os.PathLike[str]) -> bool:
    """True when ``entry`` was registered from ``run_dir`` (re-registering a resumed run is an update)."""
    return entry.get("run_dir") == str(Path(run_dir).expanduser().resolve())


def check_can_register(name: str, run_dir: str | os.PathLike[str]) -> None:
    """Fail before training when ``name`` is taken by another run (not after hours of training)."""
    check_name(name)
    entry = local_models().get(name)
    if entry is not None and not _same_run(entry, run_dir):
        raise InputError(f"model {name!r} is already registered from {entry.get('run_dir')}",
                         f"choose another --name, or replace it later with `inpaintbench models register {name} "
                         f"{run_dir} --overwrite`")


