"""Built-in models. Importing this package registers them (``create_model``/``list_models`` do so).

External plug-ins use the ``inpaintbench.models`` entry-point group instead (see :mod:`.base`).
"""

from __future__ import annotations

from pathlib import Path

from inpaintbench.models import base as _base
from inpaintbench.models import classical
from inpaintbench.models.base import (
    Inpainter,
    ModelSpec,
    create_model,
    get_model_spec,
    list_model_prefixes,
    list_models,
    register_model,
    register_model_prefix,
)

__all__ = ["Inpainter", "ModelSpec", "create_model", "from_callable", "get_model_spec", "list_model_prefixes",
           "list_models", "register_model", "register_model_prefix"]


def __getattr__(name: str) -> object:
    """``from_callable`` is imported on first use (PEP 562), so importing the package stays cheap."""
    if name == "from_callable":
        from inpaintbench.models.callable import from_callable

        return from_callable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_builtin() -> None:
    register_model("telea", classical.telea,
                   "OpenCV Telea fast-marching fill, radius 3 (weights-free, CPU)", tags=("classical",))
    register_model("ns", classical.ns,
                   "OpenCV Navier-Stokes fill, radius 3 (weights-free, CPU)", tags=("classical",))
    register_model("biharmonic", classical.biharmonic,
                   "scikit-image biharmonic fill (weights-free, CPU, ~10x slower than telea)",
                   tags=("classical",))
    register_model("patchmatch", classical.patchmatch,
                   "PatchMatch texture copy, patch 3, seeded per sample (needs pip install pypatchmatch)",
                   tags=("classical", "optional"))
    # The MAT adapter registers its own ids. Import it only when its package is there, and without
    # catching ImportError, so that a real bug inside it is not hidden.
    if (Path(__file__).parent / "mat" / "__init__.py").is_file():
        from inpaintbench.models.mat import register as _register_mat

        _register_mat()
    # The other network families follow the same rule: each package registers its own ids and weights.
    import importlib

    for family in ("lama", "migan", "diffusion"):
        if (Path(__file__).parent / family / "__init__.py").is_file():
            importlib.import_module(f"inpaintbench.models.{family}").register()
    # Fine-tunes registered with `inpaintbench models register` are read on the first lookup
    # (inpaintbench.models.local, via base._ensure_builtin), not here.


def load_local_models() -> list[str]:
    """Register the fine-tunes of ``$INPAINTBENCH_HOME/models/registry.json`` (the registry calls this
    on its first lookup; call it again to pick up models registered by another process)."""
    from inpaintbench.models.local import register_local_models

    return register_local_models()


_register_builtin()
_base._LOCAL_LOADER = load_local_models
