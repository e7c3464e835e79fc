"""Evaluation blocks: the experiment's test split and the zero-shot corpora, tokenized by the run.

Both go through ``sedd.data.prepare_data`` with the run's saved tokenizer, so the text is
packed exactly as in training: documents joined by the end-of-text token, cut into blocks of
the model's length, the incomplete last block dropped. When fewer blocks are requested than
the split has, evenly spaced blocks are taken, so the subset spans the whole split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor

from workbench.analysis.loading import TOKENIZER_DIR_NAME, LoadedRun

logger = logging.getLogger(__name__)

# The split each zero-shot corpus is evaluated on when it comes from the hub. WikiText-2 is
# evaluated on its training split, as Lou, Meng and Ermon (arXiv:2310.16834) did; the others
# on their test split.
ZERO_SHOT_SPLITS = {"wikitext2": "train", "wikitext103": "test", "ptb": "test", "lambada": "test", "lm1b": "test"}
PACKING = (
    "documents joined by the end-of-text token, cut into blocks of the model length; "
    "the last partial block dropped"
)


@dataclasses.dataclass
class EvalBlocks:
    """Blocks chosen for an evaluation, int64 ``(N, L)``, with where they come from."""

    blocks: Tensor
    corpus: str
    split: str
    total_blocks: int
    fingerprint: dict[str, Any]

    def protocol(self) -> dict[str, Any]:
        """Return the split, the packing and the block selection as plain data."""
        chosen = len(self.blocks)
        selection = f"{chosen} evenly spaced of {self.total_blocks} blocks"
        if chosen == self.total_blocks:
            selection = "all blocks"
        return {
            "corpus": self.corpus,
            "split": self.split,
            "packing": PACKING,
            "end_of_text": "an end-of-text token after every document, scored like any other token",
            "block_selection": selection,
        }


def evenly_spaced(total: int, count: int | None) -> np.ndarray:
    """Return ``count`` distinct indices spread over ``range(total)``, or all of them."""
    if count is None or count >= total:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, count).round().astype(np.int64))


def blocks_sha256(blocks: Tensor) -> str:
    """Return the SHA-256 of the blocks' int64 bytes: what exactly was evaluated."""
    return hashlib.sha256(blocks.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def test_blocks(loaded: LoadedRun, count: int | None) -> EvalBlocks:
    """Return ``count`` blocks (all when None) of the experiment's test split.

    Raises:
        DataConfigError: the corpus has no test split or too little text for one block.
        DataUnavailableError: the corpus cannot be read or downloaded.
    """
    from sedd.data import prepare_data

    bundle = prepare_data(
        loaded.config.data, tokenizer_dir=loaded.run_dir / TOKENIZER_DIR_NAME, progress=False, splits=("test",)
    )
    return _select(bundle, "test", loaded.config.data.corpus, count, loaded)


def zero_shot_blocks(loaded: LoadedRun, corpus: str, files: str | None, count: int | None) -> EvalBlocks:
    """Return blocks of a zero-shot corpus, from local ``files`` when given, else from the hub.

    Local files are read whole: nothing is held out, and the blocks come from all of them.

    Raises:
        DataConfigError: the files cannot be read or hold less than one block.
        DataUnavailableError: the hub dataset is neither cached nor downloadable.
    """
    from sedd.data import DataSettings, prepare_data

    split = "train" if files else ZERO_SHOT_SPLITS[corpus]
    settings = DataSettings(
        corpus=corpus,
        train_files=files,
        validation_fraction=0.0,
        test_fraction=0.0,
        tokenizer=loaded.tokenizer.name,
        seq_len=loaded.seq_len,
        cache_dir=loaded.config.data.cache_dir,
    )
    bundle = prepare_data(settings, tokenizer_dir=loaded.run_dir / TOKENIZER_DIR_NAME, progress=False, splits=(split,))
    selected = _select(bundle, split, corpus, count, loaded)
    if files:
        selected.split = f"local files {files} (read whole)"
    return selected


def _select(bundle: Any, split: str, corpus: str, count: int | None, loaded: LoadedRun) -> EvalBlocks:
    dataset = bundle.split(split)
    indices = evenly_spaced(len(dataset), count)
    blocks = dataset.get_batch(indices).to(loaded.device)  # (N, L) int64
    fingerprint = dict(bundle.fingerprint)
    fingerprint["selected_blocks_sha256"] = blocks_sha256(blocks.cpu())
    return EvalBlocks(blocks, corpus, split, len(dataset), fingerprint)
