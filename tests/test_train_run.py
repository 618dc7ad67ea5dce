"""Training runs end to end on CPU (tiny MAT at 128 px): data split, train, validate, snapshot,
register, resume, failure handling."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import (  # noqa: F401
    one_torch_thread,
    protocol_128,
    tiny_config,
    train_weights_dir,
    vgg19_file,
    vgg19_weights_dir,
    write_images,
)

from inpaintbench.cli import main
from inpaintbench.errors import InputError
from inpaintbench.train import snapshot as S
from inpaintbench.train.data import DataWarning, TrainImages, read_splits, split_folder
from inpaintbench.train.loop import TrainingError, train

# ------------------------------------------------------------------------------------------ data split


def _messy_folder(root: Path) -> None:
    write_images(root / "a", 9, size=150, seed=1)
    write_images(root / "b", 5, size=140, seed=2)
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (root / "b" / "copy.png").write_bytes((root / "a" / "img000.png").read_bytes())  # a duplicate


def test_data_split_is_deterministic_content_based_and_skips_corrupt(tmp_path, capsys) -> None:  # noqa: ANN001
    src = tmp_path / "src"
    _messy_folder(src)
    with pytest.warns(DataWarning, match="skipped 1 of 16"):
        rc = main(["data", "split", str(src), "--out", str(tmp_path / "s1"), "--ratios", "0.6,0.25,0.15",
                   "--seed", "7", "--resolution", "128"])
    assert rc == 0
    m = read_splits(tmp_path / "s1")
    assert m["counts"] == {"train": 9, "val": 4, "test": 2} and m["n_images"] == 15
    assert [s["kind"] for s in m["skipped"]] == ["unreadable"] and m["duplicates"] == 1
    where = {row["source"]: name for name, rows in m["splits"].items() for row in rows}
    assert where["a/img000.png"] == where["b/copy.png"]  # duplicates never straddle splits
    for name, rows in m["splits"].items():
        files = sorted(p.relative_to(tmp_path / "s1" / name).as_posix()
                       for p in (tmp_path / "s1" / name).rglob("*.png"))
        assert files == sorted(r["file"][len(name) + 1:] for r in rows)
        for r in rows:
            from inpaintbench.images import file_sha256, read_image

            assert file_sha256(tmp_path / "s1" / r["file"]) == r["sha256"]
            assert read_image(tmp_path / "s1" / r["file"]).shape == (128, 128, 3)  # center-cropped
    # Same inputs -> byte-identical lists; renamed files -> same assignment by content.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = split_folder(src, tmp_path / "s2", (0.6, 0.25, 0.15), seed=7, resolution=128)
    assert again.manifest["digests"] == m["digests"]
    (src / "a" / "img003.png").rename(src / "a" / "zz_renamed.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        renamed = split_folder(src, tmp_path / "s3", (0.6, 0.25, 0.15), seed=7, resolution=128)
    px = {r["pixels_sha256"]: n for n, rows in renamed.manifest["splits"].items() for r in rows}
    assert px == {r["pixels_sha256"]: n for n, rows in m["splits"].items() for r in rows}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = split_folder(src, tmp_path / "s4", (0.6, 0.25, 0.15), seed=8, resolution=128)
    assert other.manifest["digests"]["train"] != m["digests"]["train"]
    with pytest.raises(InputError, match="already exists"):
        split_folder(src, tmp_path / "s1", (0.6, 0.25, 0.15), seed=7, resolution=128)


# ------------------------------------------------------------------------------------------ bad input


def test_bad_training_input_fails_early_with_clear_errors(tmp_path, protocol_128) -> None:  # noqa: ANN001, F811
    data = tmp_path / "data"
    write_images(data, 3, size=128)
    (data / "bad.png").write_bytes(b"garbage")
    with pytest.warns(DataWarning, match="skipped 1 unreadable"):
        imgs = TrainImages(data, 128, seed=0)
    assert len(imgs) == 3 and imgs.skipped[0][0].endswith("bad.png")
    with pytest.raises(InputError, match="fewer than one batch of 4"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(tiny_config(data, tmp_path / "r0", batch=4))

    # An init checkpoint of another resolution is refused before any training.
    from inpaintbench.models.mat import Generator, save_mat_safetensors

    ck = save_mat_safetensors(Generator(128, config="tiny"), tmp_path / "g128.safetensors")
    write_images(tmp_path / "d256", 4, size=256)
    with pytest.raises(InputError, match="128x128 model, but training is at 256"):
        train(tiny_config(tmp_path / "d256", tmp_path / "r1", resolution=256, masks="mat-large-256",
                          init=str(ck)))
    with pytest.raises(InputError, match="--config full does not match"):
        train(tiny_config(data, tmp_path / "r2", init=str(ck), config="full"))
    with pytest.raises(InputError, match="not a file, a run directory"):
        train(tiny_config(data, tmp_path / "r3", init="no-such-checkpoint"))


# ------------------------------------------------------------------------------------------ full run


def test_train_cli_end_to_end_validates_snapshots_and_registers(  # noqa: ANN201
        tmp_path, protocol_128, train_weights_dir, isolated_home):  # noqa: ANN001, F811
    from inpaintbench.masks.maskset import MaskSet

    src = tmp_path / "src"
    write_images(src, 12, size=144, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["data", "split", str(src), "--out", str(tmp_path / "splits"), "--ratios", "0.5,0.25,0.25",
                     "--seed", "123", "--resolution", "128"]) == 0
    MaskSet.generate("mat-large-128", 3, seed=0).save(tmp_path / "vmasks")
    run = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "splits" / "train"), "--val", str(tmp_path / "splits" / "val"),
            "--out", str(run), "--config", "tiny", "--resolution", "128", "--masks", "mat-large-128",
            "--val-masks", str(tmp_path / "vmasks"), "--batch", "2", "--mbstd-group", "2", "--kimg", "0.004",
            "--tick", "0.002", "--weights-dir", str(train_weights_dir), "--offline", "--device", "cpu",
            "--val-feature-extractor", "inception-stylegan2", "--best-metric", "psnr", "--name", "mat-test-ft",
            "--augment", "ada", "--seed", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0

    rows = S.read_metrics(run)
    assert [r["tick"] for r in rows] == [0, 1] and [r["kimg"] for r in rows] == [0.002, 0.004]
    for r in rows:  # the shape `inpaintbench plot training` reads
        assert set(r["val"]) >= {"psnr", "ssim", "l1", "lpips", "fid"}
        assert all(isinstance(r["val"][k], float) and np.isfinite(r["val"][k]) for k in ("psnr", "lpips", "fid"))
        assert {"G/adv", "G/pcp", "G/total", "D/real", "D/fake"} <= set(r["loss"])
        assert r["snapshot"].startswith("snapshots/tick-")
    assert "D/r1" in rows[0]["loss"]  # R1 ran on iteration 0 (lazy interval 16)
    assert S.list_snapshots(run) == ["tick-000000", "tick-000001"]
    best = json.loads((run / S.BEST).read_text())
    vals = [r["val"]["psnr"] for r in rows]
    assert best["metric"] == "psnr" and best["value"] == max(vals)
    run_json = json.loads((run / S.RUN).read_text())
    assert run_json["config"]["augment"] == "ada" and run_json["data"]["n"] == 6
    assert any("ADA" in n for n in run_json["recipe"])
    state = S.read_state(S.resolve_snapshot(run))
    assert state["counters"]["nimg"] == 4 and state["data_digest"] == run_json["data"]["digest"]

    from inpaintbench.train.registry import local_models

    entry = local_models()["mat-test-ft"]
    assert Path(entry["checkpoint"]).is_file() and entry["resolution"] == 128
    assert entry["snapshot"].endswith(best["snapshot"].split("/")[-1])

    # A new process would find it through register_local_models(); simulate that registry state.
    from inpaintbench.models import base
    from inpaintbench.train.registry import register_local_models

    base._REGISTRY.pop("mat-test-ft", None)
    assert "mat-test-ft" in register_local_models() and "mat-test-ft" in base.list_models()
    try:
        _evaluate_registered(tmp_path, entry)
    finally:
        base._REGISTRY.pop("mat-test-ft", None)  # do not leak a model id into other tests


def _evaluate_registered(tmp_path: Path, entry: dict) -> None:
    # ... and it is evaluated like any other model, on the held-out split.
    out = tmp_path / "results"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["run", "--model", "mat-test-ft", "--data", f"folder:{tmp_path / 'splits' / 'test'}",
                   "--masks", str(tmp_path / "vmasks"), "--resolution", "128", "--metrics", "psnr,ssim,l1",
                   "--device", "cpu", "--out", str(out), "--offline"])
    assert rc == 0
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    assert manifest["model"]["name"] == "mat-test-ft"
    assert manifest["model"]["weights"]["sha256"] == entry["sha256"]  # the registered, hashed file
    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    assert summary["n_ok"] == 3 and np.isfinite(summary["metrics"]["psnr"]["mean"])


def test_nan_loss_stops_and_keeps_the_last_good_snapshot(tmp_path, protocol_128, monkeypatch, capsys):  # noqa: ANN001, ANN201, F811
    from inpaintbench.train.loss import TwoStageLoss

    data = tmp_path / "data"
    write_images(data, 4, size=128)
    real_d_main = TwoStageLoss.d_main

    def poisoned(self, batch):  # noqa: ANN001, ANN202
        loss, stats, signs = real_d_main(self, batch)
        return (loss * float("nan") if batch.iteration == 1 else loss), stats, signs

    monkeypatch.setattr(TwoStageLoss, "d_main", poisoned)
    cfg = tiny_config(data, tmp_path / "run", kimg=0.008)
    with pytest.raises(TrainingError, match=r"non-finite D loss .* at iteration 1 .*last good snapshot") as exc:
        train(cfg)
    assert "tick-000000" in str(exc.value)
    snap = S.resolve_snapshot(tmp_path / "run")
    assert snap.name == "tick-000000" and S.read_state(snap)["counters"]["iteration"] == 1
    sd, _ = S.read_network_file(snap / "G_ema.safetensors")
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
    # The same through the CLI: one line, exit code 1, the iteration named.
    rc = main(["train", "--resume", str(tmp_path / "run"), "--kimg", "0.008"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "iteration 1" in err and "Traceback" not in err


def test_existing_run_needs_resume(tmp_path, protocol_128) -> None:  # noqa: ANN001, F811
    data = tmp_path / "data"
    write_images(data, 2, size=128)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / S.LATEST).write_text("{}")
    with pytest.raises(InputError, match="already holds a training run"):
        train(tiny_config(data, tmp_path / "run"))


# ------------------------------------------------------------------------------------------ resume


def _final_tensors(run: Path) -> dict[str, torch.Tensor]:
    snap = S.resolve_snapshot(run)
    out = {}
    for name in ("G", "G_ema", "D"):
        sd, _ = S.read_network_file(snap / f"{name}.safetensors")
        out.update({f"{name}.{k}": v for k, v in sd.items()})
    from safetensors.torch import load_file

    out.update({f"optim.{k}": v for k, v in load_file(str(snap / "optim.safetensors")).items()
                if not k.startswith("rng/")})
    return out


@pytest.mark.slow
def test_interrupted_and_resumed_training_equals_uninterrupted(tmp_path, protocol_128, vgg19_weights_dir):  # noqa: ANN001, ANN201, F811
    """3 iterations straight vs 2 iterations, stop, ``--resume`` to 3: identical parameters, EMA,
    Adam states and ADA p (bit for bit on CPU). ADA adjusts p every iteration and R1 runs every
    second iteration, so every piece of state is exercised across the interruption."""
    data = tmp_path / "data"
    write_images(data, 5, size=136)
    common = dict(augment="ada", ada_interval=1, ada_kimg=0.05, ada_target=-1.0, pcp_ratio=0.1,
                  weights_dir=str(vgg19_weights_dir), offline=True)
    straight = train(tiny_config(data, tmp_path / "straight", kimg=0.006, **common))
    first = train(tiny_config(data, tmp_path / "split", kimg=0.004, **common))
    assert first is not None and first.iterations == 2
    resumed = train(tiny_config(data, tmp_path / "ignored"), resume=tmp_path / "split", given={"kimg": 0.006})
    assert straight is not None and resumed is not None and resumed.iterations == 3
    a, b = _final_tensors(tmp_path / "straight"), _final_tensors(tmp_path / "split")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    sa = S.read_state(S.resolve_snapshot(tmp_path / "straight"))
    sb = S.read_state(S.resolve_snapshot(tmp_path / "split"))
    assert sa["augment"]["p"] == sb["augment"]["p"] > 0  # ADA really augmented in the resumed part
    assert sa["loss"] == sb["loss"]
    la, lb = S.read_metrics(tmp_path / "straight"), S.read_metrics(tmp_path / "split")
    assert [r["loss"] for r in la] == [r["loss"] for r in lb] and [r["tick"] for r in lb] == [0, 1, 2]
