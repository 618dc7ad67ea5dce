"""Speed of our MAT generator forward on CPU, against the official implementation's timings.

What is compared, in one run:

* ours: ``impl="fast"`` (the default of ``Generator`` and of the inference adapter, parity-tested at
  1e-5), timed by the benchmark fixture, and the opt-in ``impl="winograd"``;
* the reference: ``impl="reference"``, our transcription of the official operation order (separate
  bias/activation passes, explicit FIR steps, grouped modulated convolutions, NCHW, explicit
  attention). It is bit-identical to the official network on the parity fixture, so it stands in for
  the official code, which cannot run here. Its ratio is the robust number on a shared machine;
* the official timings documented for this machine class (2 threads, idle): 256 b1 ~3.2 s,
  256 b8 ~30 s, 512 b1 ~8.3 s, reported as a second ratio.

Peak memory of a 512 batch-8 forward is measured in a fresh subprocess (Linux): the resident-set
high-water mark ``VmHWM`` is reset through ``/proc/self/clear_refs`` right before the forward and read
after it, minus the resident set before. This sees every allocator torch uses on CPU (tracemalloc does
not), and unlike ``ru_maxrss`` it is not inherited from the parent process.

With ``--benchmark-disable`` (CI) every case runs once on the tiny config at 128 px instead.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from inpaintbench.models.mat import Generator, set_impl

OFFICIAL_SECONDS = {(256, 1): 3.2, (256, 8): 30.0, (512, 1): 8.3}
CASES = [(256, 1), (256, 8), (512, 1)]


def _inputs(res: int, batch: int, z_dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, res, res, generator=g) * 2 - 1
    masks = (torch.rand(batch, 1, res, res, generator=g) > 0.4).float()
    z = torch.randn(batch, z_dim, generator=g)
    return images, masks, z


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return float("nan")


@pytest.mark.parametrize("res,batch", CASES, ids=[f"{r}px-b{b}" for r, b in CASES])
def test_bench_generator_forward(benchmark, res: int, batch: int) -> None:
    tiny = benchmark.disabled
    kw = {"config": "tiny", "z_dim": 16, "w_dim": 16} if tiny else {}
    r, b = (128, 1) if tiny else (res, batch)
    G = Generator(r, **kw).eval().requires_grad_(False)
    x, m, z = _inputs(r, b, G.z_dim)
    s1, s2 = G.mix_mask_shapes(b)
    mm = (torch.ones(s1), torch.zeros(s2))

    def forward(impl: str):
        set_impl(G, impl)
        with torch.no_grad():
            return G(x, m, z, noise_mode="const", mix_masks=mm)

    repeats = 1 if tiny else 2
    threads = torch.get_num_threads()
    if tiny:  # a tiny net is all per-op overhead, which a second thread only adds to
        torch.set_num_threads(1)
    load_before = _load()
    results, outputs = {}, {}
    try:
        for impl in ("reference", "winograd"):
            if not tiny:
                forward(impl)  # warm-up (weight caches, oneDNN primitive creation)
            t = _time(lambda impl=impl: outputs.__setitem__(impl, forward(impl)), repeats)
            results[impl] = statistics.median(t)
        if not tiny:
            forward("fast")
        # the benchmarked function: our default
        t = _time(lambda: benchmark.pedantic(lambda: outputs.__setitem__("fast", forward("fast")),
                                             rounds=repeats, iterations=1), 1)[0]
        results["fast"] = t / repeats if tiny else benchmark.stats.stats.median
    finally:
        torch.set_num_threads(threads)
    out_ref = outputs["reference"]
    rel = {impl: float((outputs[impl] - out_ref).abs().max() / out_ref.abs().max()) for impl in ("fast", "winograd")}

    official = OFFICIAL_SECONDS[(res, batch)]
    benchmark.extra_info.update({
        "case": f"{r}px batch {b}" + (" (tiny config, benchmark disabled)" if tiny else ""),
        "threads": 1 if tiny else threads,
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(_load(), 2),
        "seconds_fast": round(results["fast"], 3),
        "seconds_winograd": round(results["winograd"], 3),
        "seconds_reference_impl": round(results["reference"], 3),
        "speedup_fast_vs_reference_impl": round(results["reference"] / results["fast"], 2),
        "speedup_winograd_vs_reference_impl": round(results["reference"] / results["winograd"], 2),
        "official_documented_seconds": official,
        "speedup_fast_vs_documented_official": None if tiny else round(official / results["fast"], 2),
        "speedup_winograd_vs_documented_official": None if tiny else round(official / results["winograd"], 2),
        "max_rel_diff_fast_vs_reference": rel["fast"],
        "max_rel_diff_winograd_vs_reference": rel["winograd"],
    })
    assert max(rel.values()) <= 1e-4


_MEMORY_SCRIPT = r"""
import json, resource, sys, time, torch
from inpaintbench.models.mat import Generator, set_impl


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB -> MB


res, batch, impl, tiny = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
kw = {"config": "tiny", "z_dim": 16, "w_dim": 16} if tiny else {}
G = set_impl(Generator(res, **kw).eval().requires_grad_(False), impl)
g = torch.Generator().manual_seed(0)
x = torch.rand(batch, 3, res, res, generator=g) * 2 - 1
m = (torch.rand(batch, 1, res, res, generator=g) > 0.4).float()
z = torch.randn(batch, G.z_dim, generator=g)
rss_before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM) to the current RSS
    f.write("5")
t0 = time.perf_counter()
with torch.no_grad():
    out = G(x, m, z, noise_mode="const")
seconds = time.perf_counter() - t0
peak = status("VmHWM")
print(json.dumps({"rss_before_mb": rss_before, "peak_rss_mb": peak, "forward_peak_growth_mb": peak - rss_before,
                  "seconds": seconds, "finite": bool(torch.isfinite(out).all())}))
"""


def test_bench_peak_memory_512_b8(benchmark) -> None:
    tiny = benchmark.disabled
    res, batch = (128, 2) if tiny else (512, 8)
    root = Path(__file__).resolve().parents[1]
    info = {}

    def run(impl: str) -> dict:
        if tiny:  # smoke run in-process (a fresh interpreter costs more than the forward)
            import resource

            G = set_impl(Generator(res, config="tiny", z_dim=16, w_dim=16).eval(), impl)
            x, m, z = _inputs(res, batch, G.z_dim)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.perf_counter()
            try:
                with torch.no_grad():
                    out = G(x, m, z, noise_mode="const")
            finally:
                torch.set_num_threads(threads)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return {"forward_peak_growth_mb": (after - before) / 1024, "seconds": time.perf_counter() - t0,
                    "finite": bool(torch.isfinite(out).all())}
        proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(res), str(batch), impl, "1" if tiny else "0"],
                              capture_output=True, text=True, cwd=root, timeout=3600,
                              env={**os.environ, "PYTHONPATH": str(root)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    impls = ("fast",) if tiny else ("fast", "winograd")
    for impl in impls:
        info[impl] = run(impl)
        assert info[impl]["finite"]
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({
        "case": f"{res}px batch {batch}" + (" (tiny config, benchmark disabled)" if tiny else ""),
        "method": ("ru_maxrss growth in-process (smoke run, not a measurement)" if tiny else
                   "peak RSS (VmHWM reset via /proc/self/clear_refs) minus RSS before, fresh subprocess"),
        **{f"{impl}_{k}": round(v, 1) if isinstance(v, float) else v for impl, d in info.items()
           for k, v in d.items()},
    })
