"""A wheel built from the repository carries the committed mask definitions (not only editable installs)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_package_definitions_link_points_at_the_committed_masks_folder() -> None:
    link = ROOT / "inpaintbench" / "masks" / "definitions"
    assert link.is_symlink(), "inpaintbench/masks/definitions must stay a symlink to ../../masks"
    assert link.resolve() == (ROOT / "masks").resolve()


@pytest.mark.slow
def test_wheel_contains_every_standard_mask_definition(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("inpaintbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    committed = sorted(p.name for p in (ROOT / "masks").glob("*.json"))
    assert len(committed) >= 12
    for name in committed:
        assert f"inpaintbench/masks/definitions/{name}" in names
