"""LaMa checkpoint readers: Lightning best.ckpt (with stand-ins), big-lama.zip, state dicts, safetensors,
TorchScript tensors; hostile files are refused with nothing executed."""

from __future__ import annotations

import io
import os
import pickle
import sys
import types
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from test_lama_network import TINY, randomize_

from inpaintbench.errors import WeightsError
from inpaintbench.models.lama import LamaGenerator, load_lama_generator, read_lama_checkpoint, save_lama_safetensors
from inpaintbench.models.lama.checkpoint import (
    FORMAT_LIGHTNING,
    FORMAT_SAFETENSORS,
    FORMAT_STATE_DICT,
    FORMAT_TORCHSCRIPT,
    infer_config,
)


@pytest.fixture
def tiny() -> LamaGenerator:
    return randomize_(LamaGenerator(**TINY), seed=7).eval().requires_grad_(False)


def _fake_modules() -> dict[str, types.ModuleType]:
    """Importable stand-ins for omegaconf / pytorch_lightning so torch.save can pickle references to them."""
    mods = {}
    for name in ("omegaconf", "omegaconf.dictconfig", "omegaconf.base", "pytorch_lightning",
                 "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"):
        mods[name] = types.ModuleType(name)

    class DictConfig:  # pickled like omegaconf's: class + __dict__ state
        def __init__(self, content):
            self._content = content
            self._metadata = mods["omegaconf.base"].Metadata(dict)

    class Metadata:
        def __init__(self, object_type):
            self.object_type = object_type

    class ModelCheckpoint:
        pass

    for cls, mod in ((DictConfig, "omegaconf.dictconfig"), (Metadata, "omegaconf.base"),
                     (ModelCheckpoint, "pytorch_lightning.callbacks.model_checkpoint")):
        cls.__module__ = mod
        cls.__qualname__ = cls.__name__
        setattr(mods[mod], cls.__name__, cls)
    return mods


def save_lightning_ckpt(gen: torch.nn.Module, path: Path, extra_hparams: object = None) -> Path:
    """A file shaped like big-lama's best.ckpt: PL 1.2 top-level keys, generator.* + other module keys."""
    mods = _fake_modules()
    sys.modules.update(mods)
    try:
        DictConfig = mods["omegaconf.dictconfig"].DictConfig
        ModelCheckpoint = mods["pytorch_lightning.callbacks.model_checkpoint"].ModelCheckpoint
        sd = OrderedDict((f"generator.{k}", v) for k, v in gen.state_dict().items())
        sd["val_evaluator.scores.ssim.weight"] = torch.ones(3)
        sd["discriminator.model0.0.weight"] = torch.ones(2, 2)
        hp = {"generator": {"kind": "ffc_resnet", "ngf": TINY["ngf"]}, "extra": extra_hparams}
        torch.save({"epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9", "state_dict": sd,
                    "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(1.5), "dirpath": "/x"}},
                    "hyper_parameters": DictConfig(hp), "hparams_type": DictConfig}, path)
    finally:
        for name in mods:
            sys.modules.pop(name, None)
    return path


def _same_weights(gen: torch.nn.Module, sd: dict[str, torch.Tensor]) -> bool:
    own = gen.state_dict()
    return set(own) == set(sd) and all(torch.equal(own[k], sd[k]) for k in own)


def test_lightning_ckpt_keeps_only_the_generator_and_imports_nothing(tiny, tmp_path) -> None:
    path = save_lightning_ckpt(tiny, tmp_path / "best.ckpt")
    assert "omegaconf" not in sys.modules and "pytorch_lightning" not in sys.modules
    ck = read_lama_checkpoint(path)
    assert ck.format == FORMAT_LIGHTNING
    assert _same_weights(tiny, ck.state_dict)  # generator.* only, prefix removed
    assert ck.config == {**ck.config, **TINY} and ck.metadata["epoch"] == 40
    assert "omegaconf" not in sys.modules and "pytorch_lightning" not in sys.modules  # stand-ins, no import
    gen, ck2 = load_lama_generator(path)
    x = torch.rand(1, 4, 24, 32)
    with torch.no_grad():
        assert torch.equal(gen(x), tiny(x))
    assert len(ck2.sha256) == 64


def test_big_lama_zip_as_published_is_read_directly(tiny, tmp_path) -> None:
    ckpt = save_lightning_ckpt(tiny, tmp_path / "best.ckpt")
    z = tmp_path / "big-lama.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big-lama/config.yaml", "generator:\n  kind: ffc_resnet\n")
        zf.write(ckpt, "big-lama/models/best.ckpt")
    ck = read_lama_checkpoint(z)
    assert ck.format == FORMAT_LIGHTNING and ck.metadata["member"] == "big-lama/models/best.ckpt"
    assert _same_weights(tiny, ck.state_dict)


@pytest.mark.parametrize("layout", ["bare", "prefixed", "wrapped"])
def test_plain_state_dict_pth(tiny, tmp_path, layout) -> None:
    sd = tiny.state_dict()
    obj = {"bare": sd, "prefixed": {f"generator.{k}": v for k, v in sd.items()}, "wrapped": {"state_dict": sd}}[layout]
    torch.save(obj, tmp_path / "g.pth")
    ck = read_lama_checkpoint(tmp_path / "g.pth")
    assert ck.format in (FORMAT_STATE_DICT, FORMAT_LIGHTNING) and _same_weights(tiny, ck.state_dict)


def test_safetensors_round_trip(tiny, tmp_path) -> None:
    p = save_lama_safetensors(tiny, tmp_path / "g.safetensors", {"fill": "random seed 7"})
    ck = read_lama_checkpoint(p)
    assert ck.format == FORMAT_SAFETENSORS and ck.config == tiny.init_kwargs()
    assert ck.metadata == {"fill": "random seed 7"} and _same_weights(tiny, ck.state_dict)


def test_config_is_inferred_from_shapes(tiny) -> None:
    assert infer_config(tiny.state_dict()) == tiny.init_kwargs()
    odd = LamaGenerator(ngf=6, n_downsampling=2, n_blocks=1, ratio=0.7)  # int(24 * 0.7) = 16 global channels
    cfg = infer_config(odd.state_dict())
    assert LamaGenerator(**cfg).state_dict().keys() == odd.state_dict().keys()
    assert all(LamaGenerator(**cfg).state_dict()[k].shape == v.shape for k, v in odd.state_dict().items())


class _Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_lightning_ckpt_with_a_hostile_global_is_refused(tiny, tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = save_lightning_ckpt(tiny, tmp_path / "evil.ckpt", extra_hparams=_Hostile(marker))
    with pytest.raises(WeightsError, match=r"refused to load: the pickle references (posix|os)\.system"):
        read_lama_checkpoint(path)
    assert not marker.exists()


def test_bare_hostile_pickle_is_refused(tmp_path) -> None:
    marker = tmp_path / "pwned2"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"state_dict": _Hostile(marker)}, protocol=2))
    with pytest.raises(WeightsError, match="refused"):
        read_lama_checkpoint(path)
    assert not marker.exists()


def test_hostile_reduce_through_a_stand_in_module_does_nothing(tiny, tmp_path) -> None:
    """A global under a stand-in module (``pathlib.Path``) is an inert record, whatever its arguments."""
    marker = tmp_path / "pwned3"

    class Sneaky:
        def __reduce__(self):
            return (Path, (str(marker),))

    path = save_lightning_ckpt(tiny, tmp_path / "sneaky.ckpt", extra_hparams=Sneaky())
    ck = read_lama_checkpoint(path)
    assert _same_weights(tiny, ck.state_dict) and not marker.exists()


class _Wrapper(torch.nn.Module):
    """Like LaMa's bin/to_jit.py JITWrapper: holds the generator as ``model``, returns the composite."""

    def __init__(self, gen: torch.nn.Module):
        super().__init__()
        self.model = gen

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.model(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * out + (1 - mask) * image


def _trace(module: torch.nn.Module, args: tuple, path: Path) -> Path:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.jit.trace(module, args).save(str(path))
    return path


def test_torchscript_tensors_are_read_without_running_its_code(tiny, tmp_path, monkeypatch) -> None:
    tiny.impl = "reference"
    img, mask = torch.rand(1, 3, 16, 16), (torch.rand(1, 1, 16, 16) > 0.5).float()
    path = _trace(_Wrapper(tiny), (img, mask), tmp_path / "big-lama.pt")

    def refuse(*a, **k):
        raise AssertionError("TorchScript must not be loaded")

    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch._C, "import_ir_module", refuse)
    ck = read_lama_checkpoint(path)
    assert ck.format == FORMAT_TORCHSCRIPT and _same_weights(tiny, ck.state_dict)


def test_torchscript_that_is_not_lama_is_refused_with_the_conversion_recipe(tmp_path) -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    path = _trace(conv, (torch.rand(1, 3, 8, 8),), tmp_path / "other.pt")
    with pytest.raises(WeightsError) as e:
        read_lama_checkpoint(path)
    assert "TorchScript" in e.value.message and "torch.save(m.state_dict()" in (e.value.fix or "")


def test_damaged_and_foreign_files_are_clear_errors(tiny, tmp_path) -> None:
    good = save_lightning_ckpt(tiny, tmp_path / "best.ckpt")
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cut.ckpt"):
        read_lama_checkpoint(cut)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(WeightsError, match="empty or truncated"):
        read_lama_checkpoint(tmp_path / "empty.ckpt")
    (tmp_path / "text.ckpt").write_text("hello world, not weights")
    with pytest.raises(WeightsError, match="unknown file format"):
        read_lama_checkpoint(tmp_path / "text.ckpt")
    with pytest.raises(WeightsError, match="does not exist"):
        read_lama_checkpoint(tmp_path / "missing.ckpt")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "no weights")
    (tmp_path / "other.zip").write_bytes(buf.getvalue())
    with pytest.raises(WeightsError, match="without a torch archive"):
        read_lama_checkpoint(tmp_path / "other.zip")


def test_weights_that_do_not_fit_are_refused_strictly(tiny, tmp_path) -> None:
    sd = dict(tiny.state_dict())
    sd.pop("model.1.bn_l.running_var")
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="1 missing"):
        load_lama_generator(tmp_path / "partial.pth")
    torch.save({"encoder.weight": torch.ones(2)}, tmp_path / "foreign.pth")
    with pytest.raises(WeightsError, match="no generator weights"):
        read_lama_checkpoint(tmp_path / "foreign.pth")
