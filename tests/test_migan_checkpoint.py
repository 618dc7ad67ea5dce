"""MI-GAN checkpoints: the official plain state dict, our safetensors, raw pickles, and refusals
(hostile globals with nothing executed, TorchScript, ONNX, the pre-2023-10 format, wrong resolution)."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from test_migan_fill import fill_module

from inpaintbench.errors import WeightsError
from inpaintbench.models.migan.checkpoint import (
    FORMAT_PICKLE,
    FORMAT_SAFETENSORS,
    FORMAT_TORCH,
    load_migan,
    read_migan_checkpoint,
    save_migan_safetensors,
)
from inpaintbench.models.migan.network import MIGANGenerator
from inpaintbench.weights import sha256_file


@pytest.fixture(scope="module")
def filled_sd() -> dict[str, torch.Tensor]:
    return fill_module(MIGANGenerator(256)).state_dict()


@pytest.fixture(scope="module")
def official_pt(tmp_path_factory, filled_sd) -> Path:
    """What export_inference_model.py writes: torch.save(G.state_dict()) (a zip archive, no prefix)."""
    path = tmp_path_factory.mktemp("migan") / "migan_256_places2.pt"
    torch.save(filled_sd, path)
    return path


def _same(G: torch.nn.Module, sd: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, sd[k]) for k, v in G.state_dict().items())


def test_official_state_dict_loads_strictly(official_pt, filled_sd) -> None:
    G, ck = load_migan(official_pt, resolution=256)
    assert ck.format == FORMAT_TORCH and ck.resolution == 256 and ck.sha256 == sha256_file(official_pt)
    assert _same(G, filled_sd) and not G.training
    assert not any(p.requires_grad for p in G.parameters())
    assert ck.state_dict == {}  # no second copy of the weights kept around


def test_safetensors_round_trip(tmp_path, official_pt, filled_sd) -> None:
    G, _ = load_migan(official_pt)
    path = save_migan_safetensors(G, tmp_path / "m.safetensors", {"source": "test"})
    ck = read_migan_checkpoint(path)
    assert ck.format == FORMAT_SAFETENSORS and ck.metadata == {"source": "test"}
    assert sorted(ck.state_dict) == sorted(filled_sd)  # safetensors stores keys sorted
    G2, _ = load_migan(path)
    assert _same(G2, filled_sd)
    with pytest.raises(TypeError):
        save_migan_safetensors(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")


def test_legacy_format_prefix_and_wrapper(tmp_path, filled_sd) -> None:
    """Legacy (non-zip) torch.save, a DataParallel-style prefix and a {'state_dict': ...} wrapper all load."""
    legacy = tmp_path / "legacy.pth"
    torch.save({f"module.{k}": v for k, v in filled_sd.items()}, legacy, _use_new_zipfile_serialization=False)
    G, ck = load_migan(legacy)
    assert ck.prefix_stripped == "module." and _same(G, filled_sd)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": filled_sd}, wrapped)
    assert _same(load_migan(wrapped)[0], filled_sd)


def test_raw_pickle_state_dict_loads_through_the_restricted_unpickler(tmp_path, filled_sd) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(OrderedDict(filled_sd), protocol=4))
    ck = read_migan_checkpoint(path)
    assert ck.format == FORMAT_PICKLE
    assert all(torch.equal(ck.state_dict[k], v) for k, v in filled_sd.items())


class _Hostile:
    """Unpickling this runs ``os.system`` (what a malicious checkpoint does)."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("container", ["raw-pickle", "torch-zip", "torch-legacy"])
def test_hostile_global_is_refused_with_nothing_executed(tmp_path, filled_sd, container: str) -> None:
    marker = tmp_path / "pwned"
    payload = {**dict(list(filled_sd.items())[:3]), "evil": _Hostile(marker)}
    path = tmp_path / "evil.pt"
    if container == "raw-pickle":
        path.write_bytes(pickle.dumps(payload, protocol=4))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=container == "torch-zip")
    with pytest.raises(WeightsError, match="refused.*system.*nothing from the file was executed"):
        load_migan(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")  # torch.jit deprecation notes
def test_torchscript_is_refused_without_running_it(tmp_path, monkeypatch) -> None:
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    path = tmp_path / "migan_traced.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(path))

    def forbidden(*args, **kwargs):
        raise AssertionError("TorchScript must never be loaded")

    monkeypatch.setattr(torch.jit, "load", forbidden)
    with pytest.raises(WeightsError, match="TorchScript") as err:
        load_migan(path)
    assert "torch.jit.load" in str(err.value.fix) and "Google Drive" in str(err.value.fix)


def test_onnx_is_refused_with_a_hint(tmp_path) -> None:
    path = tmp_path / "migan.onnx"
    path.write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x052.1.0" + bytes(32))
    with pytest.raises(WeightsError, match="ONNX") as err:
        load_migan(path)
    assert "state dict" in str(err.value.fix)


def test_old_insert_zeros_format_names_the_fix(tmp_path, filled_sd) -> None:
    old = {k.replace("upsample.filter_const", "upsample.insert_zeros.weight"): v for k, v in filled_sd.items()}
    path = tmp_path / "old.pt"
    torch.save(old, path)
    with pytest.raises(WeightsError, match="insert_zeros") as err:
        load_migan(path)
    assert "filter_const" in str(err.value.fix)


def test_wrong_resolution_and_foreign_files(tmp_path, official_pt, filled_sd) -> None:
    with pytest.raises(WeightsError, match="MI-GAN 256 checkpoint.*migan-512") as err:
        load_migan(official_pt, resolution=512)
    assert "migan-256" in str(err.value.fix)
    missing = dict(filled_sd)
    missing.pop("encoder.b4.conv2.conv2.weight")
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match="1 missing.*encoder.b4.conv2.conv2.weight"):
        load_migan(tmp_path / "missing.pt")
    reshaped = dict(filled_sd)
    reshaped["encoder.b256.fromrgb.bias"] = torch.zeros(7)
    torch.save(reshaped, tmp_path / "shape.pt")
    with pytest.raises(WeightsError, match="wrong shape"):
        load_migan(tmp_path / "shape.pt")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a MI-GAN"):
        load_migan(tmp_path / "other.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="no state dict"):
        load_migan(tmp_path / "list.pt")


def test_damaged_files_are_user_errors(tmp_path, official_pt) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_migan(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty or truncated"):
        load_migan(tmp_path / "empty.pt")
    data = official_pt.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError):
        load_migan(tmp_path / "cut.pt")
    (tmp_path / "text.pt").write_text("hello world, not weights")
    with pytest.raises(WeightsError, match="unknown file format"):
        load_migan(tmp_path / "text.pt")
