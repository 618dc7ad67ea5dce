"""GPU training throughput of the MAT trainer: kimg/h and peak memory at 256 px, batch 8, for fp32 and
bf16 and for the fast and reference layer paths (issue 10). Run by ``benchmarks/gpu_train.sh``.

Full-width MAT (59.8M + 36.1M parameters) from random weights (same cost as a fine-tune), random
VGG19 for the perceptual loss (pcp 0.1), smooth random training images, no validation. Each
configuration: ``--warmup`` iterations (cuDNN autotuning, allocator), then ``--iters`` timed
iterations between ``torch.cuda.synchronize()`` calls. Prints one JSON line per configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _images(folder: Path, n: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC).save(folder / f"{i:04d}.png")


def _random_vgg19(folder: Path) -> None:
    import torchvision

    from inpaintbench import weights as W

    spec = W.get_weight_spec("torchvision-vgg19")
    path = folder / spec.filename
    torch.manual_seed(0)
    feats = torchvision.models.vgg19(weights=None).features.state_dict()
    torch.save({f"features.{k}": v for k, v in feats.items()}, path)
    W.register_weights(dataclasses.replace(spec, urls=(), sha256=W.sha256_file(path), sha256_prefix=None,
                                           size=None), replace=True)


def measure(data: Path, weights: Path, precision: str, impl: str, batch: int, warmup: int, iters: int) -> dict:
    from inpaintbench import distributed
    from inpaintbench.train.config import TrainConfig
    from inpaintbench.train.loop import Trainer
    from inpaintbench.train.numerics import configure_backends as _configure_backends
    from inpaintbench.train.ticks import TickStats

    out = Path(tempfile.mkdtemp(prefix="gpu-train-"))
    cfg = TrainConfig(data=str(data), out=str(out), resolution=256, batch=batch, precision=precision, impl=impl,
                      weights_dir=str(weights), offline=True, device="cuda", workers=4, kimg=1e6)
    cfg.validate(1)
    _configure_backends(cfg, "cuda")
    ctx = distributed.DistContext(rank=0, world_size=1, local_rank=0)
    trainer = Trainer(cfg, ctx, torch.device("cuda"))
    trainer._start_loader(int(cfg.kimg * 1000))
    stats = TickStats()
    for _ in range(warmup):
        trainer.step(stats)
    torch.cuda.synchronize()
    # Host syncs inside one ordinary iteration (not a tick, not an ADA adjustment): should be 0.
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.step(stats)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        trainer.step(stats)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    trainer.close()
    kimg_per_h = iters * batch / 1000 / seconds * 3600
    return {"precision": precision, "impl": impl, "batch": batch, "resolution": 256, "iters": iters,
            "sec_per_iter": round(seconds / iters, 4), "kimg_per_hour": round(kimg_per_h, 2),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "host_syncs_per_iteration": syncs, "device": torch.cuda.get_device_name(), "torch": torch.__version__}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--configs", default="fp32:fast,bf16:fast,fp32:reference,bf16:reference")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_train.py needs a CUDA device")
    root = Path(tempfile.mkdtemp(prefix="gpu-train-data-"))
    _images(root / "train", 64, 256)
    _random_vgg19(root)
    for item in args.configs.split(","):
        precision, impl = item.split(":")
        print(json.dumps(measure(root / "train", root, precision, impl, args.batch, args.warmup, args.iters)),
              flush=True)


if __name__ == "__main__":
    main()
