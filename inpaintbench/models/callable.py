"""Any function or ``torch.nn.Module`` as an :class:`~inpaintbench.models.base.Inpainter`.

:func:`from_callable` states a model's conventions once (layout, value range, mask polarity, channel
order, device) and converts at the edge, so that the harness keeps its one contract: uint8 RGB
[B,H,W,3] + bool holes [B,H,W] (True = missing) in, float [B,H,W,3] in [0, 1] out. Nothing is
guessed: a wrong ``value_range`` shows up as outputs outside [0, 1], which the harness fails per
sample instead of clipping them into plausible numbers.

Identity. A function cannot be hashed reliably (closures, globals and weights it reads are not part
of its code), so :meth:`CallableInpainter.describe` records it as an *in-memory* model: its qualified
name, module, conventions and a fingerprint of its bytecode (and, for an ``nn.Module``, the sha256 of
its ``state_dict``). :func:`inpaintbench.evaluate` uses this to refuse reuse of a run directory it
cannot vouch for (see there).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from inpaintbench.errors import InputError

LAYOUTS = ("NHWC", "NCHW")
MASK_POLARITIES = ("hole", "known")
CHANNEL_ORDERS = ("RGB", "BGR")
VALUE_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))


def _torch() -> Any | None:
    """torch if it is already imported (a tensor or module can only come from an imported torch)."""
    return sys.modules.get("torch")


def is_torch_module(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.nn.Module)


def qualified_name(fn: Any) -> str:
    """``module.qualname`` of a function, bound method, partial or callable object."""
    import functools

    if isinstance(fn, functools.partial):
        return f"partial({qualified_name(fn.func)})"
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(fn).__name__)}"


def _code_digest(code: Any, h: Any, depth: int = 0) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code") and depth < 8:
            _code_digest(const, h, depth + 1)
        else:
            h.update(repr(const).encode())


def code_fingerprint(fn: Any) -> str | None:
    """sha256 of the bytecode behind ``fn`` (nested functions included), or None when there is none.

    Changing the function's code changes it; changing what the code reads (closure cells, globals,
    weights) does not: it is a guard against accidents, not an identity.
    """
    import functools

    if isinstance(fn, functools.partial):
        fn = fn.func
    if is_torch_module(fn):
        fn = type(fn).forward
    code = getattr(fn, "__code__", None)
    if code is None:
        call = type(fn).__dict__.get("__call__") or getattr(type(fn), "__call__", None)  # noqa: B004
        code = getattr(call, "__code__", None)
    if code is None:
        return None
    h = hashlib.sha256(b"inpaintbench-code-v1\n")
    _code_digest(code, h)
    return h.hexdigest()


def state_sha256(module: Any) -> str:
    """sha256 over the names, shapes, dtypes and bytes of an ``nn.Module``'s state_dict (CPU copies)."""
    h = hashlib.sha256(b"inpaintbench-state-v1\n")
    for key, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}\0{tuple(t.shape)}\0{t.dtype}\n".encode())
        h.update(t.view(-1).view(dtype=_torch().uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class CallableInpainter:
    """An Inpainter around a function (see :func:`from_callable` for the conventions)."""

    native_resolution: int | None

    def __init__(self, fn: Callable[..., Any], *, layout: str = "NHWC",
                 value_range: tuple[float, float] | None = None, mask: str = "hole", channels: str = "RGB",
                 device: str | None = None, name: str | None = None, pad_multiple: int = 1,
                 native_resolution: int | None = None, eval_mode: bool = True):
        if not callable(fn):
            raise InputError(f"{type(fn).__name__} object is not callable",
                             "pass a function (images, holes) -> prediction, or an nn.Module")
        if layout not in LAYOUTS:
            raise InputError(f"unknown layout {layout!r}", f"use one of: {', '.join(LAYOUTS)}")
        if mask not in MASK_POLARITIES:
            raise InputError(f"unknown mask polarity {mask!r}",
                             "use mask='hole' (1/True = missing pixel) or mask='known' (1 = known pixel)")
        if channels not in CHANNEL_ORDERS:
            raise InputError(f"unknown channel order {channels!r}", "use 'RGB' or 'BGR'")
        if value_range is not None:
            value_range = (float(value_range[0]), float(value_range[1]))
            if value_range not in VALUE_RANGES:
                raise InputError(f"unsupported value_range {value_range}",
                                 "use (0, 1), (-1, 1) or (0, 255); None = uint8 in, [0, 1] out (NHWC)")
        if layout == "NCHW" and value_range is None:
            value_range = (0.0, 1.0)
        self.fn = fn
        self.layout = layout
        self.value_range = value_range
        self.mask = mask
        self.channels = channels
        self.pad_multiple = int(pad_multiple)
        self.native_resolution = native_resolution
        self.eval_mode = eval_mode
        self.qualname = qualified_name(fn)
        self.name = name or self.qualname.rsplit(".", 1)[-1].replace("<lambda>", "lambda").strip("<>") or "callable"
        self._device = device

    # ------------------------------------------------------------------ conversion
    @property
    def device(self) -> str:
        """Where tensors are put for an NCHW function: the given device, else the module's, else cpu."""
        if self._device is not None:
            return str(self._device)
        if is_torch_module(self.fn):
            for p in self.fn.parameters():
                return str(p.device)
        return "cpu"

    def _to_input_range(self, images_u8: np.ndarray) -> np.ndarray:
        if self.value_range is None:
            return images_u8
        lo, hi = self.value_range
        return (images_u8.astype(np.float32) / np.float32(255.0)) * np.float32(hi - lo) + np.float32(lo)

    def _from_output_range(self, out: np.ndarray) -> np.ndarray:
        out = np.asarray(out)
        if self.value_range is None:
            return out
        lo, hi = self.value_range
        return ((out.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)

    def inpaint(self, images: np.ndarray, holes: np.ndarray, ids: list[str] | None = None) -> np.ndarray:
        x = images[..., ::-1] if self.channels == "BGR" else images
        x = self._to_input_range(np.ascontiguousarray(x))
        m = holes if self.mask == "hole" else ~holes
        if self.layout == "NHWC":
            out = self.fn(x, np.ascontiguousarray(m))
            out = _as_numpy(out)
        else:
            out = self._call_nchw(x, m)
        if self.channels == "BGR":
            out = out[..., ::-1]
        return np.ascontiguousarray(self._from_output_range(out))

    def _call_nchw(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        import torch

        device = torch.device(self.device)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)
        mt = torch.from_numpy(np.ascontiguousarray(m[:, None].astype(np.float32))).to(device)
        module = self.fn if is_torch_module(self.fn) else None
        was_training = bool(module.training) if module is not None else False
        try:
            if module is not None and self.eval_mode:
                module.eval()
            with torch.no_grad():
                out = self.fn(xt, mt)
        finally:
            if module is not None and was_training:
                module.train()
        out = _as_numpy(out)
        if out.ndim != 4 or out.shape[1] != 3:
            raise InputError(f"{self.qualname} returned shape {out.shape}, expected [B,3,H,W] for layout='NCHW'",
                             "return an NCHW tensor, or wrap it with layout='NHWC'")
        return out.transpose(0, 2, 3, 1)

    # ------------------------------------------------------------------ identity
    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": "in-memory callable",
            "in_memory": True,
            "callable": self.qualname,
            "code_sha256": code_fingerprint(self.fn),
            "layout": self.layout,
            "value_range": list(self.value_range) if self.value_range else "uint8 in, [0, 1] out",
            "mask": "1 = hole" if self.mask == "hole" else "1 = known pixel",
            "channels": self.channels,
            "pad_multiple": self.pad_multiple,
            "device": self.device,
            "identity": "name, qualified name and bytecode only: closures, globals and weights read by the "
                        "function are not hashed",
        }
        if is_torch_module(self.fn):
            d["state_sha256"] = state_sha256(self.fn)
            d["identity"] = "name, class, forward bytecode and state_dict sha256"
        return d


def _as_numpy(out: Any) -> np.ndarray:
    torch = _torch()
    if torch is not None and isinstance(out, torch.Tensor):
        return out.detach().to("cpu", torch.float32).numpy()
    return np.asarray(out)


def from_callable(fn: Callable[..., Any], layout: str = "NHWC", value_range: tuple[float, float] | None = None, *,
                  mask: str = "hole", channels: str = "RGB", device: str | None = None, name: str | None = None,
                  pad_multiple: int = 1, native_resolution: int | None = None,
                  eval_mode: bool = True) -> CallableInpainter:
    """Adapt ``fn`` to the Inpainter contract by stating its conventions.

    Args:
        fn: ``fn(images, mask) -> prediction``; a plain function or a ``torch.nn.Module``.
        layout: ``"NHWC"``: NumPy arrays, images [B,H,W,3] and mask bool [B,H,W]. ``"NCHW"``: torch
            tensors on ``device``, images float32 [B,3,H,W] and mask float32 [B,1,H,W]; run under
            ``torch.no_grad()`` (a module in eval mode, restored afterwards, unless ``eval_mode=False``).
        value_range: range of the images ``fn`` gets *and* returns: ``(0, 1)``, ``(-1, 1)`` or
            ``(0, 255)``. ``None`` (NHWC only): uint8 images in, float [0, 1] out. NCHW default ``(0, 1)``.
        mask: ``"hole"``: 1/True = missing pixel (inpaintbench, LaMa); ``"known"``: 1 = known pixel (MAT's
            network input).
        channels: ``"RGB"`` or ``"BGR"`` (OpenCV-style models); applied to inputs and outputs.
        device: where NCHW tensors go; default the module's parameters' device, else ``"cpu"``.
        name: the model's name in results (default: the function's name).
        pad_multiple: the harness reflect-pads inputs to a multiple of this and crops the output back.
        native_resolution: the size the model was trained at (a warning when evaluated at another).

    Pixels under the holes arrive painted white (the harness's masked input); the harness composites
    the known pixels back and quantises, so ``fn`` only has to fill the holes.
    """
    return CallableInpainter(fn, layout=layout, value_range=value_range, mask=mask, channels=channels,
                             device=device, name=name, pad_multiple=pad_multiple,
                             native_resolution=native_resolution, eval_mode=eval_mode)
