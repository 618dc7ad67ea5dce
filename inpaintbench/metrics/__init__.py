"""Metrics: pixel (PSNR/SSIM/L1), LPIPS, Inception features, FID/KID/IDS and the MetricSuite.

The functions below are the functional API for one-off use; each is a thin call into the code the
evaluation suite runs (:mod:`.pixel`, :mod:`.lpips`, :mod:`.inception`, :mod:`.fid`, :mod:`.kid`,
:mod:`.ids`), so a number computed here equals the one in a run's ``per_image.parquet`` or
``summary.json`` for the same inputs. Images are uint8 RGB, ``[B, H, W, 3]`` (or one ``[H, W, 3]``
image, which returns a float); torch is imported on the first call, not with this package.

``fid``, ``kid``, ``ids`` and ``lpips`` are also the names of the submodules that implement them
(``from inpaintbench.metrics import fid as fidm`` must keep giving the module), so those four names
are the submodules made callable: ``inpaintbench.metrics.fid(real, fake)`` calls :func:`_fid` below,
and ``inpaintbench.metrics.fid.frechet_distance`` is still the module's function.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import numpy as np

__all__ = ["cmmd", "fid", "frechet_distance", "ids", "inception_features", "kid", "l1", "lpips", "prdc", "psnr",
           "ssim"]

#: functional names that are also submodules (see the module docstring)
_MODULE_FUNCTIONS = ("fid", "ids", "kid", "lpips", "prdc")


class _CallableModule(types.ModuleType):
    """A metric submodule that is also its functional entry point."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return globals()["_" + self.__name__.rsplit(".", 1)[1]](*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # The import system sets ``package.<child> = module`` after importing a submodule.
        if name in _MODULE_FUNCTIONS and isinstance(value, types.ModuleType):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """``fid``/``kid``/``ids``/``lpips``/``prdc`` before their submodule was imported: import it (PEP 562)."""
    if name in _MODULE_FUNCTIONS:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_NETWORKS: dict[tuple[Any, ...], Any] = {}


def _batch(pred: Any, gt: Any) -> tuple[Any, Any, bool]:
    """torch uint8 tensors [B,H,W,3] of both inputs, and whether they were single images."""
    import torch

    def tensor(x: Any) -> Any:
        return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))

    p, g = tensor(pred), tensor(gt)
    single = p.ndim == 3
    return (p[None], g[None], True) if single else (p, g, False)


def _out(values: Any, single: bool) -> Any:
    arr = values.detach().to("cpu").numpy().astype(np.float64) if hasattr(values, "detach") else np.asarray(values)
    return float(arr[0]) if single else arr


def psnr(pred: Any, gt: Any) -> Any:
    """Per-image PSNR in dB (MAX 255, capped at 100 dB), float64 [B]."""
    from inpaintbench.metrics import pixel

    p, g, single = _batch(pred, gt)
    return _out(pixel.psnr(p, g), single)


def ssim(pred: Any, gt: Any) -> Any:
    """Per-image SSIM, MAT's convention (11x11 Gaussian, valid windows, RGB), float64 [B]."""
    from inpaintbench.metrics import pixel

    p, g, single = _batch(pred, gt)
    return _out(pixel.ssim(p, g), single)


def l1(pred: Any, gt: Any) -> Any:
    """Per-image mean |pred/255 - gt/255| over all pixels and channels, float64 [B]."""
    from inpaintbench.metrics import pixel

    p, g, single = _batch(pred, gt)
    return _out(pixel.l1(p, g), single)


def _network(kind: str, key: tuple[Any, ...], build: Any) -> Any:
    """One network per (kind, settings) for the session: LPIPS and Inception are costly to build."""
    if (kind, *key) not in _NETWORKS:
        _NETWORKS[(kind, *key)] = build()
    return _NETWORKS[(kind, *key)]


def _lpips(pred: Any, gt: Any, net: str = "alex", *, device: str = "cpu",
          weights_dir: str | os.PathLike[str] | None = None, offline: bool | None = None,
          allow_unverified: bool = False) -> Any:
    """Per-image LPIPS v0.1 (``net="alex"``: MAT's column ``lpips``; ``"vgg"``: LaMa's ``lpips_vgg``)."""
    from inpaintbench.metrics.lpips import LPIPSMetric

    key = (net, str(device), str(weights_dir), offline, allow_unverified)
    model = _network("lpips", key, lambda: LPIPSMetric(net, device, weights_dir=weights_dir, offline=offline,
                                                       allow_unverified=allow_unverified))
    p, g, single = _batch(pred, gt)
    return _out(model(p, g), single)


def inception_features(images: Any, extractor: str = "inception-tf", *, device: str = "cpu",
                       weights_dir: str | os.PathLike[str] | None = None, offline: bool | None = None,
                       allow_unverified: bool = False) -> np.ndarray:
    """Inception pool features, float32 [B, 2048] (``inception-tf``: torch-fidelity; ``inception-stylegan2``: MAT)."""
    from inpaintbench.metrics.inception import create_extractor

    key = (extractor, str(device), str(weights_dir), offline, allow_unverified)
    net = _network("inception", key, lambda: create_extractor(extractor, device, weights_dir=weights_dir,
                                                              offline=offline, allow_unverified=allow_unverified))
    x = np.asarray(images) if not hasattr(images, "detach") else images
    if getattr(x, "ndim", 4) == 3:
        x = x[None]
    return net(x).numpy()


def _fid(real_feats: Any, fake_feats: Any) -> float:
    """FID between two feature sets [N, D]: float64 moments, population covariance (the suite's FID)."""
    from inpaintbench.metrics.fid import frechet_distance

    return float(frechet_distance(real_feats, fake_feats))


def _kid(real_feats: Any, fake_feats: Any, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID (mean, std) over ``subsets`` random subsets, as the suite computes it (the subset size is
    clipped to the smaller set, as in a run)."""
    from inpaintbench.metrics.kid import kernel_inception_distance

    n = min(len(real_feats), len(fake_feats))
    return kernel_inception_distance(real_feats, fake_feats, subsets=subsets, subset_size=min(subset_size, n),
                                     seed=seed)


def _ids(real_feats: Any, fake_feats: Any, backend: str = "sklearn") -> tuple[float, float]:
    """(P-IDS, U-IDS) of index-aligned real/fake features (MAT's linear-SVM definition)."""
    from inpaintbench.metrics.ids import inception_discriminative_scores

    p, u = inception_discriminative_scores(real_feats, fake_feats, backend=backend)  # type: ignore[arg-type]
    return float(p), float(u)


def _prdc(real_features: Any, fake_features: Any, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) of feature sets [N, D]."""
    from inpaintbench.metrics.prdc import prdc as prdc_fn

    return prdc_fn(real_features, fake_features, k=k)


def cmmd(x_embeddings: Any, y_embeddings: Any) -> float:
    """CMMD (Jayasumana et al. 2024) of CLIP embeddings as given, on the paper's scale (x1000)."""
    from inpaintbench.metrics.mmd import cmmd as cmmd_fn

    return cmmd_fn(x_embeddings, y_embeddings)


def frechet_distance(x_features: Any, y_features: Any) -> float:
    """Fréchet distance of two feature sets (FID on Inception features, FD-DINOv2 on DINOv2's)."""
    from inpaintbench.metrics.fid import frechet_distance as fd

    return float(fd(x_features, y_features))
