"""Reading and writing MI-GAN weights without ever executing anything stored in the file.

The released checkpoints (``migan_256_places2.pt``, ``migan_512_places2.pt``, ``migan_256_ffhq.pt``) are
plain ``torch.save(Generator.state_dict())`` files: no prefix, no wrapper, float32 (MI-GAN notes §3).
Formats are detected from the first bytes, not from the file name:

* **torch.save archives** (zip, or the legacy pickle stream): read with ``torch.load(weights_only=True)``,
  PyTorch's restricted unpickler (tensors, dicts and primitive types only). A global outside its
  allow-list (``os.system``...) is refused before anything runs.
* **TorchScript** archives (IOPaint's ``migan_traced.pt``) are zips too, but loading one runs its code:
  refused, with the conversion route in the message. **ONNX** files (the Hugging Face ``migan*.onnx``)
  are refused likewise: they hold a graph, not our state dict.
* **raw pickles** of a state dict: :class:`MIGANUnpickler`, a narrower allow-list over the project's
  :class:`~inpaintbench.models.mat.checkpoint.RestrictedUnpickler` (tensors and ``OrderedDict`` only).
* **our safetensors** written by :func:`save_migan_safetensors` (resolution in the header); any other
  safetensors file with the official keys works too.

The resolution is read from the keys (``encoder.b{R}.fromrgb.weight``), and the key set and every shape
must equal our :class:`~inpaintbench.models.migan.network.MIGANGenerator`'s (strict loading).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inpaintbench.errors import WeightsError
from inpaintbench.models.mat.checkpoint import ALLOWED_GLOBALS, RefusedGlobal, RestrictedUnpickler, sha256_of
from inpaintbench.models.migan.release import DRIVE

FORMAT_TORCH = "torch-state-dict"
FORMAT_PICKLE = "pickle-state-dict"
FORMAT_SAFETENSORS = "safetensors"
SAFETENSORS_FORMAT_TAG = "inpaintbench-migan-v1"

_TORCHSCRIPT_FIX = (
    "use the official PyTorch state dict (migan_256_places2.pt / migan_512_places2.pt from the MI-GAN "
    f"authors' Google Drive folder {DRIVE}). A TorchScript file is a "
    "program: if you trust it, convert it in a separate, throw-away environment with `python -c \"import torch; "
    "m = torch.jit.load('migan_traced.pt', map_location='cpu'); torch.save(m.state_dict(), 'migan_512.pth')\"` "
    "and pass the .pth (its keys must be the official generator's, possibly under one common prefix)")
_ONNX_FIX = ("ONNX files (huggingface.co/andraniksargsyan/migan) hold a graph, not a state dict: use the official "
             f"PyTorch checkpoint from the MI-GAN authors' Google Drive folder {DRIVE} instead")


@dataclass
class MIGANCheckpoint:
    """A MI-GAN generator state dict read from a file, plus what is known about where it came from."""

    path: Path
    format: str
    resolution: int
    state_dict: dict[str, torch.Tensor]
    sha256: str | None = None
    prefix_stripped: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "resolution": self.resolution,
                "sha256": self.sha256, "prefix_stripped": self.prefix_stripped}


# --------------------------------------------------------------------------------------------------
# restricted unpickling of raw pickles

#: the only globals a pickled state dict needs (a subset of the MAT allow-list, same inert rebuilders)
MIGAN_GLOBALS: dict[tuple[str, str], Any] = {k: ALLOWED_GLOBALS[k] for k in (
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch.storage", "_load_from_bytes"),
)}


class MIGANUnpickler(RestrictedUnpickler):
    """Resolves only :data:`MIGAN_GLOBALS`; never imports a module or runs code from the file."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return MIGAN_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


def _refused(path: Path, what: str) -> WeightsError:
    return WeightsError(
        f"{path}: refused to load: the file references {what}, which a MI-GAN state dict never needs "
        "(nothing from the file was executed)",
        "use the official migan_*.pt or a safetensors file; never open untrusted checkpoints with plain "
        "pickle or torch.load(weights_only=False)")


def _read_raw_pickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return MIGANUnpickler(f).load()
    except RefusedGlobal as e:
        raise _refused(path, str(e)) from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, UnicodeDecodeError, MemoryError) as e:
        raise WeightsError(f"{path}: not a readable pickle, truncated or corrupt ({type(e).__name__}: {e})",
                           "download the file again and check its sha256") from None


# --------------------------------------------------------------------------------------------------
# formats


def sniff_format(path: Path) -> str:
    """Decide the format from the first bytes (extensions lie); refuse TorchScript and ONNX."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) < 8:
        raise WeightsError(f"{path}: file is empty or truncated ({len(head)} bytes)", "download it again")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise WeightsError(f"{path}: damaged zip archive ({e})", "download it again") from None
        # torch.jit.save archives carry constants.pkl and the model's Python source under code/
        if any(n.endswith("/constants.pkl") or n == "constants.pkl" or "/code/" in n for n in names):
            raise WeightsError(f"{path}: is a TorchScript archive; loading it would run the code stored in it, "
                               "so it is refused (nothing was executed)", _TORCHSCRIPT_FIX)
        return FORMAT_TORCH
    n = int.from_bytes(head[:8], "little")
    if 0 < n < (1 << 27) and head[8:9] == b"{":
        return FORMAT_SAFETENSORS
    if head[:1] == b"\x80":
        # legacy torch.save files start with a pickled magic number (a LONG1 integer)
        return FORMAT_TORCH if head[2:3] == b"\x8a" else FORMAT_PICKLE
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # ONNX protobuf: field 1 (ir_version) varint
        raise WeightsError(f"{path}: looks like an ONNX model, which this port does not read", _ONNX_FIX)
    raise WeightsError(f"{path}: unknown file format (not a torch.save archive, pickle or safetensors file)",
                       "pass the official migan_*.pt, a state-dict .pth or a safetensors file")


def _read_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).splitlines()[0] if str(e) else ""
        if "weights only" in str(e).lower() or "global" in str(e).lower():
            found = re.search(r"GLOBAL ([\w.]+)", str(e))
            raise _refused(path, found.group(1) if found else f"a global outside the allow-list ({first})") from None
        raise WeightsError(f"{path}: not a readable torch state dict ({first})", "download it again") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise WeightsError(f"{path}: not a readable torch state dict, truncated or corrupt "
                           f"({type(e).__name__}: {first})", "download or export the file again") from None


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file, truncated or corrupt ({e})",
                           "write the file again with save_migan_safetensors") from None
    return sd, header


def _unwrap(path: Path, obj: Any) -> dict[str, torch.Tensor]:
    """The tensor dict inside what was loaded (a plain state dict, or one under ``state_dict``)."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors ({type(obj).__name__})",
                           "save the generator's state_dict() (torch.save(G.state_dict(), PATH))")
    return dict(obj)


def _strip_prefix(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Drop one prefix shared by every key (``module.``, ``generator.``...) when the official names lack it."""
    if any(k.startswith(("synthesis.", "encoder.")) for k in sd):
        return sd, ""
    first = {k.split(".", 1)[0] for k in sd}
    if len(first) == 1 and all("." in k for k in sd):
        prefix = next(iter(first)) + "."
        inner = {k[len(prefix):]: v for k, v in sd.items()}
        if any(k.startswith(("synthesis.", "encoder.")) for k in inner):
            return inner, prefix
    return sd, ""


def infer_resolution(path: Path, sd: dict[str, torch.Tensor]) -> int:
    if any("insert_zeros" in k for k in sd):
        raise WeightsError(f"{path}: an old MI-GAN checkpoint (before 2023-10-22, '...upsample.insert_zeros' keys)",
                           "download the updated file from the same Google Drive folder (MI-GAN issue #2); it "
                           "has '...upsample.filter_const' keys")
    found = [int(m.group(1)) for k in sd if (m := re.fullmatch(r"encoder\.b(\d+)\.fromrgb\.weight", k))]
    if len(found) != 1:
        sample = ", ".join(list(sd)[:3])
        raise WeightsError(f"{path}: not a MI-GAN inference generator state dict (no single "
                           f"'encoder.b<R>.fromrgb.weight'; keys start {sample})",
                           "pass the official migan_*.pt (Generator.state_dict())")
    return found[0]


def read_migan_checkpoint(path: str | os.PathLike[str], compute_sha256: bool = True) -> MIGANCheckpoint:
    """Read a MI-GAN generator state dict from any supported file (see the module docstring).

    Raises :class:`~inpaintbench.errors.WeightsError` for missing, refused, truncated or foreign files.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"MI-GAN weights file {p} does not exist", "check the path")
    fmt = sniff_format(p)
    meta: dict[str, Any] = {}
    if fmt == FORMAT_SAFETENSORS:
        sd, header = _read_safetensors(p)
        meta = json.loads(header["metadata"]) if "metadata" in header else {}
    elif fmt == FORMAT_PICKLE:
        sd = _unwrap(p, _read_raw_pickle(p))
    else:
        sd = _unwrap(p, _read_torch(p))
    sd, prefix = _strip_prefix(sd)
    bad = [k for k, v in sd.items() if not v.is_floating_point()]
    if bad:
        raise WeightsError(f"{p}: non-floating tensors in a MI-GAN state dict (e.g. {bad[0]})", "is this MI-GAN?")
    ckpt = MIGANCheckpoint(p, fmt, infer_resolution(p, sd), sd, prefix_stripped=prefix, metadata=meta)
    if compute_sha256:
        ckpt.sha256 = sha256_of(p)
    return ckpt


def load_migan(path: str | os.PathLike[str], resolution: int | None = None, device: str | torch.device = "cpu",
               impl: str = "fast") -> tuple[torch.nn.Module, MIGANCheckpoint]:
    """Our :class:`MIGANGenerator` with the file's weights (strict key/shape match), eval mode, no grad."""
    from inpaintbench.models.migan.network import RESOLUTIONS, MIGANGenerator, set_impl

    ckpt = read_migan_checkpoint(path)
    if resolution is not None and ckpt.resolution != resolution:
        raise WeightsError(f"{ckpt.path}: is a MI-GAN {ckpt.resolution} checkpoint, but migan-{resolution} was asked "
                           "for (the network is fixed-resolution)", f"use --model migan-{ckpt.resolution}")
    if ckpt.resolution not in RESOLUTIONS:
        raise WeightsError(f"{ckpt.path}: MI-GAN at {ckpt.resolution} px is not a released configuration",
                           f"use a checkpoint for one of {RESOLUTIONS}")
    G = MIGANGenerator(ckpt.resolution)
    own = G.state_dict()
    missing = [k for k in own if k not in ckpt.state_dict]
    unexpected = [k for k in ckpt.state_dict if k not in own]
    wrong = [f"{k} {tuple(ckpt.state_dict[k].shape)} != {tuple(own[k].shape)}" for k in own
             if k in ckpt.state_dict and ckpt.state_dict[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {label} (e.g. {', '.join(v[:3])})" for label, v in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if v]
        raise WeightsError(f"{ckpt.path}: weights do not fit MI-GAN {ckpt.resolution}: " + "; ".join(parts),
                           "pass the official migan_*.pt of that resolution (Generator.state_dict())")
    G.load_state_dict(ckpt.state_dict, strict=True)
    ckpt.state_dict = {}  # the module holds the weights now; do not keep a second copy
    set_impl(G, impl)
    return G.eval().requires_grad_(False).to(device), ckpt


# --------------------------------------------------------------------------------------------------
# writing


def save_migan_safetensors(module: torch.nn.Module, path: str | os.PathLike[str],
                           metadata: dict[str, Any] | None = None) -> Path:
    """Write ``module``'s state dict (official keys) to ``path`` as safetensors, atomically; the resolution
    and JSON ``metadata`` (provenance) travel in the header."""
    from safetensors.torch import save as st_save

    from inpaintbench.models.migan.network import MIGANGenerator

    if not isinstance(module, MIGANGenerator):
        raise TypeError(f"expected a MIGANGenerator, got {type(module).__name__}")
    user = json.dumps(metadata or {}, sort_keys=True)  # fails early on non-JSON metadata
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    header = {"format": SAFETENSORS_FORMAT_TAG, "resolution": str(module.resolution), "metadata": user,
              "torch_version": torch.__version__}
    blob = st_save(tensors, metadata=header)
    from inpaintbench.atomic import atomic_write_bytes

    return atomic_write_bytes(Path(path).expanduser(), blob)

