"""Per-image cost on CPU of each issue-12 network next to Inception's, measured in the same run
(seeded random weights: cost depends on the architecture, not on the values).

Networks: torch-fidelity Inception (FID/KID/IDS/PRDC), DINOv2 ViT-L/14 at 224 (FD-DINOv2,
PRDC-DINOv2), CLIP ViT-L/14@336 (CMMD), DISTS (VGG16 with L2 pooling, at the image size) and
LPIPS-alex with the hole map (lpips_hole). Images: ``N_IMAGES`` at 256×256, one batch. Each
benchmark's mean / N_IMAGES is the per-image cost; pytest-benchmark prints them side by side.
Run: ``pytest benchmarks/bench_new_metrics.py`` (``--benchmark-disable`` only checks it works).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaintbench import weights as W

N_IMAGES = 4
SIZE = 256


def _helpers():
    path = Path(__file__).resolve().parent.parent / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_inpaintbench_test_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory):
    h = _helpers()
    files = h.RandomWeightFiles(tmp_path_factory.mktemp("bench_new_src"))
    folder = tmp_path_factory.mktemp("bench_new") / "weights"
    old = h.install_random_weights(files, folder, ("torchvision-alexnet", "torchvision-vgg16", "inception-tf"))
    yield folder
    for spec in old.values():
        W.register_weights(spec, replace=True)


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (N_IMAGES, SIZE, SIZE, 3), dtype=np.uint8)
    holes = np.zeros((N_IMAGES, SIZE, SIZE), dtype=bool)
    holes[:, 64:160, 80:200] = True
    pred = gt.copy()
    pred[holes] = 128
    return pred, gt, holes


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


@pytest.mark.benchmark(group="new-metric-networks")
def test_inception(benchmark, weights_dir, images):
    from inpaintbench.metrics.inception import create_extractor

    ext = create_extractor("inception-tf", weights_dir=weights_dir, offline=True)
    benchmark(lambda: ext.forward_nchw_u8(_nchw(images[0])))


@pytest.mark.benchmark(group="new-metric-networks")
def test_dinov2_vitl14(benchmark, images):
    from inpaintbench.metrics.dinov2 import DINOv2Extractor, build_network

    torch.manual_seed(0)
    ext = DINOv2Extractor(None, net=build_network())
    out = benchmark(lambda: ext(images[0]))
    assert out.shape == (N_IMAGES, 1024)


@pytest.mark.benchmark(group="new-metric-networks")
def test_clip_vitl14_336(benchmark, images):
    from inpaintbench.metrics.clip_features import CLIPExtractor, build_vision_tower

    torch.manual_seed(0)
    ext = CLIPExtractor(None, net=build_vision_tower())
    out = benchmark(lambda: ext(images[0]))
    assert out.shape == (N_IMAGES, 768)


@pytest.mark.benchmark(group="new-metric-networks")
def test_dists(benchmark, weights_dir, images):
    from inpaintbench.metrics.dists import DISTSMetric

    metric = DISTSMetric(weights_dir=weights_dir, offline=True)
    out = benchmark(lambda: metric.forward_nchw_u8(_nchw(images[0]), _nchw(images[1])))
    assert out.shape == (N_IMAGES,)


@pytest.mark.benchmark(group="new-metric-networks")
def test_lpips_with_hole_map(benchmark, weights_dir, images):
    from inpaintbench.metrics.lpips import LPIPSMetric

    metric = LPIPSMetric("alex", weights_dir=weights_dir, offline=True)
    x, y = (_nchw(a).float() / 127.5 - 1 for a in images[:2])
    whole, hole = benchmark(lambda: metric.forward_nchw_with_hole(x, y, torch.from_numpy(images[2])))
    assert hole.shape == (N_IMAGES,)
