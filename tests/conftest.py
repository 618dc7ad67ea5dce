"""Shared test fixtures: seeded random weight files for the metric backbones, and a network guard.

``random_weights_dir`` gives a folder holding seeded random AlexNet (LPIPS trunk, ``features.*``
only) and torch-fidelity Inception state dicts under the registry's file names, and re-registers
those ids with the files' sha256 (and no URL) for the duration of the test, so
``resolve_weights(..., weights_dir=that_folder)`` verifies and nothing can be downloaded.
``random_weights_dir_vgg`` adds VGG16 (slower to build). Files are generated once per session.

``fast_metric_weights_dir`` is for tests that need the whole metric pipeline but not Inception's
cost: random AlexNet plus a tiny TorchScript module with the NVIDIA Inception call signature,
registered (with its hash) as ``inception-stylegan2`` — use ``feature_extractor="inception-stylegan2"``.
It returns 64-d features (not 2048) so that FID's d×d eigendecompositions are instant.

``no_network`` makes any socket connection raise, to prove a code path stays offline.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import torch

from inpaintbench import weights as W


def _he_fill_(state: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """He-normal conv/linear weights, small biases, unit BatchNorm: activations keep their scale
    through deep nets, so random features are not degenerate."""
    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v.clone()
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=gen) * 0.5 + 0.75
        elif k.endswith("running_mean"):
            out[k] = torch.randn(v.shape, generator=gen) * 0.05
        elif v.ndim >= 2:
            fan_in = math.prod(v.shape[1:])
            out[k] = torch.randn(v.shape, generator=gen) * math.sqrt(2.0 / fan_in)
        elif k.endswith("bias"):
            out[k] = torch.randn(v.shape, generator=gen) * 0.05
        else:  # BatchNorm weight
            out[k] = 1.0 + 0.1 * torch.randn(v.shape, generator=gen)
    return out


def make_random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with exactly torch-fidelity's InceptionV3 keys and shapes, seeded random."""
    import torch_fidelity.feature_extractor_inceptionv3 as fi

    with mock.patch.object(fi, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        net = fi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    return _he_fill_(net.state_dict(), torch.Generator().manual_seed(seed))


def make_random_trunk_state(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision ``features.*`` tensors (the part LPIPS uses) of ``alexnet``/``vgg16``/``vgg19``."""
    import torchvision

    features = getattr(torchvision.models, arch)(weights=None).features
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    return _he_fill_(state, torch.Generator().manual_seed(seed))


_MAKERS = {
    "inception-tf": lambda: make_random_inception_state(1),
    "torchvision-alexnet": lambda: make_random_trunk_state("alexnet", 2),
    "torchvision-vgg16": lambda: make_random_trunk_state("vgg16", 3),
}


class RandomWeightFiles:
    """Generates each random weight file once per session and remembers its sha256."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, tuple[Path, str]] = {}

    def get(self, weight_id: str) -> tuple[Path, str]:
        if weight_id not in self.files:
            spec = W.get_weight_spec(weight_id)
            path = self.root / spec.filename
            torch.save(_MAKERS[weight_id](), path)
            self.files[weight_id] = (path, W.cached_sha256(path))
        return self.files[weight_id]


@pytest.fixture(scope="session")
def random_weight_files(tmp_path_factory: pytest.TempPathFactory) -> RandomWeightFiles:
    return RandomWeightFiles(tmp_path_factory.mktemp("random_weights"))


def install_random_weights(
    files: RandomWeightFiles, folder: Path, ids: tuple[str, ...]
) -> dict[str, W.WeightSpec]:
    """Link the session files into ``folder`` and re-register their ids; returns the old specs."""
    folder.mkdir(parents=True, exist_ok=True)
    old: dict[str, W.WeightSpec] = {}
    for wid in ids:
        src, digest = files.get(wid)
        spec = W.get_weight_spec(wid)
        dst = folder / spec.filename
        os.symlink(src, dst)  # the hash record of src (in the cache, by resolved path) serves dst too
        old[wid] = spec
        W.register_weights(dataclasses.replace(spec, urls=(), sha256=digest, size=None, sha256_prefix=None,
                                               description="seeded random test weights"), replace=True)
    return old


@pytest.fixture
def random_weights_dir(random_weight_files: RandomWeightFiles, tmp_path: Path) -> Iterator[Path]:
    """Folder with random AlexNet + torch-fidelity Inception files, registered with their hashes."""
    old = install_random_weights(random_weight_files, tmp_path / "weights",
                                 ("torchvision-alexnet", "inception-tf"))
    try:
        yield tmp_path / "weights"
    finally:
        for spec in old.values():
            W.register_weights(spec, replace=True)


@pytest.fixture
def random_weights_dir_vgg(random_weight_files: RandomWeightFiles, tmp_path: Path) -> Iterator[Path]:
    """Like ``random_weights_dir`` plus a random VGG16 trunk."""
    old = install_random_weights(random_weight_files, tmp_path / "weights",
                                 ("torchvision-alexnet", "torchvision-vgg16", "inception-tf"))
    try:
        yield tmp_path / "weights"
    finally:
        for spec in old.values():
            W.register_weights(spec, replace=True)


class TinyDetector(torch.nn.Module):
    """Cheap stand-in with the call signature of NVIDIA's TorchScript Inception (uint8 NCHW in,
    ``return_features=True`` → [N, dim]); random projection of an 8x8 colour thumbnail."""

    def __init__(self, seed: int = 0, dim: int = 64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = torch.nn.Parameter(torch.randn(3 * 8 * 8, dim, generator=g) / 8.0)
        self.bias = torch.nn.Parameter(torch.randn(dim, generator=g) * 0.1)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if img.dtype != torch.uint8:
            raise RuntimeError("expects uint8 images")
        x = torch.nn.functional.adaptive_avg_pool2d(img.to(torch.float32) / 255.0, 8).flatten(1)
        feats = torch.relu(x @ self.proj + self.bias)
        return feats if return_features else feats.softmax(dim=1)


@pytest.fixture
def fast_metric_weights_dir(random_weight_files: RandomWeightFiles, tmp_path: Path) -> Iterator[Path]:
    """Random AlexNet + a tiny TorchScript detector registered as ``inception-stylegan2``."""
    folder = tmp_path / "weights"
    old = install_random_weights(random_weight_files, folder, ("torchvision-alexnet",))
    spec = W.get_weight_spec("inception-stylegan2")
    path = folder / spec.filename
    torch.jit.save(torch.jit.script(TinyDetector()), str(path))
    old[spec.id] = spec
    W.register_weights(dataclasses.replace(spec, urls=(), sha256=W.sha256_file(path), size=None,
                                           description="tiny TorchScript test detector"), replace=True)
    try:
        yield folder
    finally:
        for s in old.values():
            W.register_weights(s, replace=True)


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $INPAINTBENCH_HOME, no weight env overrides, offline flag unset."""
    home = tmp_path / "home"
    monkeypatch.setenv("INPAINTBENCH_HOME", str(home))
    monkeypatch.delenv("INPAINTBENCH_OFFLINE", raising=False)
    for k in list(os.environ):
        if k.startswith("INPAINTBENCH_WEIGHT_"):
            monkeypatch.delenv(k)
    return home


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any attempt to open a network connection raises NetworkUsed (and is logged)."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[:2]))
        raise NetworkUsed(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts
