"""Registry entries for MAT: weight specs of the released checkpoints and the model ids.

The official checkpoints sit on a OneDrive share that cannot be fetched automatically and have no
published hashes: ``inpaintbench weights import <id> PATH`` records the sha256 on first import.
Importing this module does not import torch.
"""

from __future__ import annotations

from functools import partial
from typing import Any

ONEDRIVE = ("https://mycuhk-my.sharepoint.com/:f:/g/personal/1155137927_link_cuhk_edu_hk/"
            "EuY30ziF-G5BvwziuHNFzDkBVC6KBPRg69kCeHIu-BXORA?e=7OwJyE")
LICENCE = ("MAT code and models: 'for research purposes only' (fenglinglwb/MAT README); built on "
           "NVIDIA StyleGAN2-ADA (NVIDIA Source Code License)")

#: id -> (file name, description, training data and resolution)
RELEASED = {
    "mat-celebahq-256": ("CelebA-HQ_256.pkl", "MAT CelebA-HQ 256x256 (retrained release, 2022-06-19)"),
    "mat-ffhq-512": ("FFHQ_512.pkl", "MAT FFHQ 512x512"),
    "mat-places-512": ("Places_512_FullData.pkl", "MAT Places365 512x512 trained on the full 8M images"),
}

_DONE = False


def _instructions(filename: str, weight_id: str) -> str:
    return (f"download {filename} by hand from the MAT authors' OneDrive folder {ONEDRIVE} "
            f"(linked from github.com/fenglinglwb/MAT), then run `inpaintbench weights import {weight_id} "
            f"/path/to/{filename}` (no sha256 is published: the hash is recorded at import)")


def _registered_factory(weight_id: str, weights: Any = None, **kwargs: Any) -> Any:
    from inpaintbench.models.mat.adapter import build_mat

    return build_mat(weights, weights_id=None if weights is not None else weight_id, name=weight_id, **kwargs)


def _local_factory(weights: Any = None, **kwargs: Any) -> Any:
    from inpaintbench.models.mat.adapter import build_mat

    kwargs.setdefault("name", "mat")
    return build_mat(weights, **kwargs)


def register() -> None:
    """Register weight specs and the ``mat``, ``mat-celebahq-256``, ``mat-ffhq-512``, ``mat-places-512`` ids."""
    global _DONE
    if _DONE:
        return
    from inpaintbench.models.base import register_model
    from inpaintbench.weights import WeightSpec, register_weights

    for weight_id, (filename, description) in RELEASED.items():
        register_weights(WeightSpec(
            id=weight_id, filename=filename, urls=(), sha256=None, size=None, licence=LICENCE,
            description=description, manual_instructions=_instructions(filename, weight_id)))
        register_model(weight_id, partial(_registered_factory, weight_id),
                       f"{description} (official G_ema through a restricted unpickler; pure PyTorch)",
                       needs_weights=(weight_id,), tags=("mat", "gan", "transformer"), overwrite=True,
                       licence="research only (MAT README); NVIDIA Source Code License parts",
                       native_size=weight_id.rsplit("-", 1)[-1])
    register_model("mat", _local_factory,
                   "MAT from any local checkpoint: weights=PATH (.pkl, state-dict .pth or our .safetensors)",
                   tags=("mat", "gan", "transformer"), overwrite=True, licence="the checkpoint's",
                   native_size="the checkpoint's (256 or 512)")
    _DONE = True
