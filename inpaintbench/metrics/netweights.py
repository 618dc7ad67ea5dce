"""Weight-registry entries of the issue-12 networks (DINOv2 ViT-L/14, CLIP ViT-L/14@336) and a safe
state-dict reader.

Neither Meta nor OpenAI/timm publishes a sha256 next to these files that we could check here, so
``sha256=None``: the hash is recorded when the file is first imported or fetched (trust on first
use, :mod:`inpaintbench.weights`) and any later change is refused. The run identity records the
actual hash, so a different file never resumes old numbers.

Files are read as *data*: a PyTorch zip through ``torch.load(weights_only=True)`` or a
safetensors file; TorchScript archives (OpenAI's ``ViT-L-14-336px.pt`` is one) are code and are
refused with the name of the file to use instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inpaintbench.errors import WeightsError
from inpaintbench.weights import WeightSpec, get_weight_spec, register_weights

DINOV2_WEIGHTS = "dinov2-vitl14"
CLIP_WEIGHTS = "clip-vitl14-336"

SPECS: tuple[WeightSpec, ...] = (
    WeightSpec(
        id=DINOV2_WEIGHTS,
        filename="dinov2_vitl14_pretrain.pth",
        urls=("https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",),
        sha256=None,
        licence="Apache-2.0 (facebookresearch/dinov2)",
        description="Meta's DINOv2 ViT-L/14 (LVD-142M) backbone, the file torch.hub's dinov2_vitl14 loads "
                    "(FD-DINOv2, PRDC-DINOv2). timm's vit_large_patch14_dinov2.lvd142m file (same weights, "
                    "timm key names) is accepted too. sha256 not published: recorded on first import.",
    ),
    WeightSpec(
        id=CLIP_WEIGHTS,
        filename="open_clip_vit_large_patch14_clip_336_openai.safetensors",
        urls=("https://huggingface.co/timm/vit_large_patch14_clip_336.openai/resolve/main/"
              "open_clip_model.safetensors",),
        sha256=None,
        licence="MIT (openai/CLIP)",
        description="OpenAI CLIP ViT-L/14@336 in open_clip's layout (safetensors, the file open_clip loads "
                    "for ViT-L-14-336/openai) for CMMD. OpenAI's own ViT-L-14-336px.pt is TorchScript "
                    "and is not loaded. sha256 not published: recorded on first import.",
    ),
)


def register() -> None:
    """Add the specs unless already there (tests may have replaced them with random-weight specs)."""
    from inpaintbench.weights import _REGISTRY

    for spec in SPECS:
        if spec.id not in _REGISTRY:
            register_weights(spec)


register()


def read_state_dict(path: str | Path, weight_id: str) -> dict[str, Any]:
    """Tensors of a PyTorch zip (``weights_only``) or safetensors file; anything else is a WeightsError."""
    import torch

    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    fix = (f"import the right file with `inpaintbench weights import {weight_id} PATH` "
           f"({get_weight_spec(weight_id).filename})")
    if head[:2] == b"PK":
        import zipfile

        with zipfile.ZipFile(path) as z:
            if any(n.endswith("/constants.pkl") or n.endswith("/code/") or "/code/" in n for n in z.namelist()):
                raise WeightsError(f"{path} is a TorchScript archive (executable code), not a state dict", fix)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure means "not a plain state dict"
            raise WeightsError(f"{path} is not a plain PyTorch state dict ({type(e).__name__}: {e})", fix) from None
    else:
        try:
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        except Exception as e:  # noqa: BLE001
            raise WeightsError(f"{path} is neither a PyTorch state dict nor a safetensors file "
                               f"({type(e).__name__})", fix) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightsError(f"{path} does not hold a flat tensor state dict", fix)
    return state
