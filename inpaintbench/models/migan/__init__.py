"""MI-GAN (Sargsyan et al., ICCV 2023) inference generator in plain PyTorch: network, checkpoints, adapter.

Importing this package is cheap (no torch import, no file access): the heavy modules load on first use
of the names below. :func:`register` adds the ``migan-256`` / ``migan-512`` model ids and weight specs.

Public names: ``MIGANGenerator``, ``set_impl``, ``read_migan_checkpoint``, ``load_migan``,
``save_migan_safetensors``, ``MIGANCheckpoint``, ``MIGANInpainter``, ``build_migan``, ``register``.
"""

from __future__ import annotations

from inpaintbench.lazy import lazy_getattr

_LAZY = {
    "MIGANGenerator": "inpaintbench.models.migan.network",
    "set_impl": "inpaintbench.models.migan.network",
    "IMPLS": "inpaintbench.models.migan.network",
    "read_migan_checkpoint": "inpaintbench.models.migan.checkpoint",
    "load_migan": "inpaintbench.models.migan.checkpoint",
    "save_migan_safetensors": "inpaintbench.models.migan.checkpoint",
    "MIGANCheckpoint": "inpaintbench.models.migan.checkpoint",
    "MIGANInpainter": "inpaintbench.models.migan.adapter",
    "build_migan": "inpaintbench.models.migan.adapter",
}

__all__ = sorted([*_LAZY, "register"])


def register() -> None:
    """Register the MI-GAN weight specs and model ids (idempotent, no torch import)."""
    from inpaintbench.models.migan.registry import register as _register

    _register()


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
