"""Per-image time of the diffusers adapter on the tiny random pipeline, against calling the pipeline directly.

There is no "official implementation" to port here: the adapter calls diffusers itself. So the reference is
the same ``StableDiffusionInpaintPipeline`` called by hand on the same inputs (float [0, 1] arrays, one seeded
generator per sample) in the same run, and the ratio measures the adapter's overhead (validation, seeding,
conversions); ~1.0 is expected. Cases: 64 and 128 px, batch 1, 2 denoising steps, CPU.

On CUDA (only when a GPU is present) ``test_diffusers_gpu_throughput`` records images/s at 256 and 512 with a
batch of 4, the peak memory and the device name in ``extra_info``; the tiny pipeline measures the harness and
pipeline overhead, not a real model's cost.

With ``--benchmark-disable`` (CI) each case runs once, at 64 px only for the GPU case.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from diffusion_fixtures import save_tiny_pipeline  # noqa: E402

from inpaintbench.models.base import create_model  # noqa: E402

STEPS = 2


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("bench-tiny") / "pipe")


def _case(size: int, batch: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    holes = np.zeros((batch, size, size), bool)
    holes[:, size // 4: 3 * size // 4, size // 8: 5 * size // 8] = True
    return images, holes


def _median_seconds(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@pytest.mark.parametrize("size", [64, 128])
def test_diffusers_adapter_overhead(benchmark, pipe_dir, tmp_path, monkeypatch, size):
    monkeypatch.setenv("INPAINTBENCH_HOME", str(tmp_path / "home"))
    model = create_model(f"diffusers:{pipe_dir}", steps=STEPS, device="cpu")
    images, holes = _case(size)
    pipe = model.pipe

    def ours():
        return model.inpaint(images, holes, ids=["bench"])

    def reference():
        return pipe(prompt=[""], image=images.astype(np.float32) / 255, mask_image=holes[..., None].astype(np.float32),
                    generator=[torch.Generator().manual_seed(0)], num_inference_steps=STEPS, height=size, width=size,
                    output_type="np").images

    out = ours()  # also the warm-up
    assert out.shape == (1, size, size, 3) and np.isfinite(out).all()
    if benchmark.disabled:  # CI: prove the path works, time nothing
        benchmark.pedantic(reference, rounds=1, iterations=1)
        return
    reference()
    reps = 7
    t_ours, t_ref = [], []
    for _ in range(reps):  # interleaved, so that load from other processes hits both alike
        t_ours.append(_median_seconds(ours, 1))
        t_ref.append(_median_seconds(reference, 1))
    benchmark.extra_info.update(size=size, steps=STEPS, ours_s=statistics.median(t_ours),
                                pipeline_s=statistics.median(t_ref),
                                ratio=statistics.median(t_ref) / statistics.median(t_ours))
    benchmark.pedantic(ours, rounds=3, iterations=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("size", [256, 512])
def test_diffusers_gpu_throughput(benchmark, pipe_dir, tmp_path, monkeypatch, size):
    monkeypatch.setenv("INPAINTBENCH_HOME", str(tmp_path / "home"))
    size = 64 if benchmark.disabled else size
    batch = 4
    model = create_model(f"diffusers:{pipe_dir}", steps=STEPS, device="cuda")
    images, holes = _case(size, batch)
    ids = [f"s{i}" for i in range(batch)]
    model.inpaint(images, holes, ids=ids)  # warm-up (cuDNN autotuning, allocator)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    reps = 1 if benchmark.disabled else 5

    def run():
        model.inpaint(images, holes, ids=ids)
        torch.cuda.synchronize()

    seconds = _median_seconds(run, reps)
    benchmark.extra_info.update(size=size, batch=batch, steps=STEPS, images_per_s=batch / seconds,
                                peak_mem_mb=torch.cuda.max_memory_allocated() / 2**20,
                                device=torch.cuda.get_device_name(0))
    benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
