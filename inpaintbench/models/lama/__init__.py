"""LaMa (big-lama, Suvorov et al. WACV 2022) in plain PyTorch: network, checkpoint readers, adapter.

Importing this package is cheap (no torch import, no network): the heavy modules load on first use
of the names below. :func:`register` adds the ``lama`` model id and weight spec to the registries.

Public names: ``LamaGenerator``, ``BIG_LAMA_CONFIG``, ``read_lama_checkpoint``, ``load_lama_generator``,
``save_lama_safetensors``, ``LamaInpainter``, ``register``.
"""

from __future__ import annotations

from inpaintbench.lazy import lazy_getattr

_LAZY = {
    "LamaGenerator": "inpaintbench.models.lama.network",
    "BIG_LAMA_CONFIG": "inpaintbench.models.lama.network",
    "read_lama_checkpoint": "inpaintbench.models.lama.checkpoint",
    "load_lama_generator": "inpaintbench.models.lama.checkpoint",
    "save_lama_safetensors": "inpaintbench.models.lama.checkpoint",
    "LamaCheckpoint": "inpaintbench.models.lama.checkpoint",
    "LamaInpainter": "inpaintbench.models.lama.adapter",
    "build_network_input": "inpaintbench.models.lama.adapter",
    "pad_symmetric": "inpaintbench.models.lama.adapter",
}

__all__ = sorted([*_LAZY, "register"])


def register() -> None:
    """Register the LaMa weight spec and model id (idempotent)."""
    from inpaintbench.models.lama.registry import register as _register

    _register()


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
