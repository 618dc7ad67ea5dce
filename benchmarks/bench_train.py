"""Training speed: one ``Trainer.step`` (Gmain, Dmain, lazy R1, EMA) against the bare network passes.

Reference: the same forward/backward passes and Adam steps written out plainly (no data pipeline,
no per-sample generators, no mask generation, no logging), so ``ratio = ours / bare`` is the
trainer's overhead. There is no other MAT trainer to compare with on this machine (the official one
needs the CUDA plugins of StyleGAN2-ADA).

Sizes: with ``--benchmark-disable`` (CI) tiny MAT at 128 px, batch 2, one step each. Run
deliberately (``pytest benchmarks/bench_train.py``) it uses tiny MAT at 256 px, batch 8 (kimg per
hour for ``--config tiny``), and ``test_full_config_one_iteration`` runs the real MAT-256 config for
one iteration at batch 8 (slow: minutes on a 2-core CPU).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from train_fixtures import (  # noqa: E402, F401
    protocol_128,
    tiny_config,
    vgg19_file,
    vgg19_weights_dir,
    write_images,
)

from inpaintbench.distributed import DistContext  # noqa: E402
from inpaintbench.train.loop import Trainer  # noqa: E402
from inpaintbench.train.ticks import TickStats as _TickStats  # noqa: E402


def _trainer(tmp_path: Path, resolution: int, batch: int, config: str, weights_dir: Path,
             impl: str = "fast") -> Trainer:
    data = tmp_path / "data"
    if not data.is_dir():
        write_images(data, max(batch, 4), size=resolution)
    cfg = tiny_config(data, tmp_path / f"run-{impl}", resolution=resolution, masks=f"mat-large-{resolution}",
                      batch=batch, mbstd_group=min(batch, 8), config=config, pcp_ratio=0.1, d_reg_interval=16,
                      weights_dir=str(weights_dir), offline=True, impl=impl)
    cfg.validate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Trainer(cfg, DistContext(0, 1, 0), torch.device("cpu"))


def _bare_step(tr: Trainer, batch, iteration: int) -> None:  # noqa: ANN001
    """The reference: MAT's phases as plain PyTorch on the same networks and batch."""
    G, D, pcp, cfg = tr.G, tr.D, tr.pcp, tr.cfg
    real, mask = batch.real, batch.mask
    b = real.shape[0]
    z = torch.randn(b, G.z_dim)
    G.requires_grad_(True)
    ws = G.mapping(z, None, truncation_psi=cfg.truncation)
    img, img1 = G.synthesis(real, mask, ws, noise_mode="random", return_stg1=True)
    lg, lg1 = D(img, mask, img1)
    loss = (F.softplus(-lg) + F.softplus(-lg1)).mean() + cfg.pcp_ratio * pcp(img, real)
    tr.opt_G.zero_grad(set_to_none=True)
    loss.backward()
    tr.opt_G.step()
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        img, img1 = G(real, mask, torch.randn(b, G.z_dim), truncation_psi=cfg.truncation, return_stg1=True)
    lf, lf1 = D(img, mask, img1)
    lr, lr1 = D(real, mask, real)
    loss = (F.softplus(lf) + F.softplus(lf1)).mean() + (F.softplus(-lr) + F.softplus(-lr1)).mean()
    tr.opt_D.zero_grad(set_to_none=True)
    loss.backward()
    tr.opt_D.step()
    if iteration % cfg.d_reg_interval == 0:
        x, x1 = real.detach().requires_grad_(True), real.detach().requires_grad_(True)
        lr, lr1 = D(x, mask, x1)
        g = torch.autograd.grad([lr.sum(), lr1.sum()], [x, x1], create_graph=True)
        loss = (g[0].square().sum([1, 2, 3]) + g[1].square().sum([1, 2, 3])).mean() * (cfg.r1_gamma / 2 * 16)
        tr.opt_D.zero_grad(set_to_none=True)
        loss.backward()
        tr.opt_D.step()
    D.requires_grad_(False)


def _compare(benchmark, tr: Trainer, steps: int) -> None:  # noqa: ANN001
    stats = _TickStats()
    if not benchmark.disabled:
        tr.step(stats)  # warm-up (first-call allocations), also iteration 0 with R1
    batch = tr.make_batch(tr.iteration)

    t0 = time.perf_counter()
    for i in range(steps):
        _bare_step(tr, batch, i + 1)
    bare = (time.perf_counter() - t0) / steps

    def ours() -> None:
        for _ in range(steps):
            tr.step(stats)

    t0 = time.perf_counter()
    benchmark.pedantic(ours, rounds=1, iterations=1)
    mine = (time.perf_counter() - t0) / steps
    kimg_per_hour = tr.cfg.batch / mine * 3600 / 1000
    benchmark.extra_info.update({
        "config": tr.cfg.config, "resolution": tr.cfg.resolution, "batch": tr.cfg.batch,
        "threads": torch.get_num_threads(), "sec_per_iteration_ours": round(mine, 3),
        "sec_per_iteration_bare": round(bare, 3), "ratio_ours_over_bare": round(mine / bare, 3),
        "kimg_per_hour": round(kimg_per_hour, 4),
    })
    print(f"\n{tr.cfg.config} MAT-{tr.cfg.resolution} batch {tr.cfg.batch}: ours {mine:.2f} s/it, bare "
          f"{bare:.2f} s/it, ratio {mine / bare:.2f}, {kimg_per_hour:.3f} kimg/h")
    assert mine / bare < 3.0  # the trainer adds bookkeeping, not a second pass


def test_train_step_tiny(benchmark, tmp_path, vgg19_weights_dir, protocol_128):  # noqa: ANN001, ANN201, F811
    if benchmark.disabled:  # CI smoke run: smallest size, one thread (two spinning threads on a busy
        before = torch.get_num_threads()  # 2-core runner are several times slower)
        torch.set_num_threads(1)
        try:
            _compare(benchmark, _trainer(tmp_path, 128, 2, "tiny", vgg19_weights_dir), 1)
        finally:
            torch.set_num_threads(before)
    else:
        tr = _trainer(tmp_path, 256, 8, "tiny", vgg19_weights_dir)
        _compare(benchmark, tr, 2)


def test_train_step_fast_vs_reference_layer_path(benchmark, tmp_path, vgg19_weights_dir, protocol_128):  # noqa: ANN001, ANN201, F811
    """The trainer's default MAT layer path (``impl="fast"``) against the official operation order, the
    same Trainer.step otherwise (tiny MAT at 256 px, batch 4; 128 px batch 2 under --benchmark-disable)."""
    res, batch, steps = (128, 2, 1) if benchmark.disabled else (256, 4, 3)
    before = torch.get_num_threads()
    if benchmark.disabled:
        torch.set_num_threads(1)
    try:
        times = {}
        for impl in ("reference", "fast"):
            tr = _trainer(tmp_path, res, batch, "tiny", vgg19_weights_dir, impl=impl)
            stats = _TickStats()
            tr.step(stats)  # warm-up, iteration 0 (with R1)

            def run(tr: Trainer = tr, stats: _TickStats = stats) -> None:
                for _ in range(steps):
                    tr.step(stats)

            t0 = time.perf_counter()
            if impl == "fast":
                benchmark.pedantic(run, rounds=1, iterations=1)
            else:
                run()
            times[impl] = (time.perf_counter() - t0) / steps
            assert all(v == v for v in stats.reduce(DistContext(0, 1, 0)).values())
    finally:
        torch.set_num_threads(before)
    benchmark.extra_info.update({"resolution": res, "batch": batch, "reference_s_per_it": round(times["reference"], 3),
                                 "fast_s_per_it": round(times["fast"], 3),
                                 "speedup": round(times["reference"] / times["fast"], 3)})
    print(f"\ntiny MAT-{res} batch {batch}: reference path {times['reference']:.2f} s/it, fast path "
          f"{times['fast']:.2f} s/it, {times['reference'] / times['fast']:.2f}x")


@pytest.mark.slow
def test_full_config_one_iteration(benchmark, tmp_path, vgg19_weights_dir):  # noqa: ANN001, ANN201, F811
    """The real MAT-256 networks (60M + 36M parameters) train one full iteration, with R1 and the
    perceptual loss; losses are finite and every parameter of G and D moved. Batch 8 when run
    deliberately (the number in the README: ~24 min, ~13 GB on the shared 2-core box); batch 2 on one
    thread under ``--benchmark-disable`` (CI), which exercises the same code path in a few minutes."""
    batch = 2 if benchmark.disabled else 8
    before_threads = torch.get_num_threads()
    if benchmark.disabled:
        torch.set_num_threads(1)
    try:
        _full_iteration(benchmark, tmp_path, vgg19_weights_dir, batch)
    finally:
        torch.set_num_threads(before_threads)


def _full_iteration(benchmark, tmp_path: Path, weights_dir: Path, batch: int) -> None:  # noqa: ANN001
    tr = _trainer(tmp_path, 256, batch, "full", weights_dir)
    assert sum(p.numel() for p in tr.G.parameters()) == 59_779_834  # mat-facts.md §0
    assert sum(p.numel() for p in tr.D.parameters()) == 36_083_330
    before = {n: p.detach().clone() for n, p in [*tr.G.named_parameters(), *tr.D.named_parameters()]}
    stats = _TickStats()
    t0 = time.perf_counter()
    benchmark.pedantic(lambda: tr.step(stats), rounds=1, iterations=1)
    seconds = time.perf_counter() - t0
    losses = stats.reduce(DistContext(0, 1, 0))
    assert losses and all(v == v and abs(v) < 1e6 for v in losses.values())
    after = dict([*tr.G.named_parameters(), *tr.D.named_parameters()])
    moved = sum(1 for n in before if not torch.equal(before[n], after[n]))
    import resource

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    benchmark.extra_info.update({"sec_per_iteration": round(seconds, 1), "batch": batch, "losses": losses,
                                 "peak_rss_gib": round(peak_gb, 2),
                                 "params_moved": moved, "params_total": len(before),
                                 "threads": torch.get_num_threads()})
    print(f"\nfull MAT-256 batch {batch}: one iteration {seconds:.1f} s, peak RSS {peak_gb:.1f} GiB; "
          f"{moved}/{len(before)} parameter tensors moved")
    assert moved >= 0.9 * len(before)
