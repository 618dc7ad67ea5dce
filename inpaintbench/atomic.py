"""Atomic file writes: the one helper every writer of results, caches and checkpoints goes through.

A reader (a resumed run, another process, a crash-restarted job) sees either the old file or the
complete new one, never a torn write: the bytes go to a fresh temporary file in the same folder (so
the rename cannot cross file systems), are fsync'ed, renamed over the target with ``os.replace``,
and the folder is fsync'ed so the rename itself survives a power cut (POSIX; skipped where folders
cannot be opened, e.g. Windows).

File mode: set explicitly on each file, ``mode & ~umask`` (default ``0o666``: what ``open()`` would
give), so results stay as shareable as any other file the user writes, rather than ``mkstemp``'s
0600. The umask is read from ``/proc/self/status`` where the kernel reports it (Linux >= 4.7) and
never changed: flipping it with ``os.umask`` to read it is racy under threads. Elsewhere the usual
0o022 is assumed. Standard library only: importing it costs nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "current_umask", "fsync_dir"]

_DEFAULT_UMASK = 0o022


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status``; else 0o022)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            m = re.search(r"^Umask:\s*([0-7]+)\s*$", fh.read(), re.MULTILINE)
    except OSError:
        return _DEFAULT_UMASK
    return int(m.group(1), 8) if m else _DEFAULT_UMASK


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where that is not possible."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o666) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``, fsync
    of the folder), with file mode ``mode & ~umask``. Creates missing parent folders.
    Raises ``OSError`` (the temp file is removed); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode & ~current_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not hasattr(os, "fchmod"):  # Windows: only the read-only bit exists
            os.chmod(tmp, mode & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = 0o666) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode)
