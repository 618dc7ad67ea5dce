"""Local model registry: fine-tunes registered under their own model id, loaded on first lookup.

``$INPAINTBENCH_HOME/models/registry.json`` lists each registered model (its exported
``generator.safetensors``, sha256, the run it came from). :func:`register_local_models` turns every
entry into a model id that builds the MAT adapter on that file after checking the hash, so
``inpaintbench run --model mat-wikiart`` works in any later process. The model registry calls it on
the first lookup (not at import). Writing entries belongs to the trainer
(:func:`inpaintbench.train.registry.register_run`), which calls :func:`write_entry`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from inpaintbench.errors import InputError, WeightsError

REGISTRY_FORMAT = "inpaintbench-local-models"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")


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


def unregister(name: str) -> None:
    models = local_models()
    if name not in models:
        raise InputError(f"no local model {name!r}", f"registered: {', '.join(sorted(models)) or '(none)'}")
    del models[name]
    from inpaintbench.results import atomic_write_json

    atomic_write_json(registry_path(), {"format": REGISTRY_FORMAT, "version": 1, "models": models})


def check_builtin_clash(name: str) -> None:
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


def register_one(name: str, entry: dict[str, Any], overwrite: bool = False) -> None:
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
        register_one(name, entry)
        names.append(name)
    return names


def check_name(name: str) -> None:
    """A model id a fine-tune may take: the allowed characters, and not a built-in id."""
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(f"model name {name!r} is not allowed", "use lower-case letters, digits, '.', '_', '-'")
    check_builtin_clash(name)


def write_entry(name: str, entry: dict[str, Any]) -> None:
    """Add or replace ``name`` in the registry file (atomically) and in this process's model registry."""
    from inpaintbench.results import atomic_write_json

    models = local_models()
    models[name] = entry
    atomic_write_json(registry_path(), {"format": REGISTRY_FORMAT, "version": 1, "models": models})
    register_one(name, entry, overwrite=True)
