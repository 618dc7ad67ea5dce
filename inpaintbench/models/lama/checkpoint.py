"""Reading and writing LaMa generator weights without executing anything stored in the file.

Formats, detected from the bytes (never the name):

* the official **Lightning** ``best.ckpt`` (a ``torch.save`` zip): its ``data.pkl`` is read by a
  :class:`~inpaintbench.models.mat.checkpoint.RestrictedUnpickler` subclass with a LaMa allow-list.
  Tensor records are rebuilt from the zip's ``data/<key>`` entries. The hyper-parameters (an omegaconf
  ``DictConfig``), ``hparams_type`` and the callbacks (keyed by Lightning classes) reference non-torch
  globals: these become inert stand-ins (never imported); only ``state_dict["generator.*"]`` is kept;
* ``big-lama.zip`` as published (``big-lama/models/best.ckpt`` inside): the inner checkpoint is read;
* a plain **state dict** ``.pth`` (bare generator keys or ``generator.*``), through the same reader;
* IOPaint's **TorchScript** ``big-lama.pt``: never loaded with ``torch.jit.load`` (that compiles the
  code stored in the archive). Only the tensors of its ``data.pkl`` are read (``__torch__.*`` classes
  become stand-ins) and used when they fit the generator under some attribute prefix; otherwise the
  file is refused with the conversion recipe;
* **our safetensors** (:func:`save_lama_safetensors`), with the config in the header.

Anything else a pickle names (``os.system``, ``builtins.exec``, ``subprocess.Popen``...) is refused.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import io
import json
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inpaintbench.errors import WeightsError
from inpaintbench.models.mat.checkpoint import ALLOWED_GLOBALS as _MAT_GLOBALS
from inpaintbench.models.mat.checkpoint import PickledObject, RefusedGlobal, RestrictedUnpickler, sha256_of

FORMAT_LIGHTNING = "lightning-ckpt"
FORMAT_STATE_DICT = "state-dict"
FORMAT_TORCHSCRIPT = "torchscript-tensors"
FORMAT_SAFETENSORS = "safetensors"
SAFETENSORS_FORMAT_TAG = "inpaintbench-lama-v1"
CKPT_PREFIX = "generator."
CONVERT_HINT = ("convert it once, where you trust the file: `m = torch.jit.load('big-lama.pt'); "
                "torch.save(m.state_dict(), 'big-lama-sd.pth')`, then pass big-lama-sd.pth; or use the official "
                "big-lama.zip / best.ckpt")

# --------------------------------------------------------------------------------------------------
# restricted unpickling of torch zip archives


class StandIn(PickledObject):
    """Inert stand-in for a class the file names but we never import (omegaconf, Lightning, __torch__...)."""

    qualname = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        obj = object.__new__(cls)
        PickledObject.__init__(obj, cls.qualname, {})
        obj.args = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE calls cls(*args): keep the record only
        pass

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEMS on mapping-like stand-ins
        if not isinstance(self.state, dict):
            self.state = {}
        self.state[key] = value

    def append(self, value: Any) -> None:  # APPENDS on list-like stand-ins
        self.__dict__.setdefault("items", []).append(value)

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)


#: Modules whose globals become stand-ins: they only describe training-time objects (advimman/lama: the Lightning
#: checkpoint's hyper-parameters).
STAND_IN_MODULES = ("omegaconf", "pytorch_lightning", "lightning", "lightning_fabric", "typing", "pathlib",
                    "argparse", "__torch__")
_STAND_IN_CACHE: dict[tuple[str, str], type] = {}

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Protocol-2 pickles spell bytes as ``_codecs.encode(str, 'latin1')``; nothing else is allowed."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError("only _codecs.encode(str, 'latin1') is allowed")
    return codecs.encode(obj, "latin1")


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{k: v for k, v in _MAT_GLOBALS.items() if k[0] in ("collections", "numpy", "numpy.core.multiarray",
                                                       "numpy._core.multiarray")},
    ("torch._utils", "_rebuild_tensor_v2"): _MAT_GLOBALS[("torch._utils", "_rebuild_tensor_v2")],
    ("torch._utils", "_rebuild_parameter"): _MAT_GLOBALS[("torch._utils", "_rebuild_parameter")],
    ("torch._utils", "_rebuild_parameter_with_state"): _MAT_GLOBALS[("torch._utils", "_rebuild_parameter")],
    ("_codecs", "encode"): _codecs_encode,
    **{("builtins", n): getattr(__import__("builtins"), n)
       for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bool", "bytes")},
    **{("torch", n): _StorageType(dt) for n, dt in _STORAGE_DTYPES.items()},
}


class LamaUnpickler(RestrictedUnpickler):
    """The project's restricted unpickler with the LaMa allow-list and torch-zip storage records.

    ``records`` maps a storage key to a callable returning its bytes (the zip's ``data/<key>`` entry).
    """

    def __init__(self, file: Any, records: Any = None):
        super().__init__(file)
        self._records = records
        self._storages: dict[str, Any] = {}  # tensors that share a storage (views) keep sharing it

    def find_class(self, module: str, name: str) -> Any:
        # protocol-2 files spell Python 3 names the Python 2 way (__builtin__.dict); the mapping only
        # renames Python 2 modules, so it is applied always (the C unpickler does not expose the protocol)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module.split(".", 1)[0] in STAND_IN_MODULES:
            key = (module, name)
            if key not in _STAND_IN_CACHE:
                _STAND_IN_CACHE[key] = type(re.sub(r"\W", "_", name) or "StandIn", (StandIn,),
                                            {"qualname": f"{module}.{name}"})
            return _STAND_IN_CACHE[key]
        raise RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if self._records is None or not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id (not a torch zip storage record)")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"bad storage record {pid[:2]!r}")
        cached = self._storages.get(key)
        if cached is not None and cached.dtype == storage_type.dtype:
            return cached
        data = self._records(key)
        itemsize = torch.empty((), dtype=storage_type.dtype).element_size()
        if len(data) != numel * itemsize:
            raise pickle.UnpicklingError(f"storage {key}: {len(data)} bytes for {numel} elements")
        raw = torch.UntypedStorage.from_buffer(data, dtype=torch.uint8) if data else torch.UntypedStorage(0)
        storage = torch.storage.TypedStorage(wrap_storage=raw, dtype=storage_type.dtype, _internal=True)
        self._storages[key] = storage
        return storage


@dataclass
class TorchArchive:
    """What a ``torch.save`` / TorchScript zip holds, read without executing it."""

    obj: Any
    is_torchscript: bool


def _archive_root(names: list[str]) -> str | None:
    roots = [n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    return roots[0] if len(roots) == 1 else None


def read_torch_archive(zf: zipfile.ZipFile, label: str) -> TorchArchive:
    """Unpickle ``<root>/data.pkl`` of a torch zip with :class:`LamaUnpickler` (refusals are WeightsErrors)."""
    names = zf.namelist()
    root = _archive_root(names)
    if root is None:
        raise WeightsError(f"{label}: a zip, but not a torch.save archive (no <root>/data.pkl)",
                           "pass the official big-lama.zip, best.ckpt, a state-dict .pth or our .safetensors")
    if f"{root}/byteorder" in names and zf.read(f"{root}/byteorder").strip() not in (b"", b"little"):
        raise WeightsError(f"{label}: big-endian tensor records are not supported", "re-save on a little-endian host")
    torchscript = any(n.startswith(f"{root}/code/") for n in names) or f"{root}/constants.pkl" in names

    def record(key: str) -> bytes:
        try:
            return zf.read(f"{root}/data/{key}")
        except KeyError:
            raise pickle.UnpicklingError(f"missing tensor record data/{key}") from None

    try:
        obj = LamaUnpickler(io.BytesIO(zf.read(f"{root}/data.pkl")), record).load()
    except RefusedGlobal as e:
        raise WeightsError(
            f"{label}: refused to load: the pickle references {e}, which a LaMa checkpoint does not need "
            "(nothing from the file was executed)",
            "use the official big-lama.zip / best.ckpt, a state-dict .pth or our .safetensors; never open "
            "untrusted checkpoints with torch.load(weights_only=False)") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, UnicodeDecodeError, MemoryError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{label}: not a readable checkpoint, truncated or corrupt ({type(e).__name__}: {e})",
                           "download the file again and check its sha256") from None
    return TorchArchive(obj, torchscript)


def script_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a TorchScript module tree (stand-ins whose state dicts hold attributes), by dotted path."""
    out: dict[str, torch.Tensor] = OrderedDict()
    state = obj.state if isinstance(obj, PickledObject) else None
    if not isinstance(state, dict):
        return out
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            out[prefix + str(name)] = value
        elif isinstance(value, PickledObject):
            out.update(script_tensors(value, f"{prefix}{name}."))
    return out


# --------------------------------------------------------------------------------------------------
# checkpoints


@dataclass
class LamaCheckpoint:
    """Generator weights read from a file (bare keys, e.g. ``model.1.ffc.convl2l.weight``) and provenance."""

    path: Path
    format: str
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "sha256": self.sha256, "config": dict(self.config),
                **({"member": self.metadata["member"]} if "member" in self.metadata else {})}


def _is_tensor_dict(d: Any) -> bool:
    return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def generator_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``generator.*`` entries with the prefix removed; a bare generator state dict as it is."""
    gen = {k[len(CKPT_PREFIX):]: v for k, v in sd.items() if k.startswith(CKPT_PREFIX)}
    if gen:
        return gen
    return {k: v for k, v in sd.items() if k.startswith("model.")}


def _shape(sd: dict[str, torch.Tensor], key: str, label: str) -> tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"{label}: state dict lacks {key!r}", "is this a LaMa (FFC ResNet) generator?")
    return tuple(sd[key].shape)


def infer_config(sd: dict[str, torch.Tensor], label: str = "state dict") -> dict[str, Any]:
    """Our :class:`LamaGenerator` kwargs from tensor shapes (stem, strided FFCs, blocks, split)."""
    stem = _shape(sd, "model.1.ffc.convl2l.weight", label)
    idx = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.", k))})
    blocks = [i for i in idx if f"model.{i}.conv1.ffc.convl2l.weight" in sd]
    if not blocks:
        raise WeightsError(f"{label}: no FFC ResNet blocks ('model.<i>.conv1.ffc.*')", "is this a LaMa generator?")
    n_down = blocks[0] - 2
    cl = _shape(sd, f"model.{blocks[0]}.conv1.ffc.convl2l.weight", label)[0]
    cg = _shape(sd, f"model.{blocks[0]}.conv1.ffc.convl2g.weight", label)[0]
    out = _shape(sd, f"model.{blocks[-1] + 3 * n_down + 3}.weight", label)
    dim = cl + cg
    ratio = cg / dim if int(dim * (cg / dim)) == cg else (cg + 0.5) / dim  # int(C * r) must give cg back
    ngf = stem[0]
    return {"input_nc": stem[1], "output_nc": out[0], "ngf": ngf, "n_downsampling": n_down,
            "n_blocks": len(blocks), "ratio": ratio,
            "max_features": 1024 if dim == ngf * 2 ** n_down else dim}


def _from_torchscript(label: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The generator's tensors under whatever attribute path the traced wrapper put it."""
    prefixes = sorted({k[: k.index("model.1.ffc.convl2l.weight")] for k in tensors
                       if k.endswith("model.1.ffc.convl2l.weight")}, key=len)
    for p in prefixes:
        sd = {k[len(p):]: v for k, v in tensors.items() if k.startswith(p) and k[len(p):].startswith("model.")}
        try:
            infer_config(sd, label)
        except WeightsError:
            continue
        return sd
    raise WeightsError(f"{label}: a TorchScript archive whose tensors do not form a LaMa generator (it is never "
                       "executed, so only its tensors can be used)", CONVERT_HINT)


def _read_zip(zf: zipfile.ZipFile, label: str) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]]:
    names = zf.namelist()
    if _archive_root(names) is None:
        inner = sorted((n for n in names if n.endswith(".ckpt") and not n.endswith("/")),
                       key=lambda n: (not n.endswith("models/best.ckpt"), n))
        if not inner:
            raise WeightsError(f"{label}: a zip without a torch archive or a .ckpt inside",
                               "pass big-lama.zip as published, or the best.ckpt from it")
        with zf.open(inner[0]) as f:
            blob = f.read()
        with zipfile.ZipFile(io.BytesIO(blob)) as z2:
            fmt, sd, meta = _read_zip(z2, f"{label}!{inner[0]}")
        return fmt, sd, {**meta, "member": inner[0]}
    arc = read_torch_archive(zf, label)
    if arc.is_torchscript:
        return FORMAT_TORCHSCRIPT, _from_torchscript(label, script_tensors(arc.obj)), {}
    obj = arc.obj
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and _is_tensor_dict(obj.get("state_dict")):
        fmt = FORMAT_LIGHTNING if any(k.startswith(CKPT_PREFIX) for k in obj["state_dict"]) else FORMAT_STATE_DICT
        for k in ("epoch", "global_step", "pytorch-lightning_version"):
            if isinstance(obj.get(k), (int, str)):
                meta[k] = obj[k]
        sd = obj["state_dict"]
    elif _is_tensor_dict(obj):
        fmt, sd = FORMAT_STATE_DICT, obj
    else:
        raise WeightsError(f"{label}: holds no state dict of tensors", "save the generator's state_dict()")
    return fmt, generator_keys(sd), meta


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file, truncated or corrupt ({e})",
                           "write it again with save_lama_safetensors") from None
    config = json.loads(header["config"]) if "config" in header else None
    return generator_keys(sd), config, json.loads(header.get("metadata", "{}"))


def read_lama_checkpoint(path: str | os.PathLike[str], compute_sha256: bool = True) -> LamaCheckpoint:
    """Read the generator's state dict and config from any supported file (see the module docstring)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"LaMa weights file {p} does not exist", "check the path")
    with open(p, "rb") as f:
        head = f.read(16)
    if len(head) < 8:
        raise WeightsError(f"{p}: file is empty or truncated ({len(head)} bytes)", "download it again")
    n = int.from_bytes(head[:8], "little")
    meta: dict[str, Any] = {}
    config = None
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(p) as zf:
                fmt, sd, meta = _read_zip(zf, str(p))
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise WeightsError(f"{p}: damaged zip ({e})", "download the file again and check its sha256") from None
    elif 0 < n < (1 << 27) and head[8:9] == b"{":
        fmt = FORMAT_SAFETENSORS
        sd, config, meta = _read_safetensors(p)
    elif head[:1] == b"\x80":
        # a bare pickle (legacy torch.save, or a hand-made one): globals are checked before anything else
        try:
            with open(p, "rb") as f:
                LamaUnpickler(f, None).load()
        except RefusedGlobal as e:
            raise WeightsError(f"{p}: refused to load: the pickle references {e} (nothing from the file was "
                               "executed)", "use the official big-lama.zip / best.ckpt or our .safetensors") from None
        except Exception:  # noqa: BLE001 - any failure of a legacy file ends in the same advice
            pass
        raise WeightsError(f"{p}: a bare pickle (legacy torch.save format), which is not read",
                           "re-save it with a current torch.save (zip format) where you trust it, or use our "
                           ".safetensors")
    else:
        raise WeightsError(f"{p}: unknown file format (not a torch zip, Lightning .ckpt or safetensors file)",
                           "pass big-lama.zip, best.ckpt, a state-dict .pth or our .safetensors")
    if not sd:
        raise WeightsError(f"{p}: no generator weights ('generator.*' or 'model.*' keys)",
                           "is this a LaMa checkpoint?")
    config = config or infer_config(sd, str(p))
    ckpt = LamaCheckpoint(p, fmt, sd, config, metadata=meta)
    if compute_sha256:
        ckpt.sha256 = sha256_of(p)
    return ckpt


def load_state_strict(module: nn.Module, sd: dict[str, torch.Tensor], label: str) -> None:
    """Strict key and shape check (the official predict.py loads with strict=False, which hides mistakes)."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})"
                 for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise WeightsError(f"{label}: weights do not fit the LaMa generator: " + "; ".join(parts),
                           "is this a big-lama (FFC ResNet) generator checkpoint?")
    module.load_state_dict(sd, strict=True)


def load_lama_generator(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                        impl: str = "fast") -> tuple[nn.Module, LamaCheckpoint]:
    """Build our :class:`LamaGenerator` from a checkpoint (strict keys and shapes), eval mode, no grad."""
    from inpaintbench.models.lama.network import LamaGenerator

    ckpt = read_lama_checkpoint(path)
    try:
        gen = LamaGenerator(**ckpt.config, impl=impl)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{ckpt.path}: unsupported generator config {ckpt.config} ({e})",
                           "is this a LaMa checkpoint?") from None
    load_state_strict(gen, ckpt.state_dict, str(ckpt.path))
    ckpt.state_dict = {}  # the module holds the weights now
    return gen.eval().requires_grad_(False).to(device), ckpt


def save_lama_safetensors(module: nn.Module, path: str | os.PathLike[str],
                          metadata: dict[str, Any] | None = None) -> Path:
    """Write the generator's state dict (bare keys) to safetensors, config and metadata in the header."""
    from safetensors.torch import save as st_save

    config = module.init_kwargs()  # type: ignore[operator]
    user = json.loads(json.dumps(metadata or {}))
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    blob = st_save(tensors, metadata={"format": SAFETENSORS_FORMAT_TAG, "config": json.dumps(config, sort_keys=True),
                                      "metadata": json.dumps(user, sort_keys=True),
                                      "torch_version": torch.__version__})
    from inpaintbench.atomic import atomic_write_bytes

    return atomic_write_bytes(Path(path).expanduser(), blob)
