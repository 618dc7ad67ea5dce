"""Versions, device and paths: what `inpaintbench env` prints and every run manifest embeds."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

PACKAGES = (
    "inpaintbench", "torch", "torchvision", "numpy", "scipy", "scikit-learn", "scikit-image",
    "opencv-python-headless", "pillow", "pandas", "pyarrow", "lpips", "torch-fidelity", "safetensors",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["git_sha"] = git_sha()
    return out


def git_sha() -> str | None:
    """The commit of the inpaintbench checkout, when installed from one (editable installs)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks CUDA when available; an explicit device that is unavailable is an error."""
    from inpaintbench.errors import InputError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device} requested but CUDA is not available", "use --device cpu or auto")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise InputError(f"unknown device {device!r}", "use auto, cpu, cuda or cuda:N")
    return device


def device_description(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"device": device, "torch_threads": torch.get_num_threads(),
                            "platform": platform.platform(), "cpu_count": os.cpu_count()}
    if device.startswith("cuda") and torch.cuda.is_available():
        idx = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
    return info


