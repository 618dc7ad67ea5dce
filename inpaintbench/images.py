"""Reading and writing images in the one canonical form: uint8 RGB, shape [H, W, 3].

Everything that is not already 8-bit RGB is either converted *with a warning naming the file*
(:class:`ImageConversionWarning`) or refused with an :class:`~inpaintbench.errors.InputError` that
names the file and the fix. Nothing is converted silently, because a benchmark that quietly drops an
alpha channel or truncates 16-bit data compares something other than what the user thinks.

Decisions (recorded here so that manifests can point to them):

* **Formats**: anything Pillow decodes (PNG, JPEG, WebP, BMP, TIFF, GIF...). Folder datasets only
  pick up ``.png/.jpg/.jpeg/.webp``. Multi-frame files use the first frame, with a warning.
* **Grayscale** (``L``, ``1``, 16-bit ``I;16``) is replicated to three channels, with a warning.
  **Palette** (``P``) images are expanded through their palette, with a warning. ``CMYK`` and
  ``YCbCr`` are converted by Pillow, with a warning.
* **Alpha** (``RGBA``, ``LA``, ``PA``, palette transparency): with ``alpha="refuse"`` (default) an
  image whose alpha is *fully opaque* (all 255) is accepted and the channel dropped, with a warning;
  any real transparency raises :class:`InputError` naming the fix ``--alpha composite-white``. With
  ``alpha="composite-white"`` the colour is composited over white with exact integer arithmetic:
  ``out = (c*a + 255*(255-a) + 127) // 255`` (round half up of ``(c*a + 255*(255-a)) / 255``).
* **16 bits per channel** (PNG gray, RGB, RGBA): scaled to 8 bits as ``round(v / 257)``, computed
  exactly as ``(v + 128) // 257``, with a warning. Pillow would silently keep only the high byte of a
  48-bit RGB PNG (``floor(v / 256)``), so 16-bit colour PNGs are decoded with OpenCV instead. For
  16-bit alpha, colour and alpha are both scaled to 8 bits first, then composited.
* **ICC profiles**: no colour management. Pixel values are used as stored. A profile whose
  description does not mention sRGB (e.g. Display P3, Adobe RGB) gives a warning, because then the
  stored values are not sRGB and metrics compare them as if they were. sRGB profiles are silent.
* **EXIF orientation**: *not applied*. The array is the pixel grid as stored, as Pillow, pyspng (MAT)
  and ``cv2.IMREAD_UNCHANGED`` give it. A mask is aligned with the stored grid, and mask files carry no
  EXIF, so rotating only the image would misalign the pair. Note that plain ``cv2.imread`` (LaMa)
  *does* apply the tag. An orientation tag other than 1 gives a warning.
* **Corrupt or truncated** files: the full decode is forced (``Image.load``) and any failure is an
  :class:`InputError` naming the file. (This relies on ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` being
  left at its default ``False``; if some other library sets it, truncated files decode as grey.)
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from inpaintbench.errors import InputError

#: The image files every folder input reads (``folder:`` datasets, ``score``, mask imports): one list,
#: so a TIFF is never read by one command and silently skipped by another.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

ALPHA_POLICIES = ("refuse", "composite-white")

_EXIF_ORIENTATION = 0x0112
_ALPHA_FIX = "pass --alpha composite-white to composite it over white, or flatten the image yourself"


class ImageConversionWarning(UserWarning):
    """An image was converted to 8-bit RGB (grayscale, palette, 16-bit, opaque alpha, ICC, EXIF...)."""


def _warn(path: Path, what: str) -> None:
    warnings.warn(f"{path}: {what}", ImageConversionWarning, stacklevel=3)


def to_uint8_from_16bit(values: np.ndarray) -> np.ndarray:
    """Scale 16-bit values to 8 bits as ``round(v / 257)`` (exact; ties cannot occur since 257 is odd)."""
    v = np.asarray(values).astype(np.uint32)
    return ((v + 128) // 257).astype(np.uint8)


def composite_over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite uint8 colour [H, W, C] with uint8 alpha [H, W] over white, exact integer rounding."""
    c = rgb.astype(np.uint32)
    a = alpha.astype(np.uint32)[..., None]
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def _check_alpha(path: Path, color: np.ndarray, alpha: np.ndarray, policy: str) -> np.ndarray:
    if policy == "composite-white":
        return composite_over_white(color, alpha)
    n_transparent = int(np.count_nonzero(alpha != 255))
    if n_transparent:
        raise InputError(
            f"{path}: image has transparency ({n_transparent} of {alpha.size} pixels have alpha < 255)",
            _ALPHA_FIX,
        )
    _warn(path, "alpha channel is fully opaque; dropped")
    return color


def _check_policy(alpha: str) -> None:
    if alpha not in ALPHA_POLICIES:
        raise InputError(f"unknown alpha policy {alpha!r}", f"use one of: {', '.join(ALPHA_POLICIES)}")


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise InputError(f"{path}: no such file", "check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image", "pass an image file")
    try:
        return Image.open(path)
    except UnidentifiedImageError as e:
        raise InputError(f"{path}: not a readable image ({e})", "re-export it as PNG or JPEG") from e
    except Image.DecompressionBombError as e:
        raise InputError(f"{path}: image is too large to decode safely ({e})", "downscale it first") from e
    except OSError as e:
        raise InputError(f"{path}: cannot open image ({e})", "check the file and its permissions") from e


def _rawmode(img: Image.Image) -> str:
    if not img.tile:
        return ""
    args = img.tile[0].args if hasattr(img.tile[0], "args") else img.tile[0][3]
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _is_16bit_color_png(img: Image.Image) -> bool:
    """A 16-bit-per-channel PNG that Pillow would silently reduce to 8 bits by dropping the low byte."""
    return img.format == "PNG" and img.mode in ("RGB", "RGBA", "LA") and ";16" in _rawmode(img)


def _note_metadata(path: Path, img: Image.Image) -> None:
    """Warn about ICC profiles that are not sRGB and EXIF orientation tags we deliberately ignore."""
    icc = img.info.get("icc_profile")
    if icc:
        desc = _icc_description(icc)
        if desc is None:
            _warn(path, "has an ICC profile that could not be parsed; pixel values used as stored (no colour "
                        "management)")
        elif "srgb" not in desc.lower():
            _warn(path, f"has a non-sRGB ICC profile ({desc!r}); pixel values used as stored (no colour "
                        "management)")
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # malformed EXIF must not make a decodable image unreadable
        orientation = None
    if orientation not in (None, 1):
        _warn(path, f"EXIF orientation {orientation} ignored; the pixel grid is used as stored")


def _icc_description(icc: bytes) -> str | None:
    try:
        from PIL import ImageCms

        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except Exception:
        return None


def _decode_16bit_png(path: Path, alpha: str, gray_source: bool) -> np.ndarray:
    import cv2

    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise InputError(f"{path}: cannot decode 16-bit PNG", "re-export it as an 8-bit PNG")
    _warn(path, "16-bit image scaled to 8 bits as round(v/257)")
    arr8 = to_uint8_from_16bit(arr)
    if arr8.ndim == 2:
        return _gray_to_rgb(path, arr8)
    if arr8.shape[2] == 2:  # gray + alpha
        gray = _check_alpha(path, arr8[..., :1], arr8[..., 1], alpha)
        return _gray_to_rgb(path, gray[..., 0])
    color = np.ascontiguousarray(arr8[..., 2::-1])  # OpenCV gives BGR(A)
    if arr8.shape[2] == 4:
        color = _check_alpha(path, color, arr8[..., 3], alpha)
    if gray_source:  # OpenCV expands 16-bit gray+alpha to BGRA
        _warn(path, "grayscale image replicated to 3 channels")
    return np.ascontiguousarray(color)


def _gray_to_rgb(path: Path, gray: np.ndarray) -> np.ndarray:
    _warn(path, "grayscale image replicated to 3 channels")
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))


def read_image(path: str | os.PathLike[str], alpha: str = "refuse") -> np.ndarray:
    """Read an image file as uint8 RGB [H, W, 3], converting or refusing as the module docstring says.

    Raises:
        InputError: missing, corrupt or truncated file; transparency with ``alpha="refuse"``;
            an unsupported pixel mode.
    """
    _check_policy(alpha)
    p = Path(path)
    img = _open(p)
    with img:
        # Read the 16-bit flag first: decoding drops the tile list it is read from.
        is_16bit_color, gray_source = _is_16bit_color_png(img), _rawmode(img).startswith("L")
        # Force the full decode before anything else touches the file: Pillow's getexif() may decode
        # a PNG itself, and a failure there must not be mistaken for "no EXIF".
        try:
            img.load()
        except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error... here
            raise InputError(f"{p}: corrupt or truncated image ({type(e).__name__}: {e})",
                             "re-export or remove the file") from e
        if getattr(img, "n_frames", 1) > 1:
            _warn(p, f"has {img.n_frames} frames; using the first")  # n_frames restores the position
        _note_metadata(p, img)
        if is_16bit_color:  # Pillow's decode above only checked integrity (it keeps the high byte)
            return _decode_16bit_png(p, alpha, gray_source)
        return _to_rgb(p, img, alpha)


def _to_rgb(p: Path, img: Image.Image, alpha: str) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy()
    if mode == "RGBA" or mode == "RGBa":
        arr = np.asarray(img.convert("RGBA") if mode == "RGBa" else img, dtype=np.uint8)
        return np.ascontiguousarray(_check_alpha(p, arr[..., :3], arr[..., 3], alpha))
    if mode in ("L", "1"):
        if mode == "1":
            _warn(p, "1-bit image converted to 0/255")
        return _gray_to_rgb(p, np.asarray(img.convert("L"), dtype=np.uint8))
    if mode in ("LA", "La"):
        arr = np.asarray(img.convert("LA"), dtype=np.uint8)
        gray = _check_alpha(p, arr[..., :1], arr[..., 1], alpha)
        return _gray_to_rgb(p, gray[..., 0])
    if mode in ("I;16", "I;16B", "I;16L", "I;16N") or (mode == "I" and img.format == "PNG"):
        _warn(p, "16-bit image scaled to 8 bits as round(v/257)")
        return _gray_to_rgb(p, to_uint8_from_16bit(np.asarray(img)))
    if mode in ("P", "PA"):
        _warn(p, "palette image expanded to RGB")
        has_alpha = mode == "PA" or "transparency" in img.info or img.palette.mode == "RGBA"
        if has_alpha:
            arr = np.asarray(img.convert("RGBA"), dtype=np.uint8)
            return np.ascontiguousarray(_check_alpha(p, arr[..., :3], arr[..., 3], alpha))
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        _warn(p, f"{mode} image converted to RGB by Pillow")
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    raise InputError(f"{p}: unsupported pixel mode {mode!r}", "re-export it as 8-bit RGB PNG or JPEG")


def probe_image(path: str | os.PathLike[str]) -> tuple[int, int, str, str]:
    """Read only the header: ``(width, height, mode, format)``. Cheap; no pixel decode.

    ``mode`` is Pillow's, except that 16-bit colour PNGs report ``"RGB;16"``/``"RGBA;16"``/``"LA;16"``.
    """
    p = Path(path)
    img = _open(p)
    with img:
        mode = img.mode + (";16" if _is_16bit_color_png(img) else "")  # header only: tile still present
        return img.width, img.height, mode, img.format or "?"


def may_have_alpha(mode: str) -> bool:
    """Whether an image of this probed mode can carry transparency (palette images may)."""
    return mode.split(";")[0] in ("RGBA", "RGBa", "LA", "La", "PA", "P")


def write_png(path: str | os.PathLike[str], array: np.ndarray, compress_level: int = 6) -> Path:
    """Write uint8 [H, W] (L), [H, W, 3] (RGB) or [H, W, 4] (RGBA) as PNG, atomically.

    Through the project's one atomic write (:mod:`inpaintbench.atomic`: temp file in the same folder,
    fsync, ``os.replace``), so a reader never sees half a file. Parent directories are created. No
    metadata is written, so equal arrays give byte-equal files (for the same zlib).
    """
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"write_png needs uint8, got {arr.dtype}")
    if arr.ndim == 2:
        mode = "L"
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        mode = "RGB" if arr.shape[2] == 3 else "RGBA"
    else:
        raise ValueError(f"write_png needs [H,W], [H,W,3] or [H,W,4], got shape {arr.shape}")
    from inpaintbench.atomic import atomic_write_bytes

    img = Image.fromarray(np.ascontiguousarray(arr))
    assert img.mode == mode
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return atomic_write_bytes(Path(path), buf.getvalue())


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """Hex sha256 over dtype, shape and C-order bytes, so equal pixels in another shape differ."""
    arr = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()
