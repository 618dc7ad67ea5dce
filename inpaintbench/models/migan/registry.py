"""Registry entries for MI-GAN: weight specs of the released checkpoints and the model ids.

The official PyTorch checkpoints sit in a Google Drive folder (linked from the MI-GAN README) that
cannot be fetched automatically and has no published hashes: ``inpaintbench weights import <id> PATH``
records the sha256 on first import (trust on first use), and every later run checks it.
Importing this module does not import torch.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from inpaintbench.models.migan.release import DRIVE

LICENCE = ("MI-GAN code: MIT (Picsart AI Research, github.com/Picsart-AI-Research/MI-GAN); weights: no licence "
           "stated by the authors (trained on Places365, whose own terms apply)")

#: model/weight id -> (resolution, official file name, description)
RELEASED = {
    "migan-256": (256, "migan_256_places2.pt", "MI-GAN Places2 256x256 (5.9M params)"),
    "migan-512": (512, "migan_512_places2.pt", "MI-GAN Places2 512x512 (6.0M params)"),
}

#: expected CPU speed (2 threads, batch 1) for listings: the official timings of this machine class
#: (the official MI-GAN demo code, measured on this 2-core CPU class); our fast path is benchmarked against them in
#: benchmarks/bench_migan.py
OFFICIAL_CPU_SECONDS = {256: 0.82, 512: 1.78}

_DONE = False


def _instructions(filename: str, weight_id: str) -> str:
    return (f"download {filename} by hand from the MI-GAN authors' Google Drive folder {DRIVE} (linked from "
            f"github.com/Picsart-AI-Research/MI-GAN; take the updated files with '...upsample.filter_const' keys), "
            f"then run `inpaintbench weights import {weight_id} /path/to/{filename}` (no sha256 is published: "
            "the hash is recorded at import). The Hugging Face ONNX files and IOPaint's TorchScript "
            "migan_traced.pt are not accepted (code, not data)")


def _factory(weight_id: str, weights: Any = None, *, device: str | None = None, weights_dir: str | None = None,
             offline: bool | None = None, allow_unverified: bool = False, resize_policy: str = "error",
             precision: str = "fp32", impl: str = "fast", micro_batch: int | None = None) -> Any:
    """Named parameters only: the runner then drops other models' options (``--noise-mode``...) with a
    warning in a multi-model command, and offers no ``seed`` (MI-GAN draws nothing at random)."""
    from inpaintbench.models.migan.adapter import build_migan

    return build_migan(weights, resolution=RELEASED[weight_id][0], weights_id=weight_id, name=weight_id,
                       device=device, weights_dir=weights_dir, offline=offline, allow_unverified=allow_unverified,
                       resize_policy=resize_policy, precision=precision, impl=impl, micro_batch=micro_batch)


def register() -> None:
    """Register the ``migan-256`` and ``migan-512`` weight specs and model ids."""
    global _DONE
    if _DONE:
        return
    from inpaintbench.models.base import register_model
    from inpaintbench.weights import WeightSpec, register_weights

    for weight_id, (res, filename, description) in RELEASED.items():
        register_weights(WeightSpec(
            id=weight_id, filename=filename, urls=(), sha256=None, size=None, licence=LICENCE,
            description=description, manual_instructions=_instructions(filename, weight_id)))
        register_model(weight_id, partial(_factory, weight_id),
                       f"{description}; deterministic; .pt read without running code; --weights PATH for "
                       f"another {res} checkpoint; ~{OFFICIAL_CPU_SECONDS[res]:.1f} s/image official, 2 CPU threads",
                       needs_weights=(weight_id,), tags=("migan", "gan"), overwrite=True,
                       licence="code MIT; weights: licence unstated", native_size=f"{res}x{res}")
    _DONE = True
