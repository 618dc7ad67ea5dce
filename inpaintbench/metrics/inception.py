"""Inception pool features (2048-d) for FID, KID and P-/U-IDS, from two named extractors.

* ``inception-tf``: torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF 2015-12-05 graph as a
  PyTorch module, TF1-compatible bilinear resize to 299, ``(x-128)/128``), constructed with
  ``feature_extractor_weights_path`` = the registry's hash-checked file, so torch-fidelity never
  downloads. Same network and resize as torchmetrics(antialias=False) and torch-fidelity.
* ``inception-stylegan2``: NVIDIA's TorchScript ``inception-2015-12-05.pt`` as MAT/StyleGAN2-ADA
  call it: uint8 NCHW 0..255 in, ``return_features=True``, the graph resizes and normalises
  itself (StyleGAN2-ADA metrics/metric_utils.py, which MAT's evaluation uses). A TorchScript file is code, so it is
  loaded only when its sha256
  matches the published one: ``allow_unverified`` does not apply to it.

Both take uint8 batches and return float32 [B, 2048]; autocast is disabled around the forward.
The two are close but not bit-identical (different conversions of the same TF graph), so the
extractor name and the weights hash go into the run manifest via :meth:`describe`.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from typing import Any

import torch

from inpaintbench.errors import UnknownNameError, WeightsError
from inpaintbench.metrics.inputs import as_uint8_tensor
from inpaintbench.weights import ResolvedWeights, resolve_weights

FEATURE_DIM = 2048


class InceptionExtractor:
    """Base: uint8 images in, float32 [B, 2048] pool features out."""

    name = ""
    weights_id = ""
    description = ""

    def __init__(self, weights: ResolvedWeights, device: str | torch.device = "cpu", max_batch: int = 32):
        self.weights = weights
        self.device = torch.device(device)
        self.max_batch = max_batch

    def _forward(self, x_u8_nchw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def forward_nchw_u8(self, x: torch.Tensor) -> torch.Tensor:
        """Features for a uint8 NCHW batch already on the device (the suite shares the batch)."""
        out = []
        with torch.autocast(device_type=self.device.type, enabled=False):
            for i in range(0, x.shape[0], self.max_batch):
                out.append(self._forward(x[i:i + self.max_batch]).float())
        return torch.cat(out) if out else torch.zeros(0, FEATURE_DIM)

    @torch.no_grad()
    def __call__(self, images_u8: Any) -> torch.Tensor:
        """uint8 [B,H,W,3] (numpy or tensor) → float32 [B, 2048] on CPU."""
        t = as_uint8_tensor(images_u8, "images").to(self.device)
        return self.forward_nchw_u8(t.permute(0, 3, 1, 2).contiguous()).cpu()

    def describe(self) -> dict[str, Any]:
        return {"extractor": self.name, "description": self.description, "feature_dim": FEATURE_DIM,
                "weights": self.weights.to_manifest()}


class TorchFidelityInception(InceptionExtractor):
    name = "inception-tf"
    weights_id = "inception-tf"
    description = ("torch-fidelity FeatureExtractorInceptionV3 (TF1 bilinear resize to 299, (x-128)/128), "
                   "pool3 2048-d")

    def __init__(self, weights: ResolvedWeights, device: str | torch.device = "cpu", max_batch: int = 32):
        super().__init__(weights, device, max_batch)
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        # torch-fidelity unpickles the file with weights_only=False (arbitrary code). Check first
        # that it is a plain tensor state dict, with the safe loader.
        try:
            torch.load(weights.path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure means "not a plain state dict"
            raise WeightsError(f"{weights.path} is not a plain PyTorch state dict ({type(e).__name__})",
                               "re-fetch it with `inpaintbench weights fetch inception-tf`") from None
        with contextlib.redirect_stdout(io.StringIO()):
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                              feature_extractor_weights_path=str(weights.path))
        self.net = net.to(self.device).eval().requires_grad_(False)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        (feat,) = self.net(x)
        return feat


class StyleGAN2Inception(InceptionExtractor):
    name = "inception-stylegan2"
    weights_id = "inception-stylegan2"
    description = ("NVIDIA StyleGAN2-ADA TorchScript inception-2015-12-05.pt, uint8 NCHW input, "
                   "return_features=True (MAT/clean-fid legacy_tensorflow)")

    def __init__(self, weights: ResolvedWeights, device: str | torch.device = "cpu", max_batch: int = 32):
        super().__init__(weights, device, max_batch)
        if weights.verified is not True:
            raise WeightsError(
                f"refusing to load TorchScript {weights.path}: sha256 {weights.sha256} is not the "
                f"published one (verified={weights.verified!r}); a TorchScript file is executable code",
                "fetch the official file with `inpaintbench weights fetch inception-stylegan2` "
                "(--allow-unverified-weights does not apply to TorchScript)",
            )
        with warnings.catch_warnings():  # torch 2.x marks TorchScript deprecated; MAT's file is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(weights.path), map_location=self.device).eval()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, return_features=True)


EXTRACTORS: dict[str, type[InceptionExtractor]] = {
    TorchFidelityInception.name: TorchFidelityInception,
    StyleGAN2Inception.name: StyleGAN2Inception,
}


def list_extractors() -> list[str]:
    return sorted(EXTRACTORS)


def create_extractor(
    name: str = "inception-tf",
    device: str | torch.device = "cpu",
    weights_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    allow_unverified: bool = False,
    max_batch: int = 32,
) -> InceptionExtractor:
    """Resolve the extractor's weights (no download when offline) and build it."""
    try:
        cls = EXTRACTORS[name]
    except KeyError:
        raise UnknownNameError("feature extractor", name, list(EXTRACTORS)) from None
    weights = resolve_weights(cls.weights_id, weights_dir, offline=offline, allow_unverified=allow_unverified)
    return cls(weights, device=device, max_batch=max_batch)
