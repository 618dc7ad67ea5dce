"""Where `inpaintbench run --out ROOT` put a model's run: ``ROOT/<model>-<identity hash>``."""

from __future__ import annotations

from pathlib import Path


def model_run_dir(root: Path, model: str) -> Path:
    """The one run directory of ``model`` under ``root`` (an error when there are none or several)."""
    found = sorted(p for p in Path(root).glob(f"{model}-*") if p.is_dir() and len(p.name) == len(model) + 13)
    assert len(found) == 1, f"expected one run of {model} in {root}, found {[p.name for p in found]}"
    return found[0]
