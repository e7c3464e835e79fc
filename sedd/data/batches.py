"""Seeded, resumable sampling of block indices for single-process and DDP training.

The sampler walks an endless stream made of one random permutation of the blocks per
epoch (epoch ``e`` uses a generator seeded with ``(seed, e)``). Global batch ``k`` is
stream items ``[k * G, (k + 1) * G)`` with ``G = batch_size * world_size``, and rank ``r``
takes items ``[r * batch_size, (r + 1) * batch_size)`` of it. Hence the union of the
ranks' batches equals the batch of a single process with batch size ``G`` and the same
seed, and a batch may span an epoch boundary instead of being dropped or padded.

``state_dict`` records the stream position after the last batch returned, so a resumed
run gets exactly the batches that an uninterrupted run would have got.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


class BlockSampler:
    """Yields int64 index arrays of shape (batch_size,) for one rank, without end."""

    def __init__(self, num_blocks: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if num_blocks < 1:
            raise ValueError(f"num_blocks={num_blocks}: there are no blocks to sample; check the data split")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be a positive integer")
        if seed < 0:
            raise ValueError(f"seed={seed} must be a non-negative integer")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        self.num_blocks = num_blocks
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0  # index into the current epoch's permutation
        self._permutations: dict[int, np.ndarray] = {}

    @property
    def global_batch_size(self) -> int:
        """Blocks per step over all ranks."""
        return self.batch_size * self.world_size

    def permutation(self, epoch: int) -> np.ndarray:
        """Return the block order of ``epoch``: an int64 permutation of ``range(num_blocks)``.

        NOTE: numpy documents that ``Generator`` streams may change between numpy
        versions, so resuming under another numpy may change the order of later epochs.
        """
        if epoch not in self._permutations:
            # Keep only the epochs a batch can still touch (the current one and later).
            self._permutations = {e: p for e, p in self._permutations.items() if e >= self.epoch}
            generator = np.random.default_rng([self.seed, epoch])
            self._permutations[epoch] = generator.permutation(self.num_blocks)
        return self._permutations[epoch]

    def next_batch(self) -> np.ndarray:
        """Return this rank's next batch of block indices, int64 of shape (batch_size,)."""
        global_batch = self._take(self.global_batch_size)
        start = self.rank * self.batch_size
        return global_batch[start:start + self.batch_size]

    def _take(self, count: int) -> np.ndarray:
        pieces = []
        while count > 0:
            order = self.permutation(self.epoch)
            piece = order[self.position:self.position + count]
            pieces.append(piece)
            count -= len(piece)
            self.position += len(piece)
            if self.position == self.num_blocks:
                self.epoch += 1
                self.position = 0
        return np.concatenate(pieces).astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        """Return the position after the last batch, plus what must match on resume."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "num_blocks": self.num_blocks,
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; the global batch size and world size may differ.

        Raises ValueError when ``num_blocks`` or ``seed`` differ, because the block order
        would then differ from the run that saved the state.
        """
        for key in ("num_blocks", "seed"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"sampler state has {key}={state[key]} but this sampler has "
                    f"{key}={getattr(self, key)}; resume with the data and seed of the saved run"
                )
        position = int(state["position"])
        if not 0 <= position < self.num_blocks:
            raise ValueError(f"sampler state position={position} is outside [0, {self.num_blocks})")
        self.epoch = int(state["epoch"])
        self.position = position
