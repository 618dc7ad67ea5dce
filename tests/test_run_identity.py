"""Run identity: a changed checkpoint, weights file or model option never returns the old numbers, and
`models register` never silently replaces a model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from run_paths import run_cli
from train_fixtures import protocol_128, write_images  # noqa: F401  (fixture)

from inpaintbench.masks.maskset import MaskSet
from inpaintbench.models.mat import Generator, save_mat_safetensors
from inpaintbench.results import read_run_files as load_run
from inpaintbench.train import snapshot as S

R = 128
PIXEL = ["--metrics", "psnr,ssim,l1"]


def _tiny_generator_file(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    G = Generator(R, z_dim=16, w_dim=16, config="tiny")
    with torch.no_grad():  # keep outputs in a useful range: shrink the ToRGB paths
        for name, p in G.named_parameters():
            if "toRGB" in name and name.endswith("conv.weight"):
                p.mul_(0.05)
    return save_mat_safetensors(G, path, {"note": f"random tiny MAT, seed {seed}"})


@pytest.fixture
def data(tmp_path: Path, protocol_128: str) -> list[str]:  # noqa: F811
    write_images(tmp_path / "images", 3, size=R, seed=2)
    MaskSet.generate(protocol_128, 3, seed=0).save(tmp_path / "masks")
    return ["--data", f"folder:{tmp_path / 'images'}", "--masks", str(tmp_path / "masks"), "--resolution", str(R),
            "--device", "cpu", *PIXEL]


def _psnr(run_dir: Path) -> pd.Series:
    _, rows, _ = load_run(run_dir)
    assert (rows["status"] == "ok").all(), rows["error"].tolist()
    return rows.set_index("sample_id")["psnr"]


def _only_runs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "manifest.json").is_file())


def test_overwritten_weights_file_and_changed_option_recompute(capsys, tmp_path, data):
    weights = _tiny_generator_file(tmp_path / "ckpt" / "net.safetensors", seed=0)
    out = tmp_path / "out"
    code, text = run_cli(capsys, "run", "--model", "mat", "--weights", str(weights), *data, "--out", str(out))
    assert code == 0, text
    [first] = _only_runs(out)
    before = _psnr(first)

    # Same path, other bytes (the sidecar JSON is left as it was, as a user's `cp` would).
    other = _tiny_generator_file(tmp_path / "other" / "net.safetensors", seed=1)
    shutil.copyfile(other, weights)
    code, text = run_cli(capsys, "run", "--model", "mat", "--weights", str(weights), *data, "--out", str(out))
    assert code == 0, text
    second = [p for p in _only_runs(out) if p != first]
    assert len(second) == 1, "a changed checkpoint must get its own run directory"
    assert not _psnr(second[0]).equals(before)
    assert load_run(first)[0]["identity"]["model"] != load_run(second[0])[0]["identity"]["model"]
    pd.testing.assert_series_equal(_psnr(first), before)  # the old run is untouched

    # A changed model option is a different run too; with an explicit --out it is refused, naming it.
    code, text = run_cli(capsys, "run", "--model", "mat", "--weights", str(weights), *data, "--out", str(out),
                      "-O", "noise_mode=none")
    assert code == 0, text
    assert len(_only_runs(out)) == 3
    code, text = run_cli(capsys, "run", "--model", "mat", "--weights", str(weights), *data, "--out", str(out),
                      "-O", "noise_mode=const")
    assert code == 0 and len(_only_runs(out)) == 4
    target = _only_runs(out)[0]
    from inpaintbench.runner import RunConfig, evaluate_model

    config = RunConfig(model="mat", model_kwargs={"weights": str(weights), "noise_mode": "none", "seed": 7},
                       dataset=data[1], masks=data[3], resolution=R, metrics=("psnr",), device="cpu")
    from inpaintbench.errors import InputError

    with pytest.raises(InputError, match=r"differs in: .*model"):
        evaluate_model(config, target)


def _fake_training_run(run_dir: Path, weights: Path) -> Path:
    """The layout `inpaintbench train` leaves: a snapshot with G_ema and a latest pointer."""
    snap = run_dir / S.SNAPSHOTS / S.snapshot_name(0)
    snap.mkdir(parents=True)
    shutil.copyfile(weights, snap / "G_ema.safetensors")
    shutil.copyfile(weights.with_name(weights.name + ".json"), snap / "G_ema.safetensors.json")
    state = {"format": S.SNAPSHOT_FORMAT, "version": S.SNAPSHOT_VERSION, "kimg": 0.0,
             "config": {"resolution": R, "config": "tiny"}}
    (snap / S.STATE).write_text(json.dumps(state))
    (run_dir / S.LATEST).write_text(json.dumps({"snapshot": f"{S.SNAPSHOTS}/{S.snapshot_name(0)}"}))
    return run_dir


def test_reregistered_name_never_returns_the_old_numbers(capsys, tmp_path, data, isolated_home):
    from inpaintbench.models import base

    run1 = _fake_training_run(tmp_path / "train1", _tiny_generator_file(tmp_path / "a" / "g.safetensors", 0))
    run2 = _fake_training_run(tmp_path / "train2", _tiny_generator_file(tmp_path / "b" / "g.safetensors", 1))
    out = tmp_path / "out"
    try:
        assert run_cli(capsys, "models", "register", "mynet", str(run1))[0] == 0
        code, text = run_cli(capsys, "run", "--model", "mynet", *data, "--out", str(out))
        assert code == 0, text
        [first] = _only_runs(out)
        before = _psnr(first)

        code, text = run_cli(capsys, "models", "register", "mynet", str(run2))
        assert code == 1 and "already registered" in text and "--overwrite" in text
        code, text = run_cli(capsys, "models", "register", "mynet", str(run2), "--overwrite")
        assert code == 0, text
        code, text = run_cli(capsys, "run", "--model", "mynet", *data, "--out", str(out))
        assert code == 0, text
        second = [p for p in _only_runs(out) if p != first]
        assert len(second) == 1 and not _psnr(second[0]).equals(before)
        assert f"Results: {second[0]}" in text.replace("\n", "")
    finally:
        base._REGISTRY.pop("mynet", None)


def test_corrupt_local_registry_is_an_error_not_an_empty_registry(capsys, tmp_path, isolated_home):
    from inpaintbench.train.registry import local_models, register_local_models, registry_path

    path = registry_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "inpaintbench-local-models", "models": {"x": ')  # truncated
    from inpaintbench.errors import InputError

    with pytest.raises(InputError, match="not valid JSON"):
        local_models()
    with pytest.warns(UserWarning, match="local models unavailable"):
        assert register_local_models() == []
    run = _fake_training_run(tmp_path / "t", _tiny_generator_file(tmp_path / "g.safetensors", 0))
    code, text = run_cli(capsys, "models", "register", "mynet", str(run))
    assert code == 1 and "not valid JSON" in text
    assert path.read_text().endswith('"x": ')  # nothing was overwritten
    # Other models keep working.
    code, text = run_cli(capsys, "run", "--model", "telea", "--limit", "1", *PIXEL, "--out", str(tmp_path / "o"))
    assert code == 0, text
