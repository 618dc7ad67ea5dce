"""The one small interface every inpainting model implements, plus the model registry.

Models receive a batch of uint8 RGB images and boolean holes (True = missing) and return float
predictions in [0, 1]. Everything around them (padding to the model's constraints, compositing known
pixels back, quantisation to uint8) belongs to the harness, so that no model can silently change the
known region or the rounding convention.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from inpaintbench.errors import UnknownNameError

ENTRY_POINT_GROUP = "inpaintbench.models"


@runtime_checkable
class Inpainter(Protocol):
    """A batched inpainting model.

    Attributes:
        name: registry id (``telea``, ``mat-celebahq-256``...).
        native_resolution: the square size the model was trained at, or ``None`` for any size.
        pad_multiple: height and width given to :meth:`inpaint` must be multiples of this.
        value_range: what the network consumes internally, ``(0, 1)`` or ``(-1, 1)``; informative,
            the adapter converts.
    """

    name: str
    native_resolution: int | None
    pad_multiple: int
    value_range: tuple[float, float]

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        """Fill the holes.

        Args:
            images: uint8 array [B, H, W, 3], RGB. Pixels under the hole are undefined input.
            holes: bool array [B, H, W], True where pixels are missing.
            ids: stable per-sample ids, used by stochastic models to seed each sample so that the
                result does not depend on batch composition.

        Returns:
            float32 array [B, H, W, 3] in [0, 1]. The harness composites and quantises it.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """Everything the run manifest needs to reproduce this model (weights hash, kwargs...)."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build a model and what a listing should say about it."""

    name: str
    factory: Callable[..., Inpainter]
    summary: str
    needs_weights: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, ModelSpec] = {}
_ENTRY_POINTS_LOADED = False


def register_model(
    name: str,
    factory: Callable[..., Inpainter],
    summary: str,
    needs_weights: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    overwrite: bool = False,
) -> None:
    """Add a model to the registry (plug-ins call this from their entry point)."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelSpec(name, factory, summary, tuple(needs_weights), tuple(tags))


def _load_entry_points() -> None:
    """Import external plug-ins registered under the ``inpaintbench.models`` entry-point group.

    An entry point may name a callable that registers models, or an Inpainter factory, which is
    registered under the entry point's name.
    """
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if ep.name in _REGISTRY:
            continue
        if getattr(obj, "_inpaintbench_registers", False):
            obj()
        else:
            register_model(ep.name, obj, f"plug-in from {ep.value}")


def _ensure_builtin() -> None:
    # Importing the package registers the built-in models.
    import inpaintbench.models  # noqa: F401

    _load_entry_points()


def list_models() -> list[str]:
    """All registered model ids, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    _ensure_builtin()
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, list(_REGISTRY))
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> Inpainter:
    """Build a registered model by id (timm/pyiqa style)."""
    return get_model_spec(name).factory(**kwargs)
