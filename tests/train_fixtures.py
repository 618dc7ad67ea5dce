"""Fixtures and helpers for the training tests (imported by ``tests/test_train*.py``).

* ``vgg19_weights_dir``: a folder holding a seeded random VGG19 ``features.*`` state dict under the
  registry's file name, with ``torchvision-vgg19`` re-registered to its sha256 for the test (no URL,
  so nothing can be downloaded).
* ``protocol_128``: a 128 px variant of the ``mat-large-256`` mask protocol, so that training tests
  can run MAT at 128 px (4x cheaper than 256; the code paths are the same).
* :func:`write_images` writes smooth random RGB images; :func:`tiny_config` a fast TrainConfig.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import make_random_trunk_state
from PIL import Image

from inpaintbench import weights as W
from inpaintbench.masks import protocols as P
from inpaintbench.train.config import TrainConfig

VGG19_ID = "torchvision-vgg19"


@pytest.fixture(scope="session")
def vgg19_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("vgg19")
    path = folder / W.get_weight_spec(VGG19_ID).filename
    torch.save(make_random_trunk_state("vgg19", 4), path)
    return path, W.sha256_file(path)


@pytest.fixture
def vgg19_weights_dir(vgg19_file: tuple[Path, str]) -> Iterator[Path]:
    path, digest = vgg19_file
    old = W.get_weight_spec(VGG19_ID)
    W.register_weights(dataclasses.replace(old, urls=(), sha256=digest, sha256_prefix=None, size=None,
                                           description="seeded random VGG19 (tests)"), replace=True)
    try:
        yield path.parent
    finally:
        W.register_weights(old, replace=True)


@pytest.fixture
def protocol_128(monkeypatch: pytest.MonkeyPatch) -> str:
    proto = dataclasses.replace(P.PROTOCOLS["mat-large-256"], name="mat-large-128", resolution=128)
    monkeypatch.setitem(P.PROTOCOLS, "mat-large-128", proto)
    return "mat-large-128"


def register_protocol_128() -> None:
    """The same as ``protocol_128`` for spawned worker processes (no monkeypatch there)."""
    P.PROTOCOLS["mat-large-128"] = dataclasses.replace(P.PROTOCOLS["mat-large-256"], name="mat-large-128",
                                                       resolution=128)


def smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour image (low-frequency noise upsampled), uint8 [size, size, 3]."""
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))
    noise = rng.integers(-8, 9, img.shape)
    return np.clip(img.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def write_images(folder: Path, n: int, size: int = 128, seed: int = 0, prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"{prefix}{i:03d}.png"
        Image.fromarray(smooth_image(rng, size)).save(p)
        paths.append(p)
    return paths


def tiny_config(data: Path, out: Path, **overrides: Any) -> TrainConfig:
    """Tiny MAT at 128 px, batch 2, no perceptual loss, R1 every 2 iterations, one tick per iteration."""
    values: dict[str, Any] = dict(
        data=str(data), out=str(out), config="tiny", resolution=128, masks="mat-large-128", batch=2,
        mbstd_group=2, kimg=0.004, tick_kimg=0.002, pcp_ratio=0.0, d_reg_interval=2, seed=3,
        device="cpu",
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Training tests run single-threaded: on a small shared CPU, two spinning intra-op threads per
    process are several times slower than one (measured 0.7 s vs 1.9-6 s for a tiny-G forward)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def train_weights_dir(fast_metric_weights_dir: Path, vgg19_file: tuple[Path, str]) -> Iterator[Path]:
    """One folder with everything a test training run may need: random VGG19 (perceptual loss),
    random AlexNet (LPIPS) and a tiny TorchScript detector as ``inception-stylegan2`` (FID)."""
    path, digest = vgg19_file
    dst = fast_metric_weights_dir / path.name
    dst.symlink_to(path)
    old = W.get_weight_spec(VGG19_ID)
    W.register_weights(dataclasses.replace(old, urls=(), sha256=digest, sha256_prefix=None, size=None,
                                           description="seeded random VGG19 (tests)"), replace=True)
    try:
        yield fast_metric_weights_dir
    finally:
        W.register_weights(old, replace=True)
