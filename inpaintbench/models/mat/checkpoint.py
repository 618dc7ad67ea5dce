"""Reading and writing MAT weights without ever executing anything stored in the file.

Three formats are read (detected from the file's first bytes, not its name):

* **official pickles** (``CelebA-HQ_256.pkl``, ``FFHQ_512.pkl``, ``Places_512_FullData.pkl``): plain
  pickles of a dict ``{G, D, G_ema, training_set_kwargs, ...}`` whose networks are StyleGAN2-ADA
  "persistent" objects. The official loader re-executes the Python source embedded in the pickle; here
  a restricted unpickler resolves only an explicit allow-list of globals, replaces the persistent-object
  constructor with an inert record (the embedded source is hashed, never compiled), and rebuilds
  tensors through ``torch.load(weights_only=True)``. The network config is read from the pickled
  constructor kwargs. Any other global (``os.system``, ``builtins.exec``...) is refused.
* **plain state dicts** saved with ``torch.save`` (e.g. a converted ``Places_512_FullData_G.pth``),
  loaded with ``weights_only=True``; the config is inferred from tensor shapes.
* **our safetensors** files written by :func:`save_mat_safetensors`, with the config in the header and
  in a ``<file>.json`` sidecar.

Layout: the restricted unpickler is :mod:`inpaintbench.models.mat.safe_pickle` (shared with the
other families), the format readers :mod:`~inpaintbench.models.mat.formats`, config inference
:mod:`~inpaintbench.models.mat.checkpoint_config`; this module builds networks from a file and writes
our safetensors. Every public name of the four is importable from here.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inpaintbench.atomic import atomic_write_bytes
from inpaintbench.errors import WeightsError
from inpaintbench.models.mat.checkpoint_config import (
    discriminator_config_from_pickle,
    generator_config_from_pickle,
    infer_discriminator_config,
    infer_generator_config,
    infer_kind,
)
from inpaintbench.models.mat.formats import (
    FORMAT_PICKLE,
    FORMAT_SAFETENSORS,
    FORMAT_STATE_DICT,
    NETWORKS,
    SAFETENSORS_FORMAT_TAG,
    MATCheckpoint,
    read_mat_checkpoint,
    sha256_of,
    sidecar_path,
    sniff_format,
)
from inpaintbench.models.mat.safe_pickle import (
    ALLOWED_GLOBALS,
    EasyDictStandIn,
    PickledObject,
    RefusedGlobal,
    RestrictedUnpickler,
    pickled_init_kwargs,
    pickled_state_dict,
    safe_load_pickle,
)

__all__ = [
    "ALLOWED_GLOBALS", "FORMAT_PICKLE", "FORMAT_SAFETENSORS", "FORMAT_STATE_DICT", "NETWORKS",
    "SAFETENSORS_FORMAT_TAG", "EasyDictStandIn", "MATCheckpoint", "PickledObject", "RefusedGlobal",
    "RestrictedUnpickler", "discriminator_config_from_pickle", "generator_config_from_pickle",
    "infer_discriminator_config", "infer_generator_config", "infer_kind", "load_discriminator",
    "load_generator", "pickled_init_kwargs", "pickled_state_dict", "read_mat_checkpoint",
    "safe_load_pickle", "save_mat_safetensors", "sha256_of", "sidecar_path", "sniff_format",
]


def _load_into(module: nn.Module, ckpt: MATCheckpoint) -> None:
    missing, unexpected = [], []
    own = module.state_dict()
    missing = [k for k in own if k not in ckpt.state_dict]
    unexpected = [k for k in ckpt.state_dict if k not in own]
    wrong = [k for k in own if k in ckpt.state_dict and tuple(own[k].shape) != tuple(ckpt.state_dict[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise WeightsError(f"{ckpt.path}: weights do not fit a MAT {ckpt.kind} with config {ckpt.config}: "
                           + "; ".join(parts), "is this a MAT checkpoint of the expected resolution?")
    module.load_state_dict(ckpt.state_dict, strict=True)


def load_generator(path: str | os.PathLike[str], which: str = "G_ema", device: str | torch.device = "cpu",
                   impl: str = "fast") -> tuple[nn.Module, MATCheckpoint]:
    """Build our :class:`Generator` from a checkpoint (strict key/shape match) in eval mode, no grad."""
    from inpaintbench.models.mat.generator import Generator
    from inpaintbench.models.mat.layers import set_impl

    ckpt = read_mat_checkpoint(path, which)
    if ckpt.kind != "generator":
        raise WeightsError(f"{ckpt.path}: holds a discriminator, not a generator", "pass a generator file")
    try:
        G = Generator(**ckpt.config)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{ckpt.path}: unsupported generator config {ckpt.config} ({e})",
                           "is this a MAT checkpoint?") from None
    _load_into(G, ckpt)
    set_impl(G, impl)
    return G.eval().requires_grad_(False).to(device), ckpt


def load_discriminator(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                       impl: str = "fast", **overrides: Any) -> tuple[nn.Module, MATCheckpoint]:
    """Build our :class:`Discriminator` from a checkpoint (``overrides`` e.g. ``mbstd_group_size=8``)."""
    from inpaintbench.models.mat.discriminator import Discriminator
    from inpaintbench.models.mat.layers import set_impl

    ckpt = read_mat_checkpoint(path, "D")
    try:
        D = Discriminator(**{**ckpt.config, **overrides})
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{ckpt.path}: unsupported discriminator config {ckpt.config} ({e})",
                           "is this a MAT checkpoint?") from None
    _load_into(D, ckpt)
    set_impl(D, impl)
    return D.eval().to(device), ckpt


# --------------------------------------------------------------------------------------------------
# writing


def save_mat_safetensors(module: nn.Module, path: str | os.PathLike[str],
                         metadata: dict[str, Any] | None = None) -> Path:
    """Write ``module``'s weights to ``path`` (safetensors) and a ``<path>.json`` sidecar, atomically.

    The config needed to rebuild the network travels in the safetensors header *and* the sidecar; the
    sidecar also records the file's sha256. ``metadata`` must be JSON-serialisable (e.g. provenance).
    """
    from safetensors.torch import save as st_save

    from inpaintbench.models.mat.discriminator import Discriminator
    from inpaintbench.models.mat.generator import Generator

    if isinstance(module, Generator):
        kind, network = "generator", (metadata or {}).get("network", "G_ema")
    elif isinstance(module, Discriminator):
        kind, network = "discriminator", "D"
    else:
        raise TypeError(f"expected a MAT Generator or Discriminator, got {type(module).__name__}")
    config = module.init_kwargs()
    user = json.loads(json.dumps(metadata or {}))  # fail early on non-JSON metadata
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    header = {"format": SAFETENSORS_FORMAT_TAG, "kind": kind, "network": str(network),
              "config": json.dumps(config, sort_keys=True), "metadata": json.dumps(user, sort_keys=True),
              "torch_version": torch.__version__}
    blob = st_save(tensors, metadata=header)
    p = Path(path).expanduser()
    atomic_write_bytes(p, blob)
    side = {"format": SAFETENSORS_FORMAT_TAG, "kind": kind, "network": network, "config": config,
            "metadata": user, "sha256": hashlib.sha256(blob).hexdigest(), "file": p.name,
            "num_tensors": len(tensors), "num_params": int(sum(t.numel() for t in tensors.values()))}
    atomic_write_bytes(sidecar_path(p), (json.dumps(side, indent=1, sort_keys=True) + "\n").encode())
    return p
