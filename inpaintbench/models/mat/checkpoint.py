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
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import tempfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inpaintbench.errors import WeightsError

FORMAT_PICKLE = "official-pkl"
FORMAT_STATE_DICT = "state-dict"
FORMAT_SAFETENSORS = "safetensors"
SAFETENSORS_FORMAT_TAG = "inpaintbench-mat-v1"
NETWORKS = ("G_ema", "G", "D")

# --------------------------------------------------------------------------------------------------
# restricted unpickler


class PickledObject:
    """Inert stand-in for an object in an official pickle: its class name and pickled state, nothing else."""

    def __init__(self, class_name: str, state: Any = None, module_src_sha256: str | None = None):
        self.class_name = class_name
        self.state = state if state is not None else {}
        self.module_src_sha256 = module_src_sha256

    def __setstate__(self, state: Any) -> None:  # BUILD opcode on NEWOBJ-created stand-ins
        self.state = state

    def __repr__(self) -> str:
        return f"<pickled {self.class_name}>"


class _InertClass(PickledObject):
    """Base of the stand-in classes for allowed ``torch.nn`` classes (containers, class references)."""

    qualname = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> _InertClass:
        obj = object.__new__(cls)
        PickledObject.__init__(obj, cls.qualname)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # never called by pickle's NEWOBJ
        pass


class EasyDictStandIn(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access, data only)."""


def _reconstruct_persistent_obj(meta: Any) -> PickledObject:
    """Replaces ``torch_utils.persistence._reconstruct_persistent_obj``: keep the data, drop the code."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("unsupported persistent object (only 'class' records are allowed)")
    src = meta.get("module_src")
    digest = hashlib.sha256(src.encode("utf-8")).hexdigest() if isinstance(src, str) else None
    return PickledObject(str(meta.get("class_name", "?")), meta.get("state"), digest)


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc?" or not isinstance(data, bytes):
        raise pickle.UnpicklingError("only numeric numpy scalars are allowed")
    return np.frombuffer(data, dtype=dtype)[0].item()


def _numpy_dtype(*args: Any) -> np.dtype:
    dt = np.dtype(*args)
    if dt.kind not in "biufc?":
        raise pickle.UnpicklingError(f"numpy dtype {dt} is not allowed (numeric dtypes only)")
    return dt


def _load_storage_bytes(data: bytes) -> Any:
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError("storage payload must be bytes")
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *_ignored: Any) -> torch.Tensor:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError("tensor without a tensor storage")
    return torch._utils._rebuild_tensor_v2(storage, offset, tuple(size), tuple(stride), False, OrderedDict())


def _rebuild_parameter(data: Any, *_ignored: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter without tensor data")
    return data


_TORCH_NN_CLASSES = (
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleDict",
    "torch.nn.modules.pooling.AdaptiveAvgPool2d",
    "torch.nn.modules.activation.Softmax",
    "torch.nn.modules.activation.GELU",
    "torch.nn.modules.activation.LeakyReLU",
    "torch.nn.modules.normalization.LayerNorm",
    "torch.nn.modules.dropout.Dropout",
    "torch.nn.modules.linear.Identity",
)
_STAND_INS: dict[str, type] = {q: type(q.rsplit(".", 1)[1], (_InertClass,), {"qualname": q})
                               for q in _TORCH_NN_CLASSES}

#: Every global an official MAT pickle may reference, mapped to what we use instead (mat-facts §5.1).
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDictStandIn,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    **{tuple(q.rsplit(".", 1)): cls for q, cls in _STAND_INS.items()},
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle references a global outside :data:`ALLOWED_GLOBALS`."""


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`; never imports a module or runs code from the file."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in a MAT pickle")


def safe_load_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; user-facing errors for refusals and damage."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return RestrictedUnpickler(f).load()
    except RefusedGlobal as e:
        raise WeightsError(
            f"{p}: refused to load: the pickle references {e}, which is not allowed in a MAT checkpoint "
            "(nothing from the file was executed)",
            "use an official MAT .pkl, a state-dict .pth or a safetensors file; never load untrusted pickles "
            "with plain pickle",
        ) from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, RuntimeError, UnicodeDecodeError, MemoryError) as e:
        raise WeightsError(f"{p}: not a readable MAT pickle, truncated or corrupt ({type(e).__name__}: {e})",
                           "download the file again and check its sha256") from None


def _state_of(obj: Any) -> dict[str, Any]:
    state = obj.state if isinstance(obj, PickledObject) else None
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        state = {**(state[0] or {}), **state[1]}  # (dict, slotstate)
    return state if isinstance(state, dict) else {}


def pickled_state_dict(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Walk a tree of pickled modules like ``nn.Module.state_dict()`` does (persistent entries only)."""
    out: dict[str, torch.Tensor] = OrderedDict()
    state = _state_of(obj)
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, torch.Tensor):
                raise WeightsError(f"pickled tensor {prefix}{name} is not a tensor", "the file is damaged")
            out[prefix + name] = t
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(pickled_state_dict(child, f"{prefix}{name}."))
    return out


def pickled_init_kwargs(obj: Any) -> dict[str, Any]:
    """The constructor kwargs the persistence wrapper recorded (``_init_kwargs``), as plain dicts."""
    state = _state_of(obj)
    kwargs = state.get("_init_kwargs") or {}
    args = state.get("_init_args") or ()

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, (int, float, str, bool)) or v is None:
            return v
        return repr(v)

    out = plain(dict(kwargs))
    if args:
        out["_init_args"] = plain(list(args))
    return out


# --------------------------------------------------------------------------------------------------
# configs


def generator_config_from_pickle(kw: dict[str, Any]) -> dict[str, Any]:
    """Our ``Generator`` kwargs from the official ``G._init_kwargs``.

    The official networks ignore ``synthesis_kwargs.channel_base`` etc. (fixed channel table), so only
    the latent sizes, resolution, channels and mapping depth are taken.
    """
    args = kw.get("_init_args") or []
    names = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"]
    merged = {**dict(zip(names, args, strict=False)), **{k: v for k, v in kw.items() if k in names}}
    missing = [n for n in names if n not in merged]
    if missing:
        raise WeightsError(f"pickled generator config lacks {missing}", "is this a MAT checkpoint?")
    mapping = kw.get("mapping_kwargs") or {}
    return {"img_resolution": int(merged["img_resolution"]), "z_dim": int(merged["z_dim"]),
            "w_dim": int(merged["w_dim"]), "c_dim": int(merged["c_dim"]),
            "img_channels": int(merged["img_channels"]),
            "mapping_layers": int(mapping.get("num_layers", 8))}


def discriminator_config_from_pickle(kw: dict[str, Any]) -> dict[str, Any]:
    args = kw.get("_init_args") or []
    names = ["c_dim", "img_resolution", "img_channels"]
    merged = {**dict(zip(names, args, strict=False)), **{k: v for k, v in kw.items() if k in names}}
    if "img_resolution" not in merged:
        raise WeightsError("pickled discriminator config lacks img_resolution", "is this a MAT checkpoint?")
    cfg = {"img_resolution": int(merged["img_resolution"]), "c_dim": int(merged.get("c_dim", 0)),
           "img_channels": int(merged.get("img_channels", 3)),
           "mbstd_group_size": kw.get("mbstd_group_size", 4),
           "mbstd_num_channels": int(kw.get("mbstd_num_channels", 1))}
    if kw.get("cmap_dim") is not None:
        cfg["cmap_dim"] = int(kw["cmap_dim"])
    return cfg


def _shape(sd: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"state dict lacks {key!r}", "is this a MAT checkpoint?")
    return tuple(sd[key].shape)


def infer_kind(sd: dict[str, torch.Tensor]) -> str:
    if any(k.startswith("synthesis.") for k in sd):
        return "generator"
    if any(k.startswith("Dis.") for k in sd):
        return "discriminator"
    raise WeightsError("state dict has neither generator ('synthesis.*') nor discriminator ('Dis.*') keys",
                       "is this a MAT checkpoint?")


def infer_generator_config(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Generator kwargs from tensor shapes alone (``num_heads`` is not visible in shapes: 6 assumed)."""
    blocks = [int(m.group(1)) for k in sd if (m := re.match(r"synthesis\.enc\.EncConv_Block_(\d+)x\1\.", k))]
    if not blocks:
        raise WeightsError("state dict lacks the synthesis encoder", "is this a MAT generator?")
    res = max(blocks)
    enc0 = _shape(sd, f"synthesis.enc.EncConv_Block_{res}x{res}.conv0.weight")
    fc = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
    c_dim = _shape(sd, "mapping.embed.weight")[1] if "mapping.embed.weight" in sd else 0
    fc0 = _shape(sd, "mapping.fc0.weight")
    w_dim = fc0[0]
    z_dim = fc0[1] - (w_dim if c_dim > 0 else 0)
    return {"img_resolution": res, "z_dim": z_dim, "w_dim": w_dim, "c_dim": c_dim,
            "img_channels": (enc0[1] - 1) // 2, "mapping_layers": len(fc),
            "channel_base": enc0[0] * res, "channel_max": _shape(sd, "synthesis.dec.Dec_16x16.conv0.weight")[0],
            "dim": _shape(sd, "synthesis.first_stage.conv_first.conv.weight")[0], "num_heads": 6}


def infer_discriminator_config(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Discriminator kwargs from shapes (``mbstd_group_size`` is not stored: default 4)."""
    n_blocks = len({int(m.group(1)) for k in sd if (m := re.match(r"Dis\.(\d+)\.conv0\.weight", k))})
    res = 2 ** (n_blocks + 2)
    first = _shape(sd, "Dis.0.conv.weight")
    cmax = _shape(sd, "fc0.weight")[0]
    last = _shape(sd, f"Dis.{n_blocks + 2}.weight") if f"Dis.{n_blocks + 2}.weight" in sd else None
    mbstd_channels = (last[1] - cmax) if last is not None else 0
    cfg: dict[str, Any] = {"img_resolution": res, "img_channels": first[1] - 1, "channel_base": first[0] * res,
                           "channel_max": cmax, "mbstd_num_channels": mbstd_channels, "mbstd_group_size": 4}
    if "mapping.embed.weight" in sd:
        cfg["c_dim"] = _shape(sd, "mapping.embed.weight")[1]
        cfg["cmap_dim"] = _shape(sd, "fc1.weight")[0]
    return cfg


# --------------------------------------------------------------------------------------------------
# checkpoint reading


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
    """sha256 of a file; uses the weights registry's size/mtime-keyed cache when available."""
    try:
        from inpaintbench.weights import cached_sha256
    except ImportError:  # pragma: no cover - weights module always ships with the package
        cached_sha256 = None
    if cached_sha256 is not None:
        try:
            return cached_sha256(path)
        except OSError:
            pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    _atomic_write_bytes(p, blob)
    side = {"format": SAFETENSORS_FORMAT_TAG, "kind": kind, "network": network, "config": config,
            "metadata": user, "sha256": hashlib.sha256(blob).hexdigest(), "file": p.name,
            "num_tensors": len(tensors), "num_params": int(sum(t.numel() for t in tensors.values()))}
    _atomic_write_bytes(sidecar_path(p), (json.dumps(side, indent=1, sort_keys=True) + "\n").encode())
    return p
