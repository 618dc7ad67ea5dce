"""Speed of our big-lama generator forward on CPU, against the official implementation's timings.

What is compared, in one run (batch 1, eval, ``torch.inference_mode``):

* ours: ``impl="fast"`` (the default of ``LamaGenerator`` and of the adapter; parity-tested at 1e-4 on the
  official fixture): BatchNorms folded into the convs, l2l + l2g convs merged, each stream padded once,
  in-place adds/ReLUs, channels-last activations and weights, no Re/Im stacking copies in the Fourier
  unit. Timed by the benchmark fixture;
* the reference: ``impl="reference"``, our transcription of the official module order
  (``padding_mode='reflect'`` convs, separate BN/ReLU, stacked Re/Im). It reproduced the official fixture
  output bit-exactly (max |diff| 0.0), so it stands in for the official code, which cannot run here
  (it needs the saicinpainting package, kornia, omegaconf, ...). Its same-run ratio is the robust number;
* the official timings documented for this machine class (lama-facts §10: official generator, CPU,
  ``torch.set_num_threads(2)``, eval, no_grad, one warm-up then two timed forwards, batch 1):
  **256x256: 0.87 s (0.88 s)**, **512x512: 3.19 s (3.11 s)**; reported as a second ratio. The target is
  >= 1.0x at equal outputs.

With ``--benchmark-disable`` (CI) every case runs once on a tiny config at 64 px instead, single-threaded,
so that the file cannot rot; those runs measure nothing.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from inpaintbench.models.lama import LamaGenerator

OFFICIAL_SECONDS = {256: 0.87, 512: 3.19}
TINY = {"ngf": 8, "n_downsampling": 3, "n_blocks": 2}


def _input(res: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, res, res, generator=g)
    mask = (torch.rand(1, 1, res, res, generator=g) > 0.7).float()
    return torch.cat([image * (1 - mask), mask], dim=1)


@pytest.mark.parametrize("res", [256, 512], ids=["256px-b1", "512px-b1"])
def test_bench_lama_forward(benchmark, res: int) -> None:
    tiny = benchmark.disabled
    r = 64 if tiny else res
    gen = LamaGenerator(**(TINY if tiny else {})).eval().requires_grad_(False)
    gen = gen.to(memory_format=torch.channels_last)
    x = _input(r)
    outputs: dict[str, torch.Tensor] = {}

    def forward(impl: str) -> torch.Tensor:
        gen.impl = impl
        with torch.inference_mode():
            return gen(x)

    threads = torch.get_num_threads()
    if tiny:
        torch.set_num_threads(1)
    repeats = 1 if tiny else 2
    try:
        if not tiny:
            forward("reference")  # warm-up, as the official timing did
        t_ref = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            outputs["reference"] = forward("reference")
            t_ref.append(time.perf_counter() - t0)
        if not tiny:
            forward("fast")  # warm-up: folds the weights once, creates oneDNN primitives
        benchmark.pedantic(lambda: outputs.__setitem__("fast", forward("fast")), rounds=repeats, iterations=1)
        t_fast = statistics.median(benchmark.stats.stats.data) if not tiny else float("nan")
    finally:
        torch.set_num_threads(threads)
    diff = float((outputs["fast"] - outputs["reference"]).abs().max())
    ref_s = statistics.median(t_ref)
    benchmark.extra_info.update({
        "case": f"{r}px batch 1" + (" (tiny config, benchmark disabled)" if tiny else ""),
        "threads": 1 if tiny else threads,
        "seconds_fast": None if tiny else round(t_fast, 3),
        "seconds_reference_impl": round(ref_s, 3),
        "speedup_fast_vs_reference_impl": None if tiny else round(ref_s / t_fast, 2),
        "official_documented_seconds": OFFICIAL_SECONDS[res],
        "speedup_fast_vs_documented_official": None if tiny else round(OFFICIAL_SECONDS[res] / t_fast, 2),
        "max_abs_diff_fast_vs_reference": diff,
    })
    assert diff <= 1e-4  # the parity bound (outputs in (0, 1))
