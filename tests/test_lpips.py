"""LPIPS: batched values equal the lpips package called one pair at a time (MAT's way)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import lpips
import numpy as np
import pytest
import torch
import torchvision

from inpaintbench.errors import InputError, WeightsError
from inpaintbench.metrics.lpips import LPIPSMetric
from inpaintbench.weights import get_weight_spec


def _images(n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    noise = rng.integers(-40, 41, a.shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    b[: n // 2, :, : size // 2] = rng.integers(0, 256, (n // 2, size, size // 2, 3), dtype=np.uint8)
    return a, b


def _package_reference(net: str, trunk_file: Path) -> torch.nn.Module:
    """The package's own ``LPIPS(pretrained=True, net=...)`` path, with torchvision's pretrained
    constructor patched to load our (random) trunk file instead of downloading ImageNet weights."""
    arch = {"alex": "alexnet", "vgg": "vgg16"}[net]
    state = torch.load(trunk_file, weights_only=True)
    original = getattr(torchvision.models, arch)

    def tv_ctor(*args, **kwargs):
        model = original(weights=None)
        missing, _ = model.load_state_dict(state, strict=False)
        assert not [k for k in missing if k.startswith("features.")]
        return model

    with mock.patch.object(lpips.pretrained_networks.tv, arch, tv_ctor):
        return lpips.LPIPS(net=net, version="0.1", verbose=False).eval()


def _per_pair(ref: torch.nn.Module, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = []
    with torch.no_grad():
        for x, y in zip(a, b, strict=True):  # MAT cal_lpips.py: one pair per forward, uint8/127.5-1
            tx = torch.from_numpy(x).permute(2, 0, 1)[None].float() / 127.5 - 1
            ty = torch.from_numpy(y).permute(2, 0, 1)[None].float() / 127.5 - 1
            out.append(ref(tx, ty).mean().item())
    return np.array(out)


def test_batched_alex_equals_package_one_pair_per_call(random_weights_dir: Path, no_network: list[str]):
    metric = LPIPSMetric("alex", weights_dir=random_weights_dir, offline=True)
    a, b = _images(6)
    ours = metric(a, b).numpy()
    trunk = random_weights_dir / get_weight_spec("torchvision-alexnet").filename
    ref = _per_pair(_package_reference("alex", trunk), a, b)
    assert ours.dtype == np.float64 and ours.shape == (6,)
    assert np.abs(ours).max() > 1e-3  # not degenerate
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    assert no_network == []


@pytest.mark.slow
def test_batched_vgg_equals_package(random_weights_dir_vgg: Path):
    metric = LPIPSMetric("vgg", weights_dir=random_weights_dir_vgg, offline=True)
    a, b = _images(3, size=48, seed=1)
    trunk = random_weights_dir_vgg / get_weight_spec("torchvision-vgg16").filename
    np.testing.assert_allclose(metric(a, b).numpy(), _per_pair(_package_reference("vgg", trunk), a, b),
                               rtol=0, atol=1e-6)
    assert metric.describe()["trunk"]["id"] == "torchvision-vgg16"


def test_identity_symmetry_and_chunking(random_weights_dir: Path):
    metric = LPIPSMetric("alex", weights_dir=random_weights_dir, offline=True, max_batch=2)
    a, b = _images(3, seed=2)
    np.testing.assert_allclose(metric(a, a).numpy(), 0.0, atol=1e-7)
    np.testing.assert_allclose(metric(a, b).numpy(), metric(b, a).numpy(), atol=1e-6)
    chunked = metric(a, b).numpy()
    metric.max_batch = 64
    np.testing.assert_allclose(chunked, metric(a, b).numpy(), atol=1e-6)
    d = metric.describe()
    assert d["trunk"]["verified"] is True and d["lin_heads"]["source"] == "lpips package"
    assert len(d["lin_heads"]["sha256"]) == 64


def test_bad_inputs_and_missing_weights(random_weights_dir: Path, tmp_path: Path, isolated_home: Path,
                                        no_network: list[str]):
    metric = LPIPSMetric("alex", weights_dir=random_weights_dir, offline=True)
    a, b = _images(2)
    with pytest.raises(InputError, match="uint8"):
        metric(a.astype(np.float32), b)
    with pytest.raises(InputError, match="differ"):
        metric(a, b[:, :32])
    with pytest.raises(InputError):
        LPIPSMetric("squeeze", weights_dir=random_weights_dir)
    with pytest.raises(WeightsError, match="torchvision-alexnet"):
        LPIPSMetric("alex", weights_dir=tmp_path / "empty", offline=True)
    assert no_network == []
