"""The on-disk format of a mask set: constants, PNG encoding, manifest entries, atomic folder writes.

Everything here works on folders and plain dicts, below :class:`~inpaintbench.masks.maskset.MaskSet`:
the writers are public so that building (:func:`~inpaintbench.masks.maskset.build_mask_set`),
importing (:func:`~inpaintbench.masks.importing.import_mask_folder`) and saving share one
implementation of the format described in :mod:`inpaintbench.masks.maskset`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpaintbench.errors import InpaintBenchError, InputError
from inpaintbench.masks.bins import BIN_LABELS, hole_ratio_bin
from inpaintbench.masks.hashing import DIGEST_OF, MASK_SHA256_OF, hole_ratio, mask_sha256, set_digest
from inpaintbench.masks.protocols import Protocol

FORMAT = "inpaintbench-maskset"
FORMAT_VERSION = 1
FILE_POLARITY = "255=hole"
FILE_FORMAT = "8-bit single-channel PNG, values {0, 255}"
MANIFEST = "manifest.json"
ID_WIDTH = 6


class MaskSetIntegrityError(InpaintBenchError):
    """A mask set whose files or manifest do not match its recorded hashes."""


def mask_id(index: int) -> str:
    """Id of the ``index``-th mask: zero-padded, e.g. ``000042``."""
    return f"{index:0{ID_WIDTH}d}"


def library_versions() -> dict[str, str]:
    """Versions of everything that can change a generated bit (recorded in manifests)."""
    import cv2
    import PIL

    import inpaintbench

    return {"inpaintbench": inpaintbench.__version__, "numpy": np.__version__, "pillow": PIL.__version__,
            "opencv": cv2.__version__}


def summarize_ratios(ratios: Sequence[float]) -> dict[str, Any]:
    """Mean/std/quantiles of hole ratios plus counts per bin of :mod:`inpaintbench.masks.bins`."""
    r = np.asarray(ratios, dtype=np.float64)
    if r.size == 0:
        return {"count": 0}
    q = np.quantile(r, [0.05, 0.25, 0.5, 0.75, 0.95])
    stats = {"count": int(r.size), "mean": float(r.mean()), "std": float(r.std()), "min": float(r.min())}
    stats.update({k: float(v) for k, v in zip(("p5", "p25", "p50", "p75", "p95"), q, strict=True)})
    stats["max"] = float(r.max())
    stats = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats.items()}
    bins = dict.fromkeys(BIN_LABELS, 0)
    for x in r.tolist():
        bins[hole_ratio_bin(x)] += 1
    stats["bins"] = bins
    return stats


def encode_mask_png(hole: np.ndarray) -> bytes:
    """PNG bytes of a hole mask in the file polarity (255 = hole)."""
    buf = io.BytesIO()
    # zlib level 1: ~2x faster than the default 6 and only ~1.5x larger on binary masks; the hashes
    # cover decoded pixels, so the level never matters for identity.
    Image.fromarray(np.where(hole, np.uint8(255), np.uint8(0))).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def read_set_png(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read one PNG of a mask set strictly (single channel, values {0,255}); True = hole."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
            mode = im.mode
    except FileNotFoundError:
        raise MaskSetIntegrityError(f"mask file {path} is missing",
                                    "rebuild or re-import the mask set") from None
    except OSError as e:
        raise MaskSetIntegrityError(f"mask file {path} cannot be decoded ({e})",
                                    "rebuild or re-import the mask set") from None
    if mode == "1":
        arr = arr.astype(np.uint8) * 255
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise MaskSetIntegrityError(f"mask file {path} is {mode}, not 8-bit single-channel",
                                    "mask sets hold L-mode PNGs; import foreign masks with `masks import`")
    if size is not None and arr.shape != tuple(size):
        raise MaskSetIntegrityError(f"mask file {path} is {arr.shape[1]}x{arr.shape[0]}, manifest says "
                                    f"{size[1]}x{size[0]}", "rebuild or re-import the mask set")
    hole = arr == 255
    if np.count_nonzero(hole | (arr == 0)) != arr.size:
        raise MaskSetIntegrityError(f"mask file {path} has values other than 0 and 255",
                                    "rebuild or re-import the mask set")
    return hole


def digest_of(entries: list[dict[str, Any]]) -> str:
    return set_digest((e["id"], tuple(e["size"]), e["sha256"]) for e in entries)


def mask_entry(mid: str, hole: np.ndarray) -> dict[str, Any]:
    return {"id": mid, "file": f"{mid}.png", "size": [int(hole.shape[0]), int(hole.shape[1])],
            "hole_ratio": hole_ratio(hole), "sha256": mask_sha256(hole)}


def write_mask(folder: Path, mid: str, hole: np.ndarray) -> dict[str, Any]:
    entry = mask_entry(mid, hole)
    (folder / entry["file"]).write_bytes(encode_mask_png(hole))
    return entry


def base_header(name: str, count: int) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
        "protocol": None, "version": None, "parameters": None, "seed": None, "count": count,
        "resolution": None, "file_polarity": FILE_POLARITY, "file_format": FILE_FORMAT,
        "mask_sha256_of": MASK_SHA256_OF, "digest_of": DIGEST_OF,
    }


def protocol_header(proto: Protocol, n: int, seed: int, name: str | None) -> dict[str, Any]:
    header = base_header(name or proto.name, n)
    header.update({
        "protocol": proto.name, "version": proto.version, "parameters": proto.params, "seed": seed,
        "resolution": [proto.resolution, proto.resolution],
        "source": {"kind": "generated", "algorithm": proto.source,
                   "hole_ratio_range": list(proto.hole_ratio_range)},
    })
    return header


def check_manifest(m: dict[str, Any], root: Path) -> None:
    fix = "rebuild it with `inpaintbench masks build` or re-import it"
    if m.get("format") != FORMAT:
        raise MaskSetIntegrityError(f"{root / MANIFEST} is not an inpaintbench mask-set manifest", fix)
    if int(m.get("format_version", 0)) > FORMAT_VERSION:
        raise MaskSetIntegrityError(f"{root / MANIFEST} has format version {m.get('format_version')}, "
                                    f"newer than this inpaintbench ({FORMAT_VERSION})",
                                    "upgrade inpaintbench")
    if m.get("file_polarity") != FILE_POLARITY:
        raise MaskSetIntegrityError(f"{root / MANIFEST} states file polarity {m.get('file_polarity')!r}; "
                                    f"mask-set files are always {FILE_POLARITY!r}", fix)
    masks = m.get("masks")
    if not isinstance(masks, list) or len(masks) != m.get("count"):
        raise MaskSetIntegrityError(f"{root / MANIFEST}: count {m.get('count')} does not match the "
                                    "mask list", fix)
    ids = [e.get("id") for e in masks]
    if len(set(ids)) != len(ids):
        raise MaskSetIntegrityError(f"{root / MANIFEST}: duplicate mask ids", fix)


def read_manifest(root: Path) -> dict[str, Any]:
    """The checked manifest of the mask-set folder ``root`` (entries under ``"masks"``)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise MaskSetIntegrityError(f"{root / MANIFEST} cannot be read ({e})",
                                    "rebuild or re-import the mask set") from None
    check_manifest(manifest, root)
    return manifest


def folder_digest(root: Path) -> str:
    """The digest a mask-set folder's manifest records (computed from its entries when absent)."""
    m = read_manifest(root)
    return str(m.get("digest") or digest_of(m["masks"]))


def write_set(out_dir: Path, header: dict[str, Any], produce: Callable[[Path], list[dict[str, Any]]],
              on_exists: str = "error") -> Path:
    """Write a mask set into a temporary sibling folder, then move it into place in one rename.

    ``produce(tmp)`` writes the PNGs into ``tmp`` (with :func:`write_mask`) and returns their entries;
    the manifest is completed from ``header`` and the entries. Returns the (absolute) folder.

    ``on_exists``: ``"error"`` (refuse to touch an existing non-empty folder), ``"replace"`` (only an
    existing mask set or empty folder is replaced) or ``"keep"`` (another process won the race: keep
    its set if it has the same digest).
    """
    out_dir = out_dir.expanduser().absolute()
    if out_dir.exists() and on_exists == "error" and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} already exists and is not empty",
                         "choose another --out folder or delete that one")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        entries = produce(tmp)
        manifest = dict(header)
        manifest["count"] = len(entries)
        sizes = {tuple(e["size"]) for e in entries}
        manifest["resolution"] = list(next(iter(sizes))) if len(sizes) == 1 else None
        manifest["digest"] = digest_of(entries)
        manifest["hole_ratio_summary"] = summarize_ratios([e["hole_ratio"] for e in entries])
        manifest.setdefault("created_with", library_versions())
        manifest["masks"] = entries
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        move_into_place(tmp, out_dir, on_exists, manifest["digest"])
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def move_into_place(tmp: Path, out_dir: Path, on_exists: str, digest: str) -> None:
    if out_dir.exists() and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if out_dir.exists():
        is_set = (out_dir / MANIFEST).is_file()
        if on_exists == "keep" and is_set:
            try:
                if folder_digest(out_dir) == digest:
                    return
            except InpaintBenchError:
                pass
        if on_exists == "error" or not is_set:
            raise InputError(f"{out_dir} already exists and is not a mask set",
                             "choose another --out folder or delete that one")
        trash = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(tmp, out_dir)
    except OSError:
        # another process put a set there in the meantime: accept it when it is the same set
        if (out_dir / MANIFEST).is_file() and folder_digest(out_dir) == digest:
            return
        raise
