"""Local model registry: fine-tuned MAT checkpoints registered under their own model id.

``register_run("mat-wikiart", "runs/mat-wikiart")`` exports the run's best (else latest) ``G_ema``
to ``$INPAINTBENCH_HOME/models/mat-wikiart/generator.safetensors`` (a hard link when possible, so a
later clean-up of the run does not break the model; a copy otherwise), records its sha256, and
adds an entry to ``$INPAINTBENCH_HOME/models/registry.json``. :func:`register_local_models` (called
when ``inpaintbench.models`` is imported) turns every entry into a model id that builds the MAT
adapter on that file, after checking the hash, so ``inpaintbench run --model mat-wikiart`` works in
any later process and lands on the same leaderboard as the other MAT models.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inpaintbench.errors import InputError, WeightsError

REGISTRY_FORMAT = "inpaintbench-local-models"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def models_home() -> Path:
    from inpaintbench.weights import inpaintbench_home  # same $INPAINTBENCH_HOME, without importing torch

    return inpaintbench_home() / "models"


def registry_path() -> Path:
    return models_home() / "registry.json"


def local_models() -> dict[str, dict[str, Any]]:
    """Entries of the local registry by model id (empty when there is none).

    A registry file that cannot be read is an error, never an empty registry: the next
    `models register` would otherwise overwrite it and lose every entry.
    """
    p = registry_path()
    if not p.is_file():
        return {}
    fix = f"repair {p} by hand, or move it away and register the models again"
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise InputError(f"cannot read the local model registry {p}: {exc.strerror or exc}", fix) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"the local model registry {p} is not valid JSON ({exc.msg}, line {exc.lineno})",
                         fix) from None
    if not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT or not isinstance(
            data.get("models", {}), dict):
        raise InputError(f"{p} is not an inpaintbench local model registry", fix)
    return dict(data.get("models", {}))


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

    if not _NAME.fullmatch(name):
        raise InputError(f"model name {name!r} is not allowed", "use lower-case letters, digits, '.', '_', '-'")
    _check_builtin_clash(name)
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
    models[name] = entry
    from inpaintbench.results import atomic_write_json

    atomic_write_json(registry_path(), {"format": REGISTRY_FORMAT, "version": 1, "models": models})
    _register_one(name, entry, overwrite=True)
    return entry


def _same_run(entry: dict[str, Any], run_dir: str | os.PathLike[str]) -> bool:
    """True when ``entry`` was registered from ``run_dir`` (re-registering a resumed run is an update)."""
    return entry.get("run_dir") == str(Path(run_dir).expanduser().resolve())


def check_can_register(name: str, run_dir: str | os.PathLike[str]) -> None:
    """Fail before training when ``name`` is taken by another run (not after hours of training)."""
    if not _NAME.fullmatch(name):
        raise InputError(f"model name {name!r} is not allowed", "use lower-case letters, digits, '.', '_', '-'")
    _check_builtin_clash(name)
    entry = local_models().get(name)
    if entry is not None and not _same_run(entry, run_dir):
        raise InputError(f"model {name!r} is already registered from {entry.get('run_dir')}",
                         f"choose another --name, or replace it later with `inpaintbench models register {name} "
                         f"{run_dir} --overwrite`")


def unregister(name: str) -> None:
    models = local_models()
    if name not in models:
        raise InputError(f"no local model {name!r}", f"registered: {', '.join(sorted(models)) or '(none)'}")
    del models[name]
    from inpaintbench.results import atomic_write_json

    atomic_write_json(registry_path(), {"format": REGISTRY_FORMAT, "version": 1, "models": models})


def _check_builtin_clash(name: str) -> None:
    from inpaintbench.models.base import _REGISTRY, list_models

    list_models()
    spec = _REGISTRY.get(name)
    if spec is not None and "local" not in spec.tags:
        raise InputError(f"{name!r} is a built-in model id", "choose another name for the fine-tune")


def _factory(name: str, entry: dict[str, Any]) -> Any:
    def make(**kwargs: Any) -> Any:
        from inpaintbench.weights import cached_sha256

        path = Path(entry["checkpoint"])
        if not path.is_file():
            raise WeightsError(f"model {name!r}: checkpoint {path} is missing",
                               f"re-register it: inpaintbench register-model {name} {entry.get('run_dir')}")
        digest = cached_sha256(path)
        if digest != entry["sha256"]:
            raise WeightsError(f"model {name!r}: {path} has sha256 {digest}, registered {entry['sha256']}",
                               f"re-register it: inpaintbench register-model {name} {entry.get('run_dir')}")
        if "weights" in kwargs:
            raise InputError(f"model {name!r} has its own weights", "drop --weights, or use --model mat")
        from inpaintbench.models.base import get_model_spec

        kwargs.setdefault("name", name)
        return get_model_spec("mat").factory(weights=str(path), **kwargs)

    return make


def _register_one(name: str, entry: dict[str, Any], overwrite: bool = False) -> None:
    from inpaintbench.models.base import _REGISTRY, register_model

    existing = _REGISTRY.get(name)
    if existing is not None and "local" not in existing.tags:
        return  # never shadow a built-in id
    summary = (f"MAT fine-tuned from {entry.get('init') or 'scratch'} on {entry.get('train_data')} "
               f"({entry.get('kimg')} kimg), local checkpoint")
    register_model(name, _factory(name, entry), summary, tags=("mat", "local", "fine-tuned"),
                   overwrite=overwrite or existing is not None)


def register_local_models() -> list[str]:
    """Register every entry of ``$INPAINTBENCH_HOME/models/registry.json`` as a model id.

    Called from ``inpaintbench/models/__init__.py``; cheap (reads one JSON file, imports no torch).
    """
    import warnings

    try:
        entries = local_models()
    except InputError as exc:  # every other model must keep working; registering will refuse
        warnings.warn(f"local models unavailable: {exc.message} (fix: {exc.fix})", stacklevel=2)
        return []
    names = []
    for name, entry in sorted(entries.items()):
        _register_one(name, entry)
        names.append(name)
    return names
