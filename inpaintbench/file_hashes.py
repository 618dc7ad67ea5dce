"""sha256 of big local files, computed once: hash records kept in the cache directory.

A weight file or checkpoint of 100 MB or more is hashed once; later lookups reuse a JSON record in
``$INPAINTBENCH_HOME/cache/hashes/`` (never a file beside the user's, which may be read-only or
shared). A record is found by the file's resolved path and is trusted only while the file's size,
mtime, inode and ctime are all unchanged. It also keeps ``recorded_sha256``, the hash a file had
when first seen (trust on first use, for files nobody publishes a hash of), and its ``source``.
Records written next to files by older versions (``<file>.sha256``) are still read, never written.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from inpaintbench.atomic import atomic_write_text
from inpaintbench.home import inpaintbench_home

#: Whether records are also written beside the file as versions before 0.2 did. False: nothing is ever
#: written next to a user's file; old ``<file>.sha256`` records are still read.
LEGACY_SIDECAR_WRITES = False

__all__ = [
    "cached_sha256", "hash_records_dir", "read_hash_record", "recorded_sha256", "sha256_file", "stat_fields",
    "write_hash_record",
]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_records_dir() -> Path:
    """Where hash records live: ``$INPAINTBENCH_HOME/cache/hashes``."""
    return inpaintbench_home() / "cache" / "hashes"


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:32]
    return hash_records_dir() / f"{key}.json"


def _legacy_sidecars(path: Path) -> tuple[Path, Path]:
    """Where versions before the cache directory kept records (read once, never written)."""
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return path.with_name(path.name + ".sha256"), inpaintbench_home() / "weights" / ".sidecars" / f"{key}.sha256"


def _read_json_dict(p: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_hash_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The hash record of ``path`` (``{}`` when none): ``sha256`` with the ``size``/``mtime_ns``/``ino``/
    ``ctime_ns`` it was computed at, ``recorded_sha256`` (trust on first use) and ``source``."""
    p = Path(path)
    record = _read_json_dict(_record_path(p))
    if record is not None and record.get("path") == str(p.resolve()):
        return record
    for legacy in _legacy_sidecars(p):
        old = _read_json_dict(legacy)
        if old is not None:
            return old
    return {}


def write_hash_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Store ``record`` for ``path`` in the cache directory (best effort: a read-only home only costs
    a re-hash next time)."""
    p = Path(path)
    data = dict(record, path=str(p.resolve()))
    text = json.dumps(data, indent=1, sort_keys=True)
    targets = [_record_path(p)] + ([_legacy_sidecars(p)[0]] if LEGACY_SIDECAR_WRITES else [])
    for target in targets:
        try:
            atomic_write_text(target, text, mode=0o644)
        except OSError:
            pass


def stat_fields(st: os.stat_result) -> dict[str, int]:
    # Inode and ctime too: a file replaced by another one of the same size and mtime (a hard link to
    # another snapshot, `cp -p`) must be re-hashed, or a changed checkpoint would keep its old identity.
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns}


def _still_valid(record: dict[str, Any], st: os.stat_result) -> bool:
    return bool(record.get("sha256")) and all(record.get(k) == v for k, v in stat_fields(st).items())


def cached_sha256(path: str | os.PathLike[str], rehash: bool = False) -> str:
    """sha256 of ``path``, reusing its hash record while the file is unchanged (unless ``rehash``)."""
    p = Path(path)
    st = p.stat()
    record = read_hash_record(p)
    if not rehash and _still_valid(record, st):
        return str(record["sha256"])
    digest = sha256_file(p)
    record.update(sha256=digest, **stat_fields(st))
    write_hash_record(p, record)
    return digest


def recorded_sha256(path: str | os.PathLike[str]) -> str | None:
    """The sha256 recorded for ``path`` by an earlier check, if the file is unchanged since; never hashes
    (for listings such as ``inpaintbench env`` that must stay instant)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    record = read_hash_record(p)
    return str(record["sha256"]) if _still_valid(record, st) else None

