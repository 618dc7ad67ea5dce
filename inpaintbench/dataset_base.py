"""The :class:`Dataset` base class: ordered, indexable (id, uint8 RGB R×R image) pairs with a digest.

Every dataset kind (``samples``, ``folder:``, ``hf:``) subclasses it; they live in
:mod:`inpaintbench.datasets` and :mod:`inpaintbench.hf_data`, which open them by spec.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpaintbench.errors import InputError


class Dataset:
    """Ordered, indexable images with stable ids. Subclasses implement ``_load(i)`` and ``_digest()``."""

    name: str = "dataset"

    def __init__(self, spec: str, ids: Sequence[str], resolution: int, resize_policy: str):
        self.spec = spec
        self.ids: list[str] = list(ids)
        self.resolution = resolution
        self.resize_policy = resize_policy
        self._digest_cache: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[str, np.ndarray]:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"dataset indices must be integers, got {type(i).__name__}")
        n = len(self.ids)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} images")
        i = int(i) % n
        return self.ids[i], self._load(i)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i in range(len(self)):
            yield self[i]

    def path_of(self, i: int) -> Path | None:
        """The source file of image ``i``, or ``None`` for built-in sets."""
        return None

    @property
    def digest(self) -> str:
        """sha256 identifying the image list and content (computed once, on first use)."""
        if self._digest_cache is None:
            self._digest_cache = self._digest()
        return self._digest_cache

    def describe(self) -> dict[str, Any]:
        """Everything a run manifest needs to say which images, in which order and geometry."""
        return {
            "name": self.name,
            "spec": self.spec,
            "n": len(self),
            "digest": self.digest,
            "resolution": self.resolution,
            "resize_policy": self.resize_policy,
        }

    def verify(self) -> list[tuple[str, str]]:
        """Decode every image; return ``(id, problem)`` for each one that fails (empty list = all good)."""
        problems = []
        for i, image_id in enumerate(self.ids):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._load(i)
            except InputError as e:
                problems.append((image_id, str(e)))
        return problems

    def _load(self, i: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _digest(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError
