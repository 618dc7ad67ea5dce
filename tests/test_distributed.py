"""distributed: each rank binds its own GPU before any collective, long-enough timeout, gathering.

No GPU is needed: CUDA and the process-group calls are replaced by recorders, so the tests assert
*which* device each rank selects and which device the collectives' tensors are moved to. The real
gloo path runs in two processes at the end.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist

from inpaintbench import distributed
from inpaintbench.distributed import DEFAULT_TIMEOUT_MIN, TIMEOUT_ENV, DistContext, gather_features, init_from_env


class FakeCuda:
    """Records the CUDA calls; ``current_device`` follows ``set_device`` as the real one does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, n_gpus: int, events: list[tuple[str, Any]]):
        self.current = 0
        self.events = events
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n_gpus)
        monkeypatch.setattr(torch.cuda, "set_device", self.set_device)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)

    def set_device(self, d: int | str | torch.device) -> None:
        self.current = torch.device("cuda", d).index if isinstance(d, int) else torch.device(d).index
        self.events.append(("set_device", self.current))


def fake_group(monkeypatch: pytest.MonkeyPatch, rank: int, world: int, events: list[tuple[str, Any]],
               backend: str = "nccl", with_device_id: bool = True) -> dict[str, Any]:
    """Replace the process-group calls; returns the kwargs ``init_process_group`` will receive."""
    state: dict[str, Any] = {"initialized": False}

    def init_process_group(backend: str | None = None, timeout: timedelta | None = None,
                           device_id: torch.device | None = None) -> None:
        events.append(("init", torch.cuda.current_device() if backend == "nccl" else None))
        state.update(initialized=True, backend=backend, timeout=timeout, device_id=device_id)

    def init_without_device_id(backend: str | None = None, timeout: timedelta | None = None) -> None:
        init_process_group(backend, timeout)
        state.pop("device_id")

    monkeypatch.setattr(dist, "init_process_group", init_process_group if with_device_id else init_without_device_id)
    monkeypatch.setattr(dist, "is_initialized", lambda: state["initialized"])
    monkeypatch.setattr(dist, "get_rank", lambda: rank)
    monkeypatch.setattr(dist, "get_world_size", lambda: world)
    monkeypatch.setattr(dist, "get_backend", lambda *a: state.get("backend", backend))
    return state


def torchrun_env(monkeypatch: pytest.MonkeyPatch, rank: int, world: int, local_rank: int) -> None:
    for k, v in {"WORLD_SIZE": world, "RANK": rank, "LOCAL_RANK": local_rank}.items():
        monkeypatch.setenv(k, str(v))
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)


def test_single_process_needs_no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    events: list[tuple[str, Any]] = []
    FakeCuda(monkeypatch, 2, events)
    state = fake_group(monkeypatch, 0, 1, events)
    assert init_from_env("cuda") == DistContext(0, 1, 0)
    assert events == [] and not state["initialized"]


@pytest.mark.parametrize("rank,local_rank", [(0, 0), (1, 1), (3, 1)])  # rank 3 = second GPU of node 2
def test_cuda_rank_binds_local_gpu_before_the_group(monkeypatch: pytest.MonkeyPatch, rank: int,
                                                    local_rank: int) -> None:
    torchrun_env(monkeypatch, rank, 4, local_rank)
    events: list[tuple[str, Any]] = []
    FakeCuda(monkeypatch, 2, events)
    state = fake_group(monkeypatch, rank, 4, events)
    ctx = init_from_env("cuda")
    assert ctx == DistContext(rank, 4, local_rank)
    # set_device first: the group (and NCCL's communicator) is created with this rank's GPU current
    assert events == [("set_device", local_rank), ("init", local_rank)]
    assert state["backend"] == "nccl"
    assert state["device_id"] == torch.device("cuda", local_rank)
    assert state["timeout"] == timedelta(minutes=DEFAULT_TIMEOUT_MIN) > timedelta(minutes=10)
    assert distributed.collective_device() == torch.device("cuda", local_rank)


def test_old_torch_without_device_id_still_binds_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    torchrun_env(monkeypatch, 1, 2, 1)
    events: list[tuple[str, Any]] = []
    FakeCuda(monkeypatch, 2, events)
    state = fake_group(monkeypatch, 1, 2, events, with_device_id=False)
    init_from_env("cuda")
    assert events == [("set_device", 1), ("init", 1)] and "device_id" not in state


def test_cpu_device_uses_gloo_and_touches_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    torchrun_env(monkeypatch, 1, 2, 1)
    monkeypatch.setenv(TIMEOUT_ENV, "7.5")
    events: list[tuple[str, Any]] = []
    FakeCuda(monkeypatch, 2, events)  # a GPU is present, but the run asked for the CPU
    state = fake_group(monkeypatch, 1, 2, events, backend="gloo")
    assert init_from_env("cpu") == DistContext(1, 2, 1)
    assert events == [("init", None)]
    assert state["backend"] == "gloo" and state["device_id"] is None
    assert state["timeout"] == timedelta(minutes=7.5)


def test_more_ranks_than_gpus_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    torchrun_env(monkeypatch, 2, 3, 2)
    events: list[tuple[str, Any]] = []
    FakeCuda(monkeypatch, 2, events)
    state = fake_group(monkeypatch, 2, 3, events)
    with pytest.raises(RuntimeError, match="LOCAL_RANK=2 but only 2 CUDA"):
        init_from_env("cuda")
    assert events == [] and not state["initialized"]


@pytest.mark.parametrize("raw", ["0", "-3", "ten", "nan"])
def test_bad_timeout_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, raw)
    with pytest.raises(ValueError, match=TIMEOUT_ENV):
        distributed.timeout_from_env()


def test_gather_features_moves_every_collective_tensor_to_the_rank_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 of 2 under NCCL: the row counts and the padded rows go to cuda:1, not cuda:0."""
    torchrun_env(monkeypatch, 1, 2, 1)
    events: list[tuple[str, Any]] = []
    FakeCuda(monkeypatch, 2, events)
    fake_group(monkeypatch, 1, 2, events)
    init_from_env("cuda")

    moved: list[tuple[int, torch.device]] = []  # (id of the tensor returned, target device)
    real_to = torch.Tensor.to

    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, torch.device) and target.type == "cuda":
            moved.append((id(self), target))  # stays on the CPU: there is no GPU here
            return self
        return real_to(self, *args, **kwargs)

    other = np.full((3, 2), 7.0, dtype=np.float32)  # rank 0 holds 3 rows, we hold 1

    def all_gather(out: list[torch.Tensor], t: torch.Tensor) -> None:
        assert id(t) in {i for i, _ in moved}, "a collective got a tensor that was never moved to the GPU"
        if t.dtype == torch.int64:
            out[0].fill_(3)
            out[1].copy_(t)
        else:
            out[0].copy_(torch.from_numpy(other))
            out[1].copy_(t)
        events.append(("all_gather", t.dtype))

    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(dist, "all_gather", all_gather)
    mine = np.array([[1.0, 2.0]], dtype=np.float32)
    got = gather_features(mine)
    np.testing.assert_array_equal(got, np.concatenate([other, mine]))
    assert [e for e in events if e[0] == "all_gather"] == [("all_gather", torch.int64), ("all_gather", torch.float32)]
    assert moved and {d for _, d in moved} == {torch.device("cuda", 1)}


def test_gather_features_is_identity_without_a_process_group() -> None:
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert gather_features(x) is x


def _torchrun_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """What torchrun gives a worker: the environment only."""
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), **{TIMEOUT_ENV: "3"})
    ctx = init_from_env("cpu")
    local = np.full((rank + 1, 3), rank, dtype=np.float64)  # ranks hold 1 and 2 rows
    np.save(os.path.join(out_dir, f"{rank}.npy"), gather_features(local))
    gathered = distributed.gather_to_main({"rank": ctx.rank}, ctx)
    if ctx.is_main:
        np.save(os.path.join(out_dir, "objects.npy"), np.array([g["rank"] for g in gathered]))
    distributed.barrier(ctx)
    distributed.shutdown(ctx)


@pytest.mark.slow
def test_init_from_env_and_gather_in_two_gloo_processes(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_torchrun_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    expected = np.array([[0, 0, 0], [1, 1, 1], [1, 1, 1]], dtype=np.float64)
    for rank in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"{rank}.npy"), expected)
    np.testing.assert_array_equal(np.load(tmp_path / "objects.npy"), [0, 1])
