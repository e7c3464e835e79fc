"""Fixed-length training blocks read from a token file through a read-only memmap."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


class TokenBlocks(Dataset):
    """Block ``i`` is tokens ``[i * seq_len, (i + 1) * seq_len)`` of a flat token file.

    The tokens after the last whole block are not used. The file is opened lazily, and
    pickling drops the open map, so DataLoader workers each map the file themselves
    instead of receiving a copy of the data.
    """

    def __init__(
        self, path: str | os.PathLike[str], num_tokens: int, seq_len: int, dtype: str | np.dtype, split: str = ""
    ):
        if seq_len < 1:
            raise ValueError(f"seq_len={seq_len} must be a positive integer")
        self.path = Path(path)
        self.num_tokens = int(num_tokens)
        self.seq_len = int(seq_len)
        self.dtype = np.dtype(dtype)
        self.split = split
        self.num_blocks = self.num_tokens // self.seq_len
        self._blocks: np.ndarray | None = None

    @property
    def blocks(self) -> np.ndarray:
        """The blocks as a read-only array of shape (num_blocks, seq_len) in the file's dtype."""
        if self._blocks is None:
            if self.num_blocks == 0:
                self._blocks = np.zeros((0, self.seq_len), dtype=self.dtype)
            else:
                used = self.num_blocks * self.seq_len
                flat = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(used,))
                self._blocks = flat.reshape(self.num_blocks, self.seq_len)
        return self._blocks

    def __len__(self) -> int:
        return self.num_blocks

    def __getitem__(self, index: int) -> torch.Tensor:
        """Return block ``index`` as an int64 tensor of shape (seq_len,)."""
        if not -self.num_blocks <= index < self.num_blocks:
            raise IndexError(f"block {index} out of range for {self.num_blocks} blocks")
        return torch.from_numpy(self.blocks[index].astype(np.int64))

    def get_batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Return the blocks at ``indices`` as an int64 tensor of shape (len(indices), seq_len)."""
        positions = np.asarray(indices.tolist() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= self.num_blocks):
            bad = positions[(positions < 0) | (positions >= self.num_blocks)][0]
            raise IndexError(f"block {bad} out of range for {self.num_blocks} blocks")
        return torch.from_numpy(self.blocks[positions].astype(np.int64))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_blocks"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"TokenBlocks(split={self.split!r}, num_blocks={self.num_blocks}, seq_len={self.seq_len}, "
            f"dtype={self.dtype.name}, path={str(self.path)!r})"
        )
