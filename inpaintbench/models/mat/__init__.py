"""MAT (Mask-Aware Transformer, Li et al. CVPR 2022) in plain PyTorch: networks, checkpoints, adapter.

Importing this package is cheap (no torch import, no network): the heavy modules load on first use
of the names below. :func:`register` adds the MAT model ids and weight specs to the registries.

Public names: ``Generator``, ``Discriminator``, ``set_impl``, ``load_generator``, ``load_discriminator``,
``read_mat_checkpoint``, ``save_mat_safetensors``, ``MATInpainter``, ``register``.
"""

from __future__ import annotations

from inpaintbench.lazy import lazy_getattr

_LAZY = {
    "Generator": "inpaintbench.models.mat.generator",
    "MappingNet": "inpaintbench.models.mat.generator",
    "Discriminator": "inpaintbench.models.mat.discriminator",
    "set_impl": "inpaintbench.models.mat.layers",
    "read_mat_checkpoint": "inpaintbench.models.mat.checkpoint",
    "load_generator": "inpaintbench.models.mat.checkpoint",
    "load_discriminator": "inpaintbench.models.mat.checkpoint",
    "save_mat_safetensors": "inpaintbench.models.mat.checkpoint",
    "MATCheckpoint": "inpaintbench.models.mat.checkpoint",
    "MATInpainter": "inpaintbench.models.mat.adapter",
}

__all__ = sorted([*_LAZY, "register"])


def register() -> None:
    """Register the MAT weight specs and model ids (idempotent)."""
    from inpaintbench.models.mat.registry import register as _register

    _register()


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
