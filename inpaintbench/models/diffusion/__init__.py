"""Any diffusers inpainting pipeline as a model id: ``diffusers:<hub id or local dir>``.

Importing this package is cheap (no torch or diffusers import): :func:`register` only records the
``diffusers:`` prefix; the adapter module loads when a model is built.
"""

from __future__ import annotations

from typing import Any

LICENCE = "per pipeline (its model card; SD-inpainting: CreativeML OpenRAIL-M)"
#: no square brackets: listings render this through rich markup
SUMMARY = ("any diffusers inpainting pipeline: a local dir or a hub id in the HF cache (never downloaded); "
           "-O prompt= steps= guidance= strength= scheduler= precision=; needs the 'diffusers' extra")

_DONE = False


def _factory(target: str, **kwargs: Any) -> Any:
    from inpaintbench.models.diffusion.adapter import build_diffusers

    return build_diffusers(target, **kwargs)


def register() -> None:
    """Register the ``diffusers:`` model prefix (idempotent, imports nothing heavy)."""
    global _DONE
    if _DONE:
        return
    from inpaintbench.models.base import register_model_prefix

    register_model_prefix("diffusers", _factory, SUMMARY, tags=("diffusion", "optional"), licence=LICENCE,
                          native_size="per pipeline (SD: 512, SDXL: 1024)", overwrite=True)
    _DONE = True
