"""Inception extractors: torch-fidelity parity, NVIDIA TorchScript loading and hash refusal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from inpaintbench import weights as W
from inpaintbench.errors import UnknownNameError, WeightsError
from inpaintbench.metrics.inception import create_extractor, list_extractors


class _UInt8Images(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.images[i]).permute(2, 0, 1).contiguous()  # uint8 CHW


def test_inception_tf_equals_torch_fidelity_pipeline(random_weights_dir: Path, no_network: list[str]):
    ours = create_extractor("inception-tf", weights_dir=random_weights_dir, offline=True, max_batch=2)
    images = np.random.default_rng(0).integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    feats = ours(images).numpy()

    path = random_weights_dir / W.get_weight_spec("inception-tf").filename
    ref_net = create_feature_extractor("inception-v3-compat", ["2048"], cuda=False,
                                       feature_extractor_weights_path=str(path), verbose=False)
    ref = get_featuresdict_from_dataset(_UInt8Images(images), ref_net, batch_size=2, cuda=False,
                                        save_cpu_ram=True, verbose=False)["2048"].numpy()
    assert feats.shape == (2, 2048) and feats.dtype == np.float32
    assert feats.std(axis=0).max() > 1e-4  # random net, yet images are distinguishable
    np.testing.assert_array_equal(feats, ref)
    d = ours.describe()
    assert d["extractor"] == "inception-tf" and d["weights"]["sha256"] == W.cached_sha256(path)
    assert no_network == []


def test_inception_tf_refuses_pickles_that_are_not_state_dicts(tmp_path: Path, isolated_home: Path):
    spec = W.get_weight_spec("inception-tf")
    path = tmp_path / spec.filename
    torch.save({"net": torch.nn.Linear(2, 2)}, path)  # a pickled module: needs unsafe unpickling
    W.register_weights(dataclasses.replace(spec, urls=(), sha256=W.sha256_file(path)), replace=True)
    try:
        with pytest.raises(WeightsError, match="not a plain PyTorch state dict"):
            create_extractor("inception-tf", weights_dir=tmp_path, offline=True)
    finally:
        W.register_weights(spec, replace=True)


class _FakeDetector(torch.nn.Module):
    """Same call signature as NVIDIA's TorchScript Inception: uint8 NCHW, ``return_features``."""

    def __init__(self, scale: float):
        super().__init__()
        self.proj = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 3 * 2048).reshape(3, 2048) * scale)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if img.dtype != torch.uint8:
            raise RuntimeError("expects uint8 images")
        x = img.to(torch.float32).mean(dim=(2, 3))  # [N, 3]
        feats = x @ self.proj
        if return_features:
            return feats
        return feats[:, :1008].softmax(dim=1)  # "probabilities": the wrong output


@pytest.fixture
def torchscript_spec(tmp_path: Path, isolated_home: Path):
    spec = W.get_weight_spec("inception-stylegan2")
    folder = tmp_path / "w"
    folder.mkdir()
    path = folder / spec.filename
    torch.jit.save(torch.jit.script(_FakeDetector(1.0)), str(path))
    new = dataclasses.replace(spec, urls=(), sha256=W.sha256_file(path), size=None)
    W.register_weights(new, replace=True)
    yield folder, path
    W.register_weights(spec, replace=True)


def test_stylegan2_torchscript_is_called_like_mat(torchscript_spec, no_network: list[str]):
    folder, _ = torchscript_spec
    ex = create_extractor("inception-stylegan2", weights_dir=folder, offline=True)
    images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    feats = ex(images).numpy()
    means = images.reshape(4, -1, 3).mean(axis=1)
    expected = means @ _FakeDetector(1.0).proj.detach().numpy()
    assert feats.shape == (4, 2048)
    # float32 on the device side: a 256-term sum of nonnegative values (mean over 16x16, /256 exact) is off
    # by ≤ γ_256 relative, then a 3-term dot product adds γ_3: |err| ≤ γ_259·(|means| @ |proj|), u = 2^-24;
    # the float64 reference adds < 1e-12
    u = 2.0**-24
    bound = 259 * u / (1 - 259 * u) * (np.abs(means) @ np.abs(_FakeDetector(1.0).proj.detach().numpy()))
    assert np.all(np.abs(feats - expected) <= bound + 1e-12)
    assert ex.describe()["weights"]["verified"] is True
    assert no_network == []


def test_stylegan2_torchscript_refused_unless_hash_matches(torchscript_spec):
    folder, path = torchscript_spec
    torch.jit.save(torch.jit.script(_FakeDetector(2.0)), str(path))  # someone else's "code"
    with pytest.raises(WeightsError, match="sha256"):
        create_extractor("inception-stylegan2", weights_dir=folder, offline=True)
    # --allow-unverified-weights does not apply to executable TorchScript
    with pytest.raises(WeightsError, match="refusing to load TorchScript"):
        create_extractor("inception-stylegan2", weights_dir=folder, offline=True, allow_unverified=True)


def test_unknown_extractor_and_missing_weights(tmp_path: Path, isolated_home: Path, no_network: list[str]):
    assert list_extractors() == ["inception-stylegan2", "inception-tf"]
    with pytest.raises(UnknownNameError):
        create_extractor("inception-pytorch-fid")
    with pytest.raises(WeightsError, match="inception-tf"):
        create_extractor("inception-tf", weights_dir=tmp_path, offline=True)
    assert no_network == []
