"""Endless, seeded stream of random (x, y) training windows; y is x shifted by one token."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info


class RandomWindows(IterableDataset):
    """Yields (x, y) int64 tensors of shape (block_size,) drawn uniformly from `ids`, forever.

    Reproducible: the stream depends only on (seed, rank, DataLoader worker id), so DataLoader workers and
    distributed ranks read distinct streams. With num_workers=0 the generator state can be saved and restored
    (state_dict / load_state_dict), which is what makes resumed training bit-identical.
    """

    def __init__(self, ids: np.ndarray, block_size: int, seed: int = 0, rank: int = 0):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if len(ids) < block_size + 1:
            raise ValueError(f"{len(ids)} tokens are too few for windows of {block_size} (+1 for the targets)")
        self.ids = ids
        self.block_size = block_size
        self.seed = seed
        self.rank = rank
        self.rng = self._make_rng(worker_id=0)

    def _make_rng(self, worker_id: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, self.rank, worker_id])))

    def __iter__(self):
        info = get_worker_info()
        # In a worker process the dataset is a copy: give each worker its own stream.
        rng = self.rng if info is None else self._make_rng(worker_id=info.id + 1)
        n_starts = len(self.ids) - self.block_size  # last valid start leaves room for the shifted target
        while True:
            i = int(rng.integers(0, n_starts))
            chunk = torch.from_numpy(self.ids[i : i + self.block_size + 1].astype(np.int64))  # (T+1,)
            yield chunk[:-1], chunk[1:]

    def state_dict(self) -> dict:
        return {"seed": self.seed, "rank": self.rank, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
