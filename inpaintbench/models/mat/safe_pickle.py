"""A restricted unpickler: read pickled checkpoints without ever running code stored in them.

``pickle`` resolves every global a file names, so a plain ``pickle.load``/``torch.load`` of an
untrusted checkpoint can run anything. :class:`RestrictedUnpickler` resolves only an explicit
allow-list (:data:`ALLOWED_GLOBALS`), turns StyleGAN2-ADA "persistent" objects (NVlabs
stylegan2-ada-pytorch ``torch_utils/persistence.py``, used by MAT's official pickles) into inert
records whose embedded source is hashed but never compiled, and rebuilds tensors through
``torch.load(weights_only=True)``. Other families subclass it with their own allow-lists
(:mod:`inpaintbench.models.lama.checkpoint`, :mod:`inpaintbench.models.migan.checkpoint`).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaintbench.errors import WeightsError

__all__ = [
    "ALLOWED_GLOBALS", "EasyDictStandIn", "PickledObject", "RefusedGlobal", "RestrictedUnpickler",
    "pickled_init_kwargs", "pickled_state_dict", "safe_load_pickle",
]


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

#: Every global an official MAT pickle may reference, mapped to what we use instead: StyleGAN2-ADA
#: ``torch_utils/persistence.py`` records, ``dnnlib.util.EasyDict``, containers and tensor rebuild helpers.
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
