"""The one root folder of everything inpaintbench caches: weights, mask sets, features, hash records.

``$INPAINTBENCH_HOME``, or ``~/.cache/inpaintbench`` when that is unset or empty. Standard library
only, so any module (the torch-free weights registry, the masks cache) can ask for it cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["inpaintbench_home"]


def inpaintbench_home() -> Path:
    """``$INPAINTBENCH_HOME`` (unset or empty: ``~/.cache/inpaintbench``): the root of every cache.
    The one definition; use this name everywhere."""
    return Path(os.environ.get("INPAINTBENCH_HOME") or "~/.cache/inpaintbench").expanduser()
