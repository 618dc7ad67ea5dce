"""Training batches: a map-style dataset over iterations and the data loader that prefetches them.

Item ``i`` of :class:`IterationBatches` is this process's share of global iteration ``i``: the
images and holes of the global sample indices ``i * batch + r, i * batch + r + K, ...`` (rank ``r``
of ``K`` processes). Every draw behind it is a pure function of ``(seed, global sample index)``
(see :mod:`inpaintbench.train.data`), so worker processes need no shared random state, any number of
workers gives the same batches, and a resumed run starts the loader at its iteration.

The loader is :class:`torch.utils.data.DataLoader` with ``batch_size=None`` (one item is already a
batch): ``workers`` processes read, crop and mask the next ``2 * workers`` iterations while the
network trains on the current one (the official MAT loop also uses a ``DataLoader`` with worker
processes and prefetching); on CUDA the tensors come in pinned memory, so the copy to the device is
asynchronous.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from inpaintbench.train.data import TrainImages


class IterationBatches(Dataset):
    """``self[i]`` = ``(i, uint8 images [b, R, R, 3], bool holes [b, R, R])`` of iteration ``i``."""

    def __init__(self, images: TrainImages, mask_protocol: Any, seed: int, batch: int, rank: int = 0,
                 world_size: int = 1, n_iterations: int | None = None):
        self.images, self.mask_protocol, self.seed = images, mask_protocol, int(seed)
        self.batch, self.rank, self.world_size = int(batch), int(rank), int(world_size)
        self.n_iterations = n_iterations

    def rows(self, iteration: int) -> list[int]:
        """Global sample indices of this process's rows (interleaved split of the global batch)."""
        base = int(iteration) * self.batch
        return [base + j for j in range(self.rank, self.batch, self.world_size)]

    def __len__(self) -> int:
        if self.n_iterations is None:
            raise TypeError("IterationBatches has no length unless n_iterations is given")
        return self.n_iterations

    def __getitem__(self, iteration: int) -> tuple[int, np.ndarray, np.ndarray]:
        ks = self.rows(iteration)
        images = np.stack([self.images.sample(k) for k in ks])
        holes = np.stack([self.mask_protocol.generate(k, self.seed) for k in ks])
        return int(iteration), images, holes


def iteration_loader(batches: IterationBatches, start: int, stop: int, workers: int,
                     pin_memory: bool = False) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Iterations ``start .. stop-1`` in order, prepared by ``workers`` processes (0 = inline).

    Yields ``(iteration, images uint8 [b, R, R, 3], holes bool [b, R, R])`` as CPU tensors.
    """
    if stop <= start:
        return iter(())
    loader = DataLoader(batches, batch_size=None, sampler=range(int(start), int(stop)),
                        num_workers=max(0, int(workers)), prefetch_factor=2 if workers > 0 else None,
                        pin_memory=pin_memory, persistent_workers=False)
    return iter(loader)


__all__ = ["IterationBatches", "iteration_loader"]
