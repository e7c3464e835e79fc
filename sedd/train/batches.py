"""Training batches for one process: sampler indices, block reads, micro-batch split, prefetch."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from sedd.data import BlockSampler
from sedd.train.distributed import DistributedContext


class BatchStream:
    """The micro-batches of each optimizer step for this process, with a resumable position.

    Every step takes this rank's ``micro_batch * accum`` rows of the global batch from a
    ``BlockSampler`` and splits them into ``accum`` int64 ``(micro_batch, L)`` tensors on the
    device. With ``num_workers > 0`` a thread pool reads the blocks of the next
    ``num_workers`` steps ahead. ``state_dict`` is then still the position after the last
    step handed out, so a checkpoint never skips the prefetched batches.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        micro_batch: int,
        accum: int,
        seed: int,
        context: DistributedContext,
        num_workers: int = 0,
    ):
        self.dataset = dataset
        self.micro_batch = micro_batch
        self.accum = accum
        self.device = context.device
        self.sampler = BlockSampler(
            len(dataset), micro_batch * accum, seed, rank=context.rank, world_size=context.world_size
        )
        self._pool = ThreadPoolExecutor(num_workers, thread_name_prefix="batches") if num_workers else None
        self._lookahead = num_workers
        # (sampler state before the step's indices were drawn, future of its CPU batch)
        self._pending: deque[tuple[dict[str, Any], Future[torch.Tensor]]] = deque()

    def next_step(self) -> list[torch.Tensor]:
        """Return the ``accum`` micro-batches of the next step, int64 ``(micro_batch, L)`` each."""
        if self._pool is None:
            rows = self.dataset.get_batch(self.sampler.next_batch())
        else:
            self._fill()
            _, future = self._pending.popleft()
            rows = future.result()
            self._fill()
        # Pinned memory would let this copy overlap compute on CUDA; the copy is small next
        # to a step, so plain non_blocking=False keeps the CPU path simple.
        rows = rows.to(self.device)
        return list(rows.split(self.micro_batch))

    def _fill(self) -> None:
        while len(self._pending) < self._lookahead:
            state = self.sampler.state_dict()
            indices = self.sampler.next_batch()
            self._pending.append((state, self._pool.submit(self.dataset.get_batch, indices)))

    def state_dict(self) -> dict[str, Any]:
        """Return the sampler position after the last step handed out."""
        if self._pending:
            return dict(self._pending[0][0])
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after the step that ``state`` was taken at, dropping prefetched batches."""
        self._discard_pending()
        self.sampler.load_state_dict(state)

    def close(self) -> None:
        """Stop the prefetch threads."""
        self._discard_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _discard_pending(self) -> None:
        if self._pending:
            self.sampler.load_state_dict(self._pending[0][0])
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
