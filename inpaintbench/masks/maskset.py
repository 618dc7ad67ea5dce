"""``MaskSet``: an ordered, hashed set of hole masks, on disk or in memory.

On disk a mask set is a folder::

    manifest.json      # protocol, version, parameters, seed, count, polarity, per-mask sha256 and
                       # hole ratio, set digest (see hashing.py for what is hashed)
    000000.png         # 8-bit single-channel PNG, 255 = hole, 0 = keep ("file_polarity": "255=hole")
    000001.png
    ...

255 = hole is the LaMa/IOPaint/OpenCV convention and maps straight onto the library's True = hole.
MAT's files use the opposite polarity; they come in through :func:`import_mask_folder`, which
requires the polarity to be stated. The format itself (constants, entries, atomic folder writes)
is in :mod:`inpaintbench.masks.setfiles`; standard names resolve in :mod:`inpaintbench.masks.standard`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.errors import InputError
from inpaintbench.masks.bins import hole_ratio_bin
from inpaintbench.masks.hashing import hole_ratio, mask_sha256
from inpaintbench.masks.protocols import Protocol, get_protocol
from inpaintbench.masks.setfiles import (
    FILE_FORMAT,
    FILE_POLARITY,
    FORMAT,
    FORMAT_VERSION,
    ID_WIDTH,
    MANIFEST,
    MaskSetIntegrityError,
    base_header,
    digest_of,
    encode_mask_png,
    library_versions,
    mask_entry,
    mask_id,
    protocol_header,
    read_manifest,
    read_set_png,
    summarize_ratios,
    write_mask,
    write_set,
)

__all__ = [
    "FILE_FORMAT", "FILE_POLARITY", "FORMAT", "FORMAT_VERSION", "ID_WIDTH", "MANIFEST", "MaskSet",
    "MaskSetIntegrityError", "build_mask_set", "encode_mask_png", "library_versions", "mask_id",
    "read_set_png", "summarize_ratios",
]

# ------------------------------------------------------------------------------------------ MaskSet


class MaskSet:
    """An ordered set of masks with stable ids (``000000``...), per-mask hashes and a set digest.

    Create one with :meth:`load` (folder or standard name), :meth:`generate` (a protocol, in
    memory), :meth:`from_arrays`, :func:`build_mask_set` or :func:`import_mask_folder`.
    ``get(i)`` returns bool ``[H, W]`` with True = hole.
    """

    def __init__(self, header: dict[str, Any], ids: list[str], read: Callable[[int], np.ndarray],
                 entries: list[dict[str, Any]] | None = None, root: Path | None = None):
        self._header = header
        self._ids = ids
        self._read = read
        self._entries = entries
        self._root = root

    # construction -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike, verify: bool = False) -> MaskSet:
        """Open a mask-set folder (or its ``manifest.json``).

        Folders only: a standard name (``mat-large-256``...) is resolved, built into the cache and
        checked against its committed digest by :func:`inpaintbench.masks.resolve_mask_set`.
        """
        path = Path(path)
        if path.is_file() and path.name == MANIFEST:
            path = path.parent
        if not (path / MANIFEST).is_file():
            if path.is_dir():
                raise InputError(f"{path} has no {MANIFEST}, so it is not a mask set",
                                 f"import it first: inpaintbench masks import {path} --hole-value 0|255 "
                                 "--out DIR")
            raise InputError(f"no mask set at {path}",
                             "give a folder made by `masks build`/`masks import`; for a standard set name use "
                             f"inpaintbench.masks.resolve_mask_set({str(path)!r}) (or `--masks NAME`)")
        ms = cls._open_folder(path)
        if verify:
            ms.verify()
        return ms

    @classmethod
    def _open_folder(cls, root: Path) -> MaskSet:
        manifest = read_manifest(root)
        entries = manifest.pop("masks")
        ids = [e["id"] for e in entries]

        def read(i: int) -> np.ndarray:
            e = entries[i]
            return read_set_png(root / e["file"], tuple(e["size"]))

        return cls(manifest, ids, read, entries, root)

    @classmethod
    def generate(cls, protocol: str | Protocol, n: int, seed: int = 0, name: str | None = None) -> MaskSet:
        """Masks ``0..n-1`` of a protocol, generated lazily in memory (nothing written to disk)."""
        proto = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
        if n < 1:
            raise InputError(f"a mask set needs at least one mask, got n={n}", "pass n >= 1")
        header = protocol_header(proto, n, seed, name)
        return cls(header, [mask_id(i) for i in range(n)], lambda i: proto.generate(i, seed))

    @classmethod
    def from_arrays(cls, holes: Sequence[np.ndarray], ids: Sequence[str] | None = None,
                    name: str = "in-memory", protocol: str | None = None,
                    source: dict[str, Any] | None = None) -> MaskSet:
        """Wrap bool ``[H, W]`` arrays (True = hole) as a mask set, e.g. to save them with :meth:`save`."""
        arrays = [np.ascontiguousarray(h, dtype=bool) for h in holes]
        if not arrays:
            raise InputError("a mask set needs at least one mask", "pass a non-empty list")
        for h in arrays:
            if h.ndim != 2:
                raise InputError(f"masks must be 2-D bool arrays, got shape {h.shape}",
                                 "pass [H, W] arrays with True = hole")
        ids = list(ids) if ids is not None else [mask_id(i) for i in range(len(arrays))]
        if len(ids) != len(arrays) or len(set(ids)) != len(ids):
            raise InputError("mask ids must be unique and one per mask", "pass distinct ids")
        header = base_header(name, len(arrays))
        header.update({"protocol": protocol, "source": source or {"kind": "arrays"}})
        return cls(header, ids, lambda i: arrays[i].copy())

    # access -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.get(i)

    def __repr__(self) -> str:
        where = str(self._root) if self._root else "in memory"
        return f"MaskSet({self.name!r}, protocol={self.protocol!r}, n={len(self)}, {where})"

    @property
    def ids(self) -> list[str]:
        """Mask ids in set order."""
        return list(self._ids)

    @property
    def path(self) -> Path | None:
        """The folder, or ``None`` for an in-memory set."""
        return self._root

    @property
    def name(self) -> str:
        return str(self._header.get("name"))

    @property
    def protocol(self) -> str | None:
        """Protocol name, or ``None`` for imported sets without a hint."""
        return self._header.get("protocol")

    @property
    def seed(self) -> int | None:
        return self._header.get("seed")

    @property
    def resolution(self) -> tuple[int, int] | None:
        """``(H, W)`` shared by all masks, or ``None`` when sizes differ."""
        if self._entries is None and self._header.get("resolution"):
            return tuple(self._header["resolution"])  # type: ignore[return-value]
        entries = self._all_entries()
        sizes = {tuple(e["size"]) for e in entries}
        return next(iter(sizes)) if len(sizes) == 1 else None  # type: ignore[return-value]

    def index_of(self, mask_id_: str) -> int:
        try:
            return self._ids.index(mask_id_)
        except ValueError:
            raise InputError(f"mask set {self.name!r} has no mask with id {mask_id_!r}",
                             f"ids run from {self._ids[0]} to {self._ids[-1]}") from None

    def _index(self, i: int | str) -> int:
        if isinstance(i, str):
            return self.index_of(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"mask index {i} out of range for a set of {n}")
        return i % n

    def get(self, i: int | str) -> np.ndarray:
        """Mask ``i`` (index or id) as bool ``[H, W]``, True = hole."""
        return self._read(self._index(i))

    def hole_ratio(self, i: int | str) -> float:
        """Fraction of hole pixels of mask ``i`` (from the manifest for folder sets)."""
        k = self._index(i)
        if self._entries is not None:
            return float(self._entries[k]["hole_ratio"])
        return hole_ratio(self.get(k))

    @property
    def hole_ratios(self) -> np.ndarray:
        """All hole ratios in set order."""
        return np.array([e["hole_ratio"] for e in self._all_entries()], dtype=np.float64)

    def hole_ratio_bin(self, i: int | str) -> str:
        """Bin label (see :mod:`inpaintbench.masks.bins`) of mask ``i``."""
        return hole_ratio_bin(self.hole_ratio(i))

    def head(self, n: int) -> MaskSet:
        """The first ``n`` masks as an in-memory set (its digest covers those ``n`` only)."""
        if not 1 <= n <= len(self):
            raise InputError(f"cannot take {n} masks from a set of {len(self)}",
                             f"ask for 1..{len(self)} masks")
        header = dict(self._header)
        header["count"] = n
        header.pop("digest", None)
        header.pop("hole_ratio_summary", None)
        entries = self._entries[:n] if self._entries is not None else None
        return MaskSet(header, self._ids[:n], self._read, entries, None)

    # hashes and manifest ------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Compact description for run manifests (no per-mask entries)."""
        res = self.resolution
        src = self._header.get("source") or {}
        return {
            "name": self.name, "protocol": self.protocol, "version": self._header.get("version"),
            "seed": self.seed, "count": len(self), "resolution": list(res) if res else None,
            "digest": self.digest, "file_polarity": FILE_POLARITY, "source": src.get("kind"),
            "path": str(self._root) if self._root else None,
            "pairing": "image i <-> mask (i mod count)",
        }

    def _all_entries(self) -> list[dict[str, Any]]:
        if self._entries is None:
            self._entries = [mask_entry(mid, self._read(i)) for i, mid in enumerate(self._ids)]
        return self._entries

    @property
    def digest(self) -> str:
        """Set digest (see :mod:`inpaintbench.masks.hashing`)."""
        return str(self._header.get("digest") or digest_of(self._all_entries()))

    @property
    def manifest(self) -> dict[str, Any]:
        """The full manifest (a copy), with per-mask entries under ``"masks"``."""
        entries = self._all_entries()
        m = json.loads(json.dumps(self._header))
        m["count"] = len(entries)
        m["resolution"] = list(self.resolution) if self.resolution else None
        m["digest"] = self.digest
        m.setdefault("hole_ratio_summary", summarize_ratios([e["hole_ratio"] for e in entries]))
        m["masks"] = [dict(e) for e in entries]
        return m

    def verify(self) -> str:
        """Re-hash every mask and check it against the manifest; returns the digest.

        Raises :class:`MaskSetIntegrityError` naming the first bad file and how many are bad.
        For in-memory sets this recomputes the hashes (nothing stored to compare with).
        """
        if self._entries is None or self._root is None:
            entries = [mask_entry(mid, self._read(i)) for i, mid in enumerate(self._ids)]
            if self._entries is not None:
                for stored, fresh in zip(self._entries, entries, strict=True):
                    if stored["sha256"] != fresh["sha256"]:
                        raise MaskSetIntegrityError(f"mask {stored['id']} changed since it was hashed",
                                                    "rebuild the mask set")
            self._entries = entries
            return self.digest
        problems: list[str] = []
        for i, e in enumerate(self._entries):
            try:
                hole = self._read(i)
            except MaskSetIntegrityError as err:
                problems.append(err.message)
                continue
            if mask_sha256(hole) != e["sha256"]:
                problems.append(f"{self._root / e['file']} differs from the manifest (sha256 mismatch)")
            elif hole_ratio(hole) != e["hole_ratio"]:
                problems.append(f"{self._root / e['file']}: hole ratio differs from the manifest")
        recomputed = digest_of(self._entries)
        if recomputed != self._header.get("digest"):
            problems.append(f"{self._root / MANIFEST}: the digest does not match the mask list "
                            f"(recorded {self._header.get('digest')}, recomputed {recomputed})")
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise MaskSetIntegrityError(f"mask set {self._root} failed verification: {problems[0]}{more}",
                                        "rebuild it with `inpaintbench masks build` or re-import it")
        return recomputed

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False) -> MaskSet:
        """Write this set as a folder (PNG files + manifest), atomically; returns the folder set."""
        header = {k: v for k, v in self._header.items() if k not in ("digest", "hole_ratio_summary")}
        extra = {e["id"]: {k: v for k, v in e.items() if k not in ("id", "file", "size", "hole_ratio",
                                                                    "sha256")}
                 for e in (self._entries or [])}

        def produce(tmp: Path) -> list[dict[str, Any]]:
            out = []
            for i, mid in enumerate(self._ids):
                entry = write_mask(tmp, mid, self._read(i))
                entry.update(extra.get(mid, {}))
                out.append(entry)
            return out

        return MaskSet._open_folder(write_set(Path(out_dir), header, produce, "replace" if overwrite else "error"))


def _build_chunk(protocol_name: str, seed: int, start: int, stop: int, folder: str) -> list[dict[str, Any]]:
    """Worker job: generate and write masks ``start..stop-1`` (pure per index, so any split works)."""
    proto = get_protocol(protocol_name)
    return [write_mask(Path(folder), mask_id(i), proto.generate(i, seed)) for i in range(start, stop)]


def build_mask_set(protocol: str | Protocol, n: int, seed: int, out_dir: str | os.PathLike,
                   workers: int = 1, overwrite: bool = False, name: str | None = None,
                   _on_exists: str | None = None) -> MaskSet:
    """Generate masks ``0..n-1`` of ``protocol`` under ``seed`` into ``out_dir`` (PNGs + manifest).

    The result is identical for any ``workers`` (each mask has its own seeded stream). The folder
    appears atomically; an existing non-empty folder is refused unless ``overwrite`` and it holds a
    mask set.
    """
    proto = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
    if n < 1:
        raise InputError(f"a mask set needs at least one mask, got n={n}", "pass --n 1 or more")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}", "pass a non-negative --seed")
    header = protocol_header(proto, n, seed, name)
    workers = max(1, min(int(workers), os.cpu_count() or 1, n))

    def produce(tmp: Path) -> list[dict[str, Any]]:
        if workers == 1:
            return _build_chunk(proto.name, seed, 0, n, str(tmp))
        step = max(1, min(256, -(-n // (workers * 4))))
        bounds = [(a, min(a + step, n)) for a in range(0, n, step)]
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_build_chunk, proto.name, seed, a, b, str(tmp)) for a, b in bounds]
            return [e for f in futures for e in f.result()]

    on_exists = _on_exists or ("replace" if overwrite else "error")
    return MaskSet._open_folder(write_set(Path(out_dir), header, produce, on_exists))
