"""Device choice and DistributedDataParallel set-up for single-process and ``torchrun`` runs.

Under ``torchrun`` every process has ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in its
environment; the process group uses NCCL on CUDA and gloo on the CPU. A process group that
the caller already initialised is reused and left open.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the run: rank, local rank, world size and device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None for a single process without a process group
    owns_group: bool  # True when this module initialised the process group and must destroy it

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files and reports to the tracker."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(gpu: Any, local_rank: int = 0) -> torch.device:
    """Return the device for this process from the config's ``gpu`` value.

    ``"cpu"`` is the CPU. ``"auto"`` is ``cuda:<local_rank>`` when CUDA is available, else the
    CPU. An index or a list of indices names GPUs. When a launcher has set
    ``CUDA_VISIBLE_DEVICES``, the chosen GPUs are already the only visible ones, so process
    ``local_rank`` takes visible device ``local_rank``. Without that variable, a list gives
    process ``local_rank`` the GPU at that position. Raises ``ValueError`` when GPUs are
    requested on a machine without CUDA.
    """
    if gpu == "cpu":
        return torch.device("cpu")
    if gpu == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            f"gpu={gpu!r} requests a GPU, but CUDA is not available here; set gpu: cpu or gpu: auto"
        )
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return torch.device("cuda", local_rank)
    indices = gpu if isinstance(gpu, list) else [gpu]
    if local_rank >= len(indices):
        raise ValueError(
            f"gpu={gpu!r} lists {len(indices)} GPU(s) but this is process {local_rank}; "
            "list one GPU per process"
        )
    return torch.device("cuda", indices[local_rank])


def init_distributed(gpu: Any) -> DistributedContext:
    """Pick the device and, under ``torchrun``, join the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(gpu, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size == 1:
        return DistributedContext(0, 0, 1, device, None, owns_group=False)
    owns_group = not dist.is_initialized()
    if owns_group:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
    backend = dist.get_backend()
    return DistributedContext(rank, local_rank, world_size, device, backend, owns_group)


def shutdown(context: DistributedContext) -> None:
    """Destroy the process group if ``init_distributed`` created it."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor, context: DistributedContext, op: str = "sum") -> torch.Tensor:
    """Reduce ``tensor`` over all ranks in place (``sum`` or ``max``) and return it."""
    if context.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor


def gather_objects(value: Any, context: DistributedContext) -> list[Any]:
    """Return every rank's ``value`` in rank order (on every rank)."""
    if not context.distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(context: DistributedContext) -> None:
    """Wait until every rank reaches this point."""
    if context.distributed:
        dist.barrier()
