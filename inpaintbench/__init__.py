"""inpaintbench: honest, fast evaluation of image inpainting models.

Python API (imported on first use, so ``import inpaintbench`` stays cheap)::

    import inpaintbench as ib
    r = ib.evaluate("telea", limit=8, metrics=["psnr"])     # -> Results (in memory unless out=)
    r.summary, r.per_image, r.set_metrics                    # pandas DataFrames
    r.compare(ib.evaluate("ns", limit=8, metrics=["psnr"]))  # the table of `inpaintbench compare`
    ib.score(pred, gt, masks, hole_value=255)                # folders or arrays -> Results
    ib.load("results/runs/.../telea-0123456789ab")           # a run directory -> Results

Public names: :func:`evaluate`, :func:`score`, :func:`load`, :class:`Results`, and
:func:`inpaintbench.models.from_callable`; the functional metrics live in :mod:`inpaintbench.metrics`.
Internal modules may change without notice; these names will not.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Results", "__version__", "evaluate", "from_callable", "load", "score"]

_LAZY = {
    "evaluate": ("inpaintbench.api", "evaluate"),
    "score": ("inpaintbench.api", "score"),
    "load": ("inpaintbench.results_api", "load"),
    "Results": ("inpaintbench.results_api", "Results"),
    "from_callable": ("inpaintbench.models.callable", "from_callable"),
}

#: subpackages reachable as attributes (``ib.metrics.psnr``, ``ib.models.from_callable``)
_SUBPACKAGES = ("analysis", "metrics", "models")


def __getattr__(name: str) -> Any:
    """Resolve the public names on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"inpaintbench.{name}")
    raise AttributeError(f"module 'inpaintbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
