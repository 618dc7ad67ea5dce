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
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np

from inpaintbench.errors import InputError, UnknownNameError

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


def check_inpaint_batch(who: str, images: Any, holes: Any, ids: list[str] | None,
                        mask_hint: str = "convert masks to bool at the edge") -> None:
    """Refuse arrays that break the :class:`Inpainter` contract, naming the model and what to pass
    (the network adapters' one input check)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise InputError(f"{who}: images must be uint8 [B,H,W,3], got {getattr(images, 'dtype', type(images))} "
                         f"{getattr(images, 'shape', '')}", "pass RGB uint8 images")
    if not isinstance(holes, np.ndarray) or holes.dtype != np.bool_ or holes.shape != images.shape[:3]:
        raise InputError(f"{who}: holes must be bool {images.shape[:3]} with True = hole, got "
                         f"{getattr(holes, 'dtype', type(holes))} {getattr(holes, 'shape', '')}", mask_hint)
    if ids is not None and len(ids) != images.shape[0]:
        raise InputError(f"{who}: got {len(ids)} ids for {images.shape[0]} images", "pass one id per image")


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build a model and what a listing should say about it."""

    name: str
    factory: Callable[..., Inpainter]
    summary: str
    needs_weights: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)
    #: shown by ``inpaintbench models``: the weights' licence and the size the network was trained at
    licence: str = ""
    native_size: str = ""


_REGISTRY: dict[str, ModelSpec] = {}
#: ``prefix`` -> factory for open-ended ids such as ``diffusers:<hub id or dir>``; the factory gets the
#: part after the colon as its first argument.
_PREFIXES: dict[str, ModelSpec] = {}
_ENTRY_POINTS_LOADED = False


def register_model(
    name: str,
    factory: Callable[..., Inpainter],
    summary: str,
    needs_weights: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    overwrite: bool = False,
    licence: str = "",
    native_size: str = "",
) -> None:
    """Add a model to the registry (plug-ins call this from their entry point)."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelSpec(name, factory, summary, tuple(needs_weights), tuple(tags), licence, native_size)


def register_model_prefix(
    prefix: str,
    factory: Callable[..., Inpainter],
    summary: str,
    tags: tuple[str, ...] = (),
    overwrite: bool = False,
    licence: str = "",
    native_size: str = "",
) -> None:
    """Register a family of open-ended ids ``<prefix>:<target>`` (``diffusers:stabilityai/...``).

    ``create_model("<prefix>:<target>", **kw)`` calls ``factory(target, **kw)``.
    """
    if prefix in _PREFIXES and not overwrite:
        raise ValueError(f"model prefix {prefix!r} is already registered")
    _PREFIXES[prefix] = ModelSpec(f"{prefix}:<id>", factory, summary, (), tuple(tags), licence, native_size)


def list_model_prefixes() -> list[ModelSpec]:
    """The open-ended model families (``diffusers:``...), for listings."""
    _ensure_builtin()
    return [_PREFIXES[k] for k in sorted(_PREFIXES)]


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


_LOCAL_LOADED = False
#: set by the inpaintbench.models package: registers the fine-tunes of the local registry (first lookup)
_LOCAL_LOADER: Callable[[], Any] | None = None


def _ensure_builtin() -> None:
    """Built-in ids (importing the package registers them), plug-ins, and on the first lookup the
    fine-tunes of the local registry (:mod:`inpaintbench.models.local`)."""
    # Python imports the package inpaintbench.models (which registers the built-in ids) before any
    # of its modules, so the built-ins are there; the package also installs the local-model loader.
    global _LOCAL_LOADED
    _load_entry_points()
    if not _LOCAL_LOADED and _LOCAL_LOADER is not None:
        _LOCAL_LOADED = True
        _LOCAL_LOADER()


def list_models() -> list[str]:
    """All registered model ids, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; a ``<prefix>:<target>`` id gets a spec bound to its target."""
    _ensure_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, target = name.partition(":")
    if sep and prefix in _PREFIXES:
        family = _PREFIXES[prefix]
        return ModelSpec(name, partial(family.factory, target), family.summary, (), family.tags, family.licence,
                         family.native_size)
    raise UnknownNameError("model", name, [*_REGISTRY, *(f"{p}:<id>" for p in _PREFIXES)])


def create_model(name: str, **kwargs: Any) -> Inpainter:
    """Build a registered model by id (timm/pyiqa style)."""
    return get_model_spec(name).factory(**kwargs)
