"""Does ``torch.compile`` speed up our MAT generator on this CPU? (MAT issue: "torch.compile as an option if
it helps on CPU".) A script rather than a pytest benchmark: one compile takes minutes, too long for the
test command.

    python benchmarks/try_torch_compile.py [--res 256] [--impl fast] [--threads 2]

It times the eager forward (best of 3), compiles the same module with ``torch.compile`` (inductor, static
shapes), times the first compiled call (compilation) and the best of 3 after, and checks that both give
the same output on the same inputs (fixed mixing maps, constant noise). Result recorded in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import time

import torch

from inpaintbench.models.mat import Generator, set_impl
from inpaintbench.models.mat.generator import draw_mix_mask


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=256, choices=(256, 512))
    ap.add_argument("--impl", default="fast")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = set_impl(Generator(args.res), args.impl).eval()
    r = args.res
    x = torch.rand(1, 3, r, r) * 2 - 1
    m = (torch.rand(1, 1, r, r) > 0.4).float()
    z = torch.randn(1, 512)
    # MAT draws two feature-mixing maps even in eval mode; fix them so both runs see the same ones
    rng = torch.Generator().manual_seed(1)
    mix = [draw_mix_mask(shape, x, rng) for shape in g.mix_mask_shapes(1)]

    def call(model):
        with torch.no_grad():
            return model(x, m, z, noise_mode="const", mix_masks=mix)

    ref = call(g)
    eager = _best(lambda: call(g))
    compiled = torch.compile(g, dynamic=False)
    t0 = time.perf_counter()
    out = call(compiled)
    first = time.perf_counter() - t0
    steady = _best(lambda: call(compiled))
    diff = (out - ref).abs().max().item()
    print(f"MAT {r}px batch 1, impl={args.impl}, {args.threads} threads: eager {eager:.2f} s; "
          f"torch.compile first call {first:.0f} s, then {steady:.2f} s ({eager / steady:.2f}x); "
          f"max |diff| {diff:.1e}")


if __name__ == "__main__":
    main()
