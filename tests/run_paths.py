"""Helpers of the end-to-end CLI tests: run a command, find where `run --out ROOT` put a model's run
(``ROOT/<model>-<identity hash>``)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def run_cli(capsys: Any, *args: str) -> tuple[int, str]:
    """``inpaintbench ARGS`` in-process: (exit code, stdout + stderr), warnings silenced."""
    from inpaintbench.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def model_run_dir(root: Path, model: str) -> Path:
    """The one run directory of ``model`` under ``root`` (an error when there are none or several)."""
    found = sorted(p for p in Path(root).glob(f"{model}-*") if p.is_dir() and len(p.name) == len(model) + 13)
    assert len(found) == 1, f"expected one run of {model} in {root}, found {[p.name for p in found]}"
    return found[0]
