"""Registry entries for LaMa (big-lama): the weight spec of the released checkpoint and the model id.

The official weights are ``big-lama.zip`` on Hugging Face (advimman/lama README; it unzips to
``big-lama/config.yaml`` + ``big-lama/models/best.ckpt``). Nobody publishes a sha256, so the hash is
recorded when the file is first fetched or imported (trust on first use, as for MAT). Our reader opens
the zip directly, so either the zip or the ``best.ckpt`` inside it may be imported. Importing this
module does not import torch.
"""

from __future__ import annotations

from typing import Any

WEIGHT_ID = "lama"
MODEL_ID = "lama"
FILENAME = "big-lama.zip"
URL = "https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip"
LICENCE = "Apache-2.0 (advimman/lama LICENSE; the released weights carry no separate licence file)"
NATIVE_SIZE = "256 (trained on 256 crops; fully convolutional, any size >= 16, padded to a multiple of 8)"
DESCRIPTION = "LaMa big-lama (Suvorov et al., WACV 2022), Places365-Challenge, FFC ResNet generator"

_DONE = False


def _factory(weights: Any = None, **kwargs: Any) -> Any:
    """``--model lama``: the registered big-lama weights, or ``weights=PATH`` (``--weights``) instead."""
    from inpaintbench.models.lama.adapter import build_lama

    kwargs.setdefault("name", MODEL_ID)
    return build_lama(weights, weights_id=None if weights is not None else WEIGHT_ID, **kwargs)


def register() -> None:
    """Register the ``lama`` weight spec and model id (idempotent)."""
    global _DONE
    if _DONE:
        return
    from inpaintbench.models.base import register_model
    from inpaintbench.weights import WeightSpec, register_weights

    register_weights(WeightSpec(
        id=WEIGHT_ID, filename=FILENAME, urls=(URL,), sha256=None, size=None, licence=LICENCE,
        description=DESCRIPTION + " (zip with big-lama/models/best.ckpt)",
        manual_instructions=(f"or download {URL} by hand (also linked from github.com/advimman/lama) and run "
                             f"`inpaintbench weights import {WEIGHT_ID} /path/to/{FILENAME}` (the zip or the "
                             "best.ckpt inside it; no sha256 is published: it is recorded at import)")))
    register_model(MODEL_ID, _factory,
                   f"{DESCRIPTION}; pure PyTorch, Lightning best.ckpt read without executing code "
                   "(--weights PATH: .ckpt, state-dict .pth or our .safetensors)",
                   needs_weights=(WEIGHT_ID,), tags=("lama", "fourier", "cnn"), overwrite=True,
                   licence="Apache-2.0", native_size="256 (any size, pad to 8)")
    _DONE = True
