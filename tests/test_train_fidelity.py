"""The trainer against the official MAT training code (issue 10): validation equals `run`, the
official nan_to_num and our separate guard, ADA's adjustment semantics, BORDER_REFLECT padding,
data loading with workers, resume warnings and the official feature-mixing draw."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from train_fixtures import one_torch_thread, protocol_128, tiny_config, write_images  # noqa: F401

from inpaintbench.cli import main
from inpaintbench.train import snapshot as S
from inpaintbench.train.augment import AdaptiveAugment
from inpaintbench.train.batches import IterationBatches, iteration_loader
from inpaintbench.train.config import TrainConfig
from inpaintbench.train.data import TrainImages
from inpaintbench.train.loop import TrainingError, train
from inpaintbench.train.numerics import NonFiniteMonitor, sanitize_gradients

# ------------------------------------------------------------------------------- validation == run


def test_validation_per_image_numbers_equal_run_of_the_registered_snapshot(  # noqa: ANN201
        tmp_path, protocol_128, isolated_home):  # noqa: ANN001, F811
    from inpaintbench.masks.maskset import MaskSet
    from inpaintbench.models import base

    write_images(tmp_path / "train", 4, size=128, seed=1)
    write_images(tmp_path / "val", 3, size=140, seed=2)  # center-cropped to 128 by both paths
    MaskSet.generate("mat-large-128", 3, seed=0).save(tmp_path / "vmasks")
    run = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val"), "--out", str(run),
            "--config", "tiny", "--resolution", "128", "--masks", "mat-large-128", "--val-masks",
            str(tmp_path / "vmasks"), "--batch", "2", "--mbstd-group", "2", "--kimg", "0.002", "--tick", "0.002",
            "--pcp-ratio", "0", "--val-metrics", "psnr,ssim,l1", "--best-metric", "psnr", "--device", "cpu",
            "--name", "mat-val-eq", "--seed", "5", "--offline"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0
    state = S.read_state(S.resolve_snapshot(run, "best"))
    val_rows = {r["sample_id"]: r for r in state["val_per_image"]}
    assert len(val_rows) == 3 and all(r["status"] == "ok" for r in val_rows.values())
    recorded = json.loads((run / S.RUN).read_text())["validation"]["equivalent_run"]
    assert "--seed 0" in recorded and str(tmp_path / "vmasks") in recorded
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["run", "--model", "mat-val-eq", "--data", f"folder:{tmp_path / 'val'}", "--masks",
                         str(tmp_path / "vmasks"), "--resolution", "128", "--seed", "0", "--metrics",
                         "psnr,ssim,l1", "--device", "cpu", "--out", str(tmp_path / "res"), "--offline"]) == 0
    finally:
        base._REGISTRY.pop("mat-val-eq", None)
    rows = pd.read_parquet(next((tmp_path / "res").glob("*/per_image.parquet")))
    assert sorted(rows["sample_id"]) == sorted(val_rows)
    for _, row in rows.iterrows():
        for metric in ("psnr", "ssim", "l1"):
            # Same weights, same adapter, same samples and seeds, same metric code: exactly equal.
            assert row[metric] == val_rows[row["sample_id"]][metric], (row["sample_id"], metric)
    # and the summary logged in metrics.jsonl is the mean of those values
    logged = S.read_metrics(run)[-1]["val"]
    assert logged["psnr"] == pytest.approx(float(np.mean([r["psnr"] for r in val_rows.values()])), rel=1e-12)


# ------------------------------------------------------------------------------- non-finite values


def test_sanitize_gradients_is_the_official_nan_to_num_and_counts() -> None:
    lin = torch.nn.Linear(3, 2)
    lin.weight.grad = torch.tensor([[float("nan"), 1.0, float("inf")], [-float("inf"), 2.0, 3.0]])
    lin.bias.grad = torch.tensor([0.5, float("nan")])
    assert int(sanitize_gradients(lin)) == 4
    assert torch.equal(lin.weight.grad, torch.tensor([[0.0, 1.0, 1e5], [-1e5, 2.0, 3.0]]))
    assert torch.equal(lin.bias.grad, torch.tensor([0.5, 0.0]))


def test_monitor_reports_first_iteration_per_phase_and_resets() -> None:
    mon = NonFiniteMonitor(torch.device("cpu"))
    from inpaintbench.distributed import DistContext

    ctx = DistContext(rank=0, world_size=1, local_rank=0)
    mon.observe("D", 3, torch.tensor(1.0), torch.tensor(0))
    mon.observe("D", 4, torch.tensor(float("nan")), torch.tensor(0))
    mon.observe("G", 5, torch.tensor(1.0), torch.tensor(7))
    mon.observe("D", 6, torch.tensor(float("inf")), torch.tensor(0))
    rep = mon.read(ctx)
    assert rep.loss == {"G": 0, "D": 2, "D-R1": 0} and rep.grad["G"] == 7 and rep.first == {"D": 4, "G": 5}
    assert rep.describe().startswith("non-finite D loss (2x) at iteration 4")
    assert not mon.read(ctx).any


def _poison_first_g_gradient(monkeypatch: pytest.MonkeyPatch, iteration: int) -> None:
    """A finite loss whose G gradients are NaN at one iteration (the case the old loss check missed)."""
    from inpaintbench.train.loss import TwoStageLoss

    real = TwoStageLoss.g_main

    def poisoned(self, batch):  # noqa: ANN001, ANN202
        loss, stats = real(self, batch)
        if batch.iteration == iteration:
            fired = []

            def nan_once(g: torch.Tensor) -> torch.Tensor | None:
                if fired:
                    return None
                fired.append(True)
                return torch.full_like(g, float("nan"))

            next(self.G.parameters()).register_hook(nan_once)
        return loss, stats

    monkeypatch.setattr(TwoStageLoss, "g_main", poisoned)


def test_nan_gradients_never_reach_the_weights_and_continue_is_the_official_behaviour(  # noqa: ANN201
        tmp_path, protocol_128, monkeypatch):  # noqa: ANN001, F811
    data = tmp_path / "data"
    write_images(data, 4, size=128)
    _poison_first_g_gradient(monkeypatch, iteration=1)
    result = train(tiny_config(data, tmp_path / "run", kimg=0.006, on_nonfinite="continue", workers=0))
    assert result is not None and result.iterations == 3
    sd, _ = S.read_network_file(S.resolve_snapshot(tmp_path / "run") / "G.safetensors")
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
    rows = S.read_metrics(tmp_path / "run")
    flagged = [r for r in rows if "nonfinite" in r]
    assert len(flagged) == 1 and flagged[0]["nonfinite"]["grad"]["G"] > 0
    assert flagged[0]["nonfinite"]["first_iteration"]["G"] == 1


def test_nan_gradients_with_a_finite_loss_stop_the_run_at_the_tick(tmp_path, protocol_128, monkeypatch):  # noqa: ANN001, ANN201, F811
    data = tmp_path / "data"
    write_images(data, 4, size=128)
    _poison_first_g_gradient(monkeypatch, iteration=1)
    with pytest.raises(TrainingError, match=r"non-finite G gradients \(\d+ entries\) at iteration 1 .*tick-000000"):
        train(tiny_config(data, tmp_path / "run", kimg=0.006, workers=0))
    assert S.resolve_snapshot(tmp_path / "run").name == "tick-000000"  # the bad tick wrote nothing


# ------------------------------------------------------------------------------- ADA semantics


def test_ada_first_adjustment_follows_iteration_interval_and_counts_r1_real_logits(  # noqa: ANN201
        tmp_path, protocol_128, monkeypatch):  # noqa: ANN001, F811
    calls: list[tuple[int, int]] = []
    real_update = AdaptiveAugment.update

    def spy(self, batch):  # noqa: ANN001, ANN202
        calls.append((self.count, batch))
        return real_update(self, batch)

    monkeypatch.setattr(AdaptiveAugment, "update", spy)
    data = tmp_path / "data"
    write_images(data, 4, size=128)
    # batch 2, ADA every 2 iterations, R1 every 2 (iterations 0 and 2): 3 iterations -> one adjustment,
    # after iteration 1, from 2 Dmain batches + R1's batch at iteration 0 = 6 real logits.
    train(tiny_config(data, tmp_path / "run", kimg=0.006, augment="ada", ada_interval=2, d_reg_interval=2,
                      workers=0))
    assert calls == [(6, 2)]


def test_ada_kimg_follows_the_official_train_py_rule_and_p_is_clamped_below_only() -> None:
    assert TrainConfig(init="mat-celebahq-256").effective_ada_kimg == 100.0
    assert TrainConfig().effective_ada_kimg == 500.0
    assert TrainConfig(init="x", ada_kimg=250).effective_ada_kimg == 250.0
    aug = AdaptiveAugment(target=0.0, ada_kimg=0.001, interval=4)
    for _ in range(3):
        aug.accumulate(torch.tensor(8.0), 8)
        aug.update(batch=8)
    assert aug.p == pytest.approx(3 * 8 * 4 / 1.0)  # > 1, as the official max(0)-only clamp allows
    assert isinstance(aug.state_dict()["sign_sum"], float)


# ------------------------------------------------------------------------------- data


@pytest.mark.parametrize("h,w", [(40, 50), (100, 127), (128, 60), (3, 5)])
def test_small_images_are_padded_like_opencv_border_reflect(tmp_path: Path, h: int, w: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(h * 1000 + w)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    (tmp_path / "d").mkdir()
    Image.fromarray(img).save(tmp_path / "d" / "a.png")
    imgs = TrainImages(tmp_path / "d", 128, seed=0, xflip=False)
    expected = cv2.copyMakeBorder(img, 0, max(0, 128 - h), 0, max(0, 128 - w), cv2.BORDER_REFLECT)
    if expected.shape[:2] == (128, 128):
        assert np.array_equal(imgs.sample(0), expected)
    else:  # one side already large enough: a random crop of the padded image
        sample = imgs.sample(0)
        windows = [expected[y:y + 128, x:x + 128] for y in range(expected.shape[0] - 127)
                   for x in range(expected.shape[1] - 127)]
        assert any(np.array_equal(sample, win) for win in windows)


def test_epoch_order_is_thread_safe(tmp_path: Path) -> None:
    write_images(tmp_path / "d", 7, size=128)
    imgs = TrainImages(tmp_path / "d", 128, seed=3)
    reference = {e: TrainImages(tmp_path / "d", 128, seed=3).order(e).copy() for e in range(6)}
    errors: list[str] = []

    def hammer(offset: int) -> None:
        for i in range(300):
            e = (i + offset) % 6
            if not np.array_equal(imgs.order(e), reference[e]):
                errors.append(f"epoch {e}")

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("workers", [1, 2])
def test_loader_with_workers_gives_the_inline_batches(tmp_path: Path, protocol_128: str, workers: int) -> None:  # noqa: F811
    from inpaintbench.masks.protocols import get_protocol

    write_images(tmp_path / "d", 5, size=136)
    batches = IterationBatches(TrainImages(tmp_path / "d", 128, seed=1), get_protocol(protocol_128), 1, batch=2)
    inline = [batches[i] for i in range(3, 7)]
    got = list(iteration_loader(batches, 3, 7, workers=workers))  # workers=1 used to deadlock
    assert [int(g[0]) for g in got] == [3, 4, 5, 6]
    for (_, a_img, a_hole), (_, b_img, b_hole) in zip(inline, got, strict=True):
        assert np.array_equal(a_img, np.asarray(b_img)) and np.array_equal(a_hole, np.asarray(b_hole))


def test_resume_on_another_device_warns(tmp_path: Path) -> None:
    from inpaintbench.train.numerics import warn_numerics_changing_overrides as _warn_numerics_changing_overrides

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_numerics_changing_overrides(TrainConfig(device="auto"), TrainConfig(device="cpu"))
    # "auto" is the CPU on a machine without CUDA: the same device, nothing to warn about
    assert bool(caught) == torch.cuda.is_available()
    with pytest.warns(UserWarning, match="numbers from here on come from other kernels"):
        _warn_numerics_changing_overrides(TrainConfig(device="cpu"), TrainConfig(device="mps"))


def test_defaults_keep_three_snapshots_and_fp32_validation() -> None:
    cfg = TrainConfig()
    assert cfg.keep_snapshots == 3 and cfg.val_precision == "fp32" and cfg.on_nonfinite == "stop"
    assert cfg.workers == 2 and not cfg.deterministic


# ------------------------------------------------------------------------------- mixing maps


def test_unseeded_token_map_reproduces_the_official_channel_major_draw() -> None:
    """Emulates the official layout: ``x = feature2token(conv) + identity`` inherits the first
    operand's channel-major strides, and ``F.dropout(ones_like(x) * 0.5)`` fills memory order."""
    from inpaintbench.models.mat.generator import draw_mix_mask

    b, n, c = 2, 256, 180
    x = torch.randn(b, c, n).transpose(1, 2) + torch.randn(b, n, c)
    assert x.stride() == (c * n, 1, n)  # channel-major, as in the official network
    torch.manual_seed(11)
    official = F.dropout(torch.ones_like(x) * 0.5, training=True)
    torch.manual_seed(11)
    ours = draw_mix_mask((b, n, c), x, None, channel_major=True)
    assert torch.equal(ours, official)
    torch.manual_seed(11)
    row_major = draw_mix_mask((b, n, c), x, None)
    assert not torch.equal(row_major, official)  # the old claim was false: the test can fail
