"""Checkpoint loading: the restricted unpickler, the official pickle layout, state dicts, safetensors."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inpaintbench.errors import WeightsError
from inpaintbench.models.mat import Discriminator, Generator, save_mat_safetensors
from inpaintbench.models.mat.checkpoint import (
    ALLOWED_GLOBALS,
    FORMAT_PICKLE,
    FORMAT_SAFETENSORS,
    FORMAT_STATE_DICT,
    load_discriminator,
    load_generator,
    read_mat_checkpoint,
    sidecar_path,
)

TINY = {"config": "tiny", "z_dim": 16, "w_dim": 16}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks are dominated by per-op overhead, which extra threads only add to on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_G(seed: int = 0, res: int = 128) -> Generator:
    torch.manual_seed(seed)
    g = Generator(res, **TINY)
    with torch.no_grad():
        for t in g.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.01)  # distinguishable from a fresh init
    return g


def tiny_D(seed: int = 1, res: int = 128) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(res, config="tiny", mbstd_group_size=8)


# ------------------------------------------------------------------ an official-format pickle, built here

OFFICIAL_CONTAINERS = {nn.ModuleList: nn.ModuleList, nn.Sequential: nn.Sequential}


class _StandInModules:
    """Creates ``torch_utils.persistence`` and ``dnnlib.util`` stand-ins in sys.modules, then removes them.

    They exist only while pickling, exactly like the official training code's modules would; loading
    must work without them (and never import them).
    """

    def __enter__(self):
        self.created = []
        pers = types.ModuleType("torch_utils.persistence")

        def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called by our loader
            raise AssertionError("the official reconstruct function must not run")

        _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
        _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
        pers._reconstruct_persistent_obj = _reconstruct_persistent_obj
        util = types.ModuleType("dnnlib.util")

        class EasyDict(dict):
            pass

        EasyDict.__module__ = "dnnlib.util"
        EasyDict.__qualname__ = "EasyDict"
        util.EasyDict = EasyDict
        for name, mod in (("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", pers),
                          ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)):
            assert name not in sys.modules
            sys.modules[name] = mod
            self.created.append(name)
        self.reconstruct, self.EasyDict = _reconstruct_persistent_obj, EasyDict
        return self

    def __exit__(self, *exc):
        for name in self.created:
            sys.modules.pop(name, None)


class _Persistent:
    """Pickles like a StyleGAN2-ADA persistent object: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, reconstruct, meta):
        self._reconstruct, self._meta = reconstruct, meta

    def __reduce__(self):
        return self._reconstruct, (self._meta,)


MODULE_SRC = "import os\nopen('SHOULD_NOT_EXIST', 'w').write('pwned')\nclass Generator: pass\n"


def official_like(module: nn.Module, env: _StandInModules, init_kwargs: dict) -> object:
    """Mirror ``module`` as the official pickle stores it (persistent objects + torch containers)."""

    def convert(m: nn.Module, kwargs: dict | None):
        params = collections.OrderedDict((k, nn.Parameter(v.detach().clone(), requires_grad=False))
                                         for k, v in m._parameters.items() if v is not None)
        buffers = collections.OrderedDict((k, v.detach().clone()) for k, v in m._buffers.items() if v is not None)
        children = collections.OrderedDict((k, convert(c, None)) for k, c in m._modules.items())
        state = {"training": False, "_parameters": params, "_buffers": buffers,
                 "_non_persistent_buffers_set": set(), "_modules": children,
                 "_forward_hooks": collections.OrderedDict(), "_init_args": (),
                 "_init_kwargs": env.EasyDict(kwargs or {}),
                 "weight_gain": np.float64(0.5), "activation": "lrelu", "act_layer": nn.GELU}
        if type(m) in OFFICIAL_CONTAINERS or type(m).__name__ == "_Pool":
            cls = nn.AdaptiveAvgPool2d if type(m).__name__ == "_Pool" else type(m)
            obj = cls.__new__(cls)
            obj.__dict__.update({k: v for k, v in state.items() if not k.startswith("_init")
                                 and k not in ("weight_gain", "activation", "act_layer")})
            return obj
        if type(m).__name__ == "Conv2dLayerPartial":  # the official class keeps a plain-attribute tensor
            state["weight_maskUpdater"] = torch.ones(1, 1, 3, 3)
        meta = {"type": "class", "version": 6, "module_src": MODULE_SRC, "class_name": type(m).__name__,
                "state": state}
        return _Persistent(env.reconstruct, meta)

    return convert(module, init_kwargs)


def write_official_pickle(path: Path, G: Generator | None, G_ema: Generator, D: Discriminator | None) -> None:
    with _StandInModules() as env:
        g_kwargs = env.EasyDict(z_dim=G_ema.z_dim, c_dim=0, w_dim=G_ema.w_dim, img_resolution=G_ema.img_resolution,
                                img_channels=3, synthesis_kwargs=env.EasyDict(channel_base=16384, channel_max=512),
                                mapping_kwargs=env.EasyDict(num_layers=8))
        snapshot = {"training_set_kwargs": env.EasyDict(class_name="datasets.dataset_512.ImageFolderMaskDataset",
                                                        resolution=G_ema.img_resolution),
                    "val_set_kwargs": {}, "augment_pipe": None,
                    "G": None if G is None else official_like(G, env, g_kwargs),
                    "G_ema": official_like(G_ema, env, g_kwargs)}
        if D is not None:
            d_kwargs = env.EasyDict(c_dim=0, img_resolution=D.img_resolution, img_channels=3, mbstd_group_size=8)
            snapshot["D"] = official_like(D, env, d_kwargs)
        path.write_bytes(pickle.dumps(snapshot, protocol=3))
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules


def pickle_globals(path: Path) -> set[str]:
    import pickletools

    found, strings = set(), []
    for op, arg, _ in pickletools.genops(path.read_bytes()):
        if op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
    return found


@pytest.fixture(scope="module")
def nets():
    return tiny_G(0), tiny_G(1), tiny_D(2)


@pytest.fixture(scope="module")
def official_pkl(tmp_path_factory, nets) -> Path:
    path = tmp_path_factory.mktemp("pkl") / "Tiny_128.pkl"
    write_official_pickle(path, *nets)
    return path


def test_synthetic_pickle_uses_the_official_globals(official_pkl) -> None:
    expected = {"torch_utils.persistence._reconstruct_persistent_obj", "dnnlib.util.EasyDict",
                "collections.OrderedDict", "builtins.set", "numpy.dtype", "torch._utils._rebuild_tensor_v2",
                "torch._utils._rebuild_parameter", "torch.storage._load_from_bytes",
                "torch.nn.modules.container.ModuleList", "torch.nn.modules.container.Sequential",
                "torch.nn.modules.pooling.AdaptiveAvgPool2d", "torch.nn.modules.activation.GELU"}
    found = pickle_globals(official_pkl)
    assert expected <= found
    assert found & {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"}


def test_official_pickle_roundtrips_every_tensor_bit_exactly(official_pkl, nets, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # where the embedded module source would write its file
    G, G_ema, D = nets
    for which, module in (("G_ema", G_ema), ("G", G), ("D", D)):
        ck = read_mat_checkpoint(official_pkl, which)
        ref = module.state_dict()
        assert ck.format == FORMAT_PICKLE and ck.network == which
        assert list(ck.state_dict) == list(ref)
        for k, v in ref.items():
            assert ck.state_dict[k].dtype == v.dtype and torch.equal(ck.state_dict[k], v), k
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules


def test_official_pickle_config_from_init_kwargs(official_pkl, nets) -> None:
    ck = read_mat_checkpoint(official_pkl)  # G_ema by default
    assert ck.network == "G_ema"
    assert ck.config == {"img_resolution": 128, "z_dim": 16, "w_dim": 16, "c_dim": 0, "img_channels": 3,
                         "mapping_layers": 8}
    assert ck.metadata["module_src_sha256"] and ck.metadata["class_name"] == "Generator"
    assert ck.metadata["init_kwargs"]["synthesis_kwargs"]["channel_base"] == 16384  # recorded, ignored
    assert len(ck.sha256) == 64
    d = read_mat_checkpoint(official_pkl, "D")
    assert d.config["mbstd_group_size"] == 8 and d.kind == "discriminator"


def test_official_pickle_builds_networks(official_pkl, nets) -> None:
    # tiny widths are not in the official init kwargs: the official table applies, so building from this
    # (tiny) pickle must fail loudly rather than load into the wrong shapes
    with pytest.raises(WeightsError, match="do not fit"):
        load_generator(official_pkl)


@pytest.mark.slow
def test_official_pickle_loads_full_width(tmp_path) -> None:
    """An official-width 256 snapshot (the released layout, ~0.4 GB here) loads strictly from the pickle."""
    torch.manual_seed(3)
    G = Generator(256)
    D = Discriminator(256)
    path = tmp_path / "CelebA-HQ_256.pkl"
    write_official_pickle(path, None, G, D)
    G2, ck = load_generator(path)
    assert ck.config["img_resolution"] == 256 and not G2.training
    for k, v in G.state_dict().items():
        assert torch.equal(G2.state_dict()[k], v), k
    D2, _ = load_discriminator(path)
    assert D2.mbstd_group_size == 8
    with pytest.raises(WeightsError, match="no 'G' network"):
        read_mat_checkpoint(path, "G")


def _reduce_pickle(tmp_path: Path, payload) -> Path:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=3))
    return path


class _WritesFile:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


class _RunsShell:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("attack", [_WritesFile, _RunsShell])
def test_malicious_reduce_is_refused_and_nothing_runs(tmp_path, attack) -> None:
    target = tmp_path / "pwned.txt"
    path = _reduce_pickle(tmp_path, {"G_ema": attack(target)})
    with pytest.raises(WeightsError, match="refused") as err:
        read_mat_checkpoint(path)
    assert "nothing from the file was executed" in str(err.value)
    assert not target.exists()


def test_exec_via_builtins_refused(tmp_path) -> None:
    class Exec:
        def __reduce__(self):
            return (exec, ("open('x','w')",))

    with pytest.raises(WeightsError, match=r"builtins\.exec"):
        read_mat_checkpoint(_reduce_pickle(tmp_path, {"G_ema": Exec()}))


def test_allow_list_is_explicit() -> None:
    mods = {m for m, _ in ALLOWED_GLOBALS}
    assert "os" not in mods and "subprocess" not in mods and "builtins" in mods
    assert {n for m, n in ALLOWED_GLOBALS if m == "builtins"} == {"set", "frozenset"}


def test_truncated_files_give_clear_errors(official_pkl, tmp_path, nets) -> None:
    data = official_pkl.read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        read_mat_checkpoint(cut)
    pth = tmp_path / "g.pth"
    torch.save(nets[0].state_dict(), pth)
    cut_pth = tmp_path / "cut.pth"
    cut_pth.write_bytes(pth.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        read_mat_checkpoint(cut_pth)
    st = save_mat_safetensors(nets[0], tmp_path / "g.safetensors")
    cut_st = tmp_path / "cut.safetensors"
    cut_st.write_bytes(st.read_bytes()[:-1000])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        read_mat_checkpoint(cut_st)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError):
        read_mat_checkpoint(empty)
    with pytest.raises(WeightsError, match="does not exist"):
        read_mat_checkpoint(tmp_path / "nope.pkl")


def test_state_dict_pth_with_shape_inference(tmp_path, nets) -> None:
    G = nets[0]
    path = tmp_path / "Places_512_FullData_G.pth"
    torch.save(G.state_dict(), path)
    G2, ck = load_generator(path)
    assert ck.format == FORMAT_STATE_DICT and ck.kind == "generator"
    assert ck.config == G.init_kwargs()
    assert all(torch.equal(G2.state_dict()[k], v) for k, v in G.state_dict().items())
    both = tmp_path / "all.pth"
    torch.save({"G": G.state_dict(), "G_ema": nets[1].state_dict(), "D": nets[2].state_dict()}, both)
    assert torch.equal(read_mat_checkpoint(both, "G").state_dict["mapping.fc0.weight"], G.mapping.fc0.weight)
    d = read_mat_checkpoint(both, "D")
    assert d.kind == "discriminator" and d.config["channel_max"] == 32
    D2, _ = load_discriminator(both, mbstd_group_size=2)
    assert D2.mbstd_group_size == 2
    with pytest.raises(WeightsError, match="holds a generator"):
        read_mat_checkpoint(path, "D")


def test_official_width_inference_256_and_512() -> None:
    from inpaintbench.models.mat.checkpoint import infer_discriminator_config, infer_generator_config

    for res in (256, 512):
        shapes_G = {k: torch.empty(s) for k, s in _manifest(res, "G").items()}
        cfg = infer_generator_config(shapes_G)
        assert cfg == {"img_resolution": res, "z_dim": 512, "w_dim": 512, "c_dim": 0, "img_channels": 3,
                       "mapping_layers": 8, "channel_base": 32768, "channel_max": 512, "dim": 180,
                       "num_heads": 6}
        dcfg = infer_discriminator_config({k: torch.empty(s) for k, s in _manifest(res, "D").items()})
        assert dcfg["img_resolution"] == res and dcfg["channel_base"] == 32768 and dcfg["mbstd_num_channels"] == 1


def _manifest(res: int, net: str) -> dict[str, tuple[int, ...]]:
    rows = (Path(__file__).parent / "fixtures" / f"mat-param-manifest-{res}.tsv").read_text().splitlines()[1:]
    out = {}
    for row in rows:
        module, name, shape, _dtype, _kind = row.split("\t")
        if module == net:
            out[name] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return out


@pytest.mark.parametrize("res", [256, 512])
def test_state_dict_keys_and_shapes_equal_official_manifest(res) -> None:
    for net, module in (("G", Generator(res)), ("D", Discriminator(res))):
        ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        ref = _manifest(res, net)
        assert ours == ref
        fake = {k: torch.zeros(s) for k, s in ref.items()}
        module.load_state_dict(fake, strict=True)


def test_safetensors_roundtrip_with_sidecar(tmp_path, nets) -> None:
    G, _, D = nets
    path = save_mat_safetensors(G, tmp_path / "ours.safetensors", {"source": "unit test", "step": 3})
    side = json.loads(sidecar_path(path).read_text())
    assert side["config"] == G.init_kwargs() and side["metadata"] == {"source": "unit test", "step": 3}
    import hashlib

    assert side["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    G2, ck = load_generator(path)
    assert ck.format == FORMAT_SAFETENSORS and ck.metadata["step"] == 3 and ck.sha256 == side["sha256"]
    assert all(torch.equal(G2.state_dict()[k], v) for k, v in G.state_dict().items())
    # the header alone is enough: the sidecar is optional
    sidecar_path(path).unlink()
    assert read_mat_checkpoint(path).config == G.init_kwargs()
    dpath = save_mat_safetensors(D, tmp_path / "d.safetensors")
    D2, _ = load_discriminator(dpath)
    assert D2.mbstd_group_size == 8
    with pytest.raises(WeightsError, match="holds a discriminator"):
        read_mat_checkpoint(dpath, "G_ema")
    leftovers = [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    assert not leftovers


def test_non_mat_files_are_rejected(tmp_path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not weights")
    with pytest.raises(WeightsError, match="unknown file format"):
        read_mat_checkpoint(junk)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(WeightsError, match="neither generator"):
        read_mat_checkpoint(other)
    plain = tmp_path / "list.pkl"
    plain.write_bytes(pickle.dumps([1, 2, 3], protocol=3))
    with pytest.raises(WeightsError, match="not a MAT snapshot"):
        read_mat_checkpoint(plain)
    buf = io.BytesIO()
    pickle.dump({"G": 1}, buf, protocol=3)
    nog = tmp_path / "nog.pkl"
    nog.write_bytes(buf.getvalue())
    with pytest.raises(WeightsError, match="no 'G_ema'"):
        read_mat_checkpoint(nog)


def test_loading_writes_nothing_beside_the_users_file(official_pkl, nets, tmp_path, isolated_home,
                                                     monkeypatch) -> None:
    """The sha256 of a loaded checkpoint is recorded in $INPAINTBENCH_HOME/cache, never next to the file."""
    folder = tmp_path / "user"
    folder.mkdir()
    pkl = folder / "official.pkl"
    pkl.write_bytes(Path(official_pkl).read_bytes())
    pth = folder / "g.pth"
    torch.save(nets[0].state_dict(), pth)
    before = sorted(p.name for p in folder.iterdir())
    for path in (pkl, pth, pkl):
        ck = read_mat_checkpoint(path)
        assert ck.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == before
    assert len(list((isolated_home / "cache" / "hashes").glob("*.json"))) == 2
