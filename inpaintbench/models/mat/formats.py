"""Reading MAT weights in three formats, detected from the file's first bytes (not its name).

* **official pickles** (``CelebA-HQ_256.pkl``, ``FFHQ_512.pkl``, ``Places_512_FullData.pkl``): read with
  :class:`~inpaintbench.models.mat.safe_pickle.RestrictedUnpickler`; the config comes from the
  pickled constructor kwargs.
* **plain state dicts** saved with ``torch.save``, loaded with ``weights_only=True``; the config is
  inferred from tensor shapes.
* **our safetensors** files written by :func:`~inpaintbench.models.mat.checkpoint.save_mat_safetensors`,
  with the config in the header and in a ``<file>.json`` sidecar written with the file.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inpaintbench.errors import WeightsError
from inpaintbench.file_hashes import cached_sha256
from inpaintbench.models.mat.checkpoint_config import (
    discriminator_config_from_pickle,
    generator_config_from_pickle,
    infer_discriminator_config,
    infer_generator_config,
    infer_kind,
)
from inpaintbench.models.mat.safe_pickle import (
    PickledObject,
    pickled_init_kwargs,
    pickled_state_dict,
    safe_load_pickle,
)

FORMAT_PICKLE = "official-pkl"
FORMAT_STATE_DICT = "state-dict"
FORMAT_SAFETENSORS = "safetensors"
SAFETENSORS_FORMAT_TAG = "inpaintbench-mat-v1"
NETWORKS = ("G_ema", "G", "D")

__all__ = [
    "FORMAT_PICKLE", "FORMAT_SAFETENSORS", "FORMAT_STATE_DICT", "MATCheckpoint", "NETWORKS",
    "SAFETENSORS_FORMAT_TAG", "read_mat_checkpoint", "sha256_of", "sidecar_path", "sniff_format",
]


@dataclass
class MATCheckpoint:
    """One network's weights read from a file, plus what is known about where they came from."""

    path: Path
    format: str
    network: str  # "G_ema", "G" or "D"
    kind: str  # "generator" or "discriminator"
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "network": self.network, "kind": self.kind,
                "sha256": self.sha256, "config": dict(self.config)}


def sha256_of(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, through the hash records of :mod:`inpaintbench.file_hashes` (kept in the cache
    directory, never beside the user's file), so a big checkpoint is hashed once."""
    return cached_sha256(path)


def sniff_format(path: Path) -> str:
    """Decide the file format from its first bytes (extensions lie)."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 8:
        raise WeightsError(f"{path}: file is empty or truncated ({len(head)} bytes)", "download it again")
    if head[:4] == b"PK\x03\x04":
        return FORMAT_STATE_DICT  # torch.save zip archive
    n = int.from_bytes(head[:8], "little")
    if 0 < n < (1 << 27) and head[8:9] == b"{":
        return FORMAT_SAFETENSORS
    if head[:1] == b"\x80":
        # legacy torch.save files start with a pickled magic number (a LONG1 integer)
        return FORMAT_STATE_DICT if head[2:3] == b"\x8a" else FORMAT_PICKLE
    raise WeightsError(f"{path}: unknown file format (not a pickle, torch.save archive or safetensors file)",
                       "pass an official MAT .pkl, a state-dict .pth or a safetensors file")


def _pick_network(path: Path, available: dict[str, Any], which: str) -> Any:
    if which not in NETWORKS:
        raise WeightsError(f"unknown network {which!r}", f"use one of {', '.join(NETWORKS)}")
    if available.get(which) is None:
        present = sorted(k for k in NETWORKS if available.get(k) is not None)
        raise WeightsError(f"{path}: has no {which!r} network (present: {present or 'none'})",
                           f"ask for one of {present}" if present else "is this a MAT checkpoint?")
    return available[which]


def _read_pickle(path: Path, which: str) -> MATCheckpoint:
    data = safe_load_pickle(path)
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: pickle holds a {type(data).__name__}, not a MAT snapshot dict",
                           "is this a MAT checkpoint?")
    net = _pick_network(path, data, which)
    if not isinstance(net, PickledObject):
        raise WeightsError(f"{path}: {which} is not a pickled network", "is this a MAT checkpoint?")
    sd = pickled_state_dict(net)
    kw = pickled_init_kwargs(net)
    kind = "discriminator" if which == "D" else "generator"
    config = discriminator_config_from_pickle(kw) if kind == "discriminator" else generator_config_from_pickle(kw)
    meta = {"class_name": net.class_name, "init_kwargs": kw, "module_src_sha256": net.module_src_sha256}
    tsk = data.get("training_set_kwargs")
    if isinstance(tsk, dict):
        meta["training_set_kwargs"] = pickled_init_kwargs(PickledObject("", {"_init_kwargs": tsk}))
    return MATCheckpoint(path, FORMAT_PICKLE, which, kind, sd, config, metadata=meta)


def _is_tensor_dict(d: Any) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def _read_torch(path: Path, which: str, which_given: bool) -> MATCheckpoint:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise WeightsError(f"{path}: not a readable torch state dict, truncated or corrupt "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})",
                           "download or export the file again") from None
    network = which
    if isinstance(obj, dict) and any(k in obj for k in NETWORKS) and not _is_tensor_dict(obj):
        sd = _pick_network(path, obj, which)
    elif isinstance(obj, dict) and _is_tensor_dict(obj.get("state_dict")):
        sd = obj["state_dict"]
    else:
        sd = obj
    if not _is_tensor_dict(sd):
        raise WeightsError(f"{path}: holds no state dict of tensors", "save the network's state_dict()")
    kind = infer_kind(sd)
    if network == "G_ema" and not which_given:
        network = "G_ema" if kind == "generator" else "D"
    _check_kind(path, kind, network)
    config = infer_generator_config(sd) if kind == "generator" else infer_discriminator_config(sd)
    return MATCheckpoint(path, FORMAT_STATE_DICT, network, kind, dict(sd), config)


def _check_kind(path: Path, kind: str, network: str) -> None:
    want = "discriminator" if network == "D" else "generator"
    if kind != want:
        raise WeightsError(f"{path}: holds a {kind}, but {network} ({want}) was asked for",
                           "pass the matching file or network name")


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".json")


def _read_safetensors(path: Path, which: str, which_given: bool) -> MATCheckpoint:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file, truncated or corrupt ({e})",
                           "write the file again with save_mat_safetensors") from None
    side: dict[str, Any] = {}
    sc = sidecar_path(path)
    if sc.is_file():
        try:
            side = json.loads(sc.read_text())
        except ValueError as e:
            raise WeightsError(f"{sc}: metadata sidecar is not valid JSON ({e})", "rewrite or delete it") from None
    config = json.loads(header["config"]) if "config" in header else side.get("config")
    kind = header.get("kind") or side.get("kind") or infer_kind(sd)
    if side.get("config") is not None and config != side["config"]:
        raise WeightsError(f"{path}: header config and sidecar {sc.name} disagree", "rewrite the sidecar")
    if config is None:
        config = infer_generator_config(sd) if kind == "generator" else infer_discriminator_config(sd)
    network = header.get("network") or side.get("network") or ("D" if kind == "discriminator" else "G_ema")
    if which_given:
        _check_kind(path, kind, which)
    user = json.loads(header["metadata"]) if "metadata" in header else side.get("metadata", {})
    return MATCheckpoint(path, FORMAT_SAFETENSORS, network, kind, sd, config, metadata=user or {})


def read_mat_checkpoint(path: str | os.PathLike[str], which: str | None = None,
                        compute_sha256: bool = True) -> MATCheckpoint:
    """Read one network's state dict and config from an official pickle, a state dict or our safetensors.

    ``which``: ``"G_ema"`` (default for pickles), ``"G"`` or ``"D"``. Raises
    :class:`~inpaintbench.errors.WeightsError` for missing, refused, truncated or foreign files.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"MAT weights file {p} does not exist", "check the path")
    fmt = sniff_format(p)
    which_given = which is not None
    w = which or "G_ema"
    if fmt == FORMAT_PICKLE:
        ckpt = _read_pickle(p, w)
    elif fmt == FORMAT_SAFETENSORS:
        ckpt = _read_safetensors(p, w, which_given)
    else:
        ckpt = _read_torch(p, w, which_given)
    if compute_sha256:
        ckpt.sha256 = sha256_of(p)
    return ckpt
