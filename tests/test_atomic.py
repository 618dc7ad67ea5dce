"""The one atomic-write helper (inpaintbench/atomic.py) and the writers built on it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from inpaintbench import atomic
from inpaintbench.atomic import atomic_write_bytes, atomic_write_text, current_umask


def _flipped_umask() -> int:
    """The umask read the racy way (set and restore), only to check current_umask against it."""
    old = os.umask(0)
    os.umask(old)
    return old


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_mode_is_mode_minus_umask_and_the_umask_is_never_changed(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert current_umask() == umask == _flipped_umask()
        p = atomic_write_bytes(tmp_path / "sub" / "f.bin", b"abc")
        assert (p.stat().st_mode & 0o777) == 0o666 & ~umask
        q = atomic_write_text(tmp_path / "g.json", "{}", mode=0o644)
        assert (q.stat().st_mode & 0o777) == 0o644 & ~umask
        assert current_umask() == umask  # writing did not touch it
    finally:
        os.umask(old)


def test_no_module_flips_the_umask() -> None:
    """``os.umask`` sets the umask to read it: racy under threads, so nothing in the package calls it."""
    import ast

    root = Path(atomic.__file__).resolve().parent
    calls = [
        f"{p.relative_to(root)}:{n.lineno}"
        for p in sorted(root.rglob("*.py"))
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(n, ast.Attribute) and n.attr == "umask"
    ]
    assert calls == []


def test_replaces_whole_file_and_leaves_no_temp_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "out.txt"
    atomic_write_text(p, "old")

    def boom(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.txt"]


def test_concurrent_writers_never_expose_a_torn_file(tmp_path: Path) -> None:
    p = tmp_path / "shared.bin"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    atomic_write_bytes(p, payloads[0])
    seen: list[bytes] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(p.read_bytes())

    t = threading.Thread(target=reader)
    t.start()
    writers = [threading.Thread(target=atomic_write_bytes, args=(p, d)) for d in payloads for _ in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    t.join()
    assert seen and all(s in payloads for s in seen)
    assert p.read_bytes() in payloads
    assert sorted(x.name for x in tmp_path.iterdir()) == ["shared.bin"]
