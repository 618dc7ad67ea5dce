"""A wheel built from the repository carries the committed mask definitions (not only editable installs)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mask_definitions_ship_without_a_symlink_and_every_package_is_listed() -> None:
    """masks/ is the one source of truth; pyproject maps it to inpaintbench.masks.definitions (no
    committed symlink, which breaks Windows checkouts), and lists every package folder explicitly."""
    import tomllib

    assert not (ROOT / "inpaintbench" / "masks" / "definitions").exists()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["inpaintbench.masks.definitions"] == "masks"
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "inpaintbench").rglob("__init__.py")}
    missing = sorted(found - set(config["packages"]))
    assert not missing, f"add to [tool.setuptools] packages: {missing}"


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
    for data in ("analysis/templates/page.html.j2", "analysis/templates/report.html.j2", "humans/static/index.html",
                 "humans/static/app.js"):
        assert f"inpaintbench/{data}" in names
