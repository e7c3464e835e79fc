"""Tokenize a corpus split into one flat stream of token ids on disk.

Documents are joined with the end-of-text token (``doc1 EOT doc2 EOT ...``, as in the SEDD
paper and GPT-2) and written to a binary file in chunks, so neither the text nor the
ids of a split are ever held in memory at once. Blocks of ``seq_len`` tokens are cut
later by viewing the file (see ``TokenBlocks``), which drops the tail that does not fill
a block.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
from tqdm.auto import tqdm

from sedd.data.corpus import Segment
from sedd.data.tokenizers import Tokenizer, token_dtype

logger = logging.getLogger(__name__)

# Segments are encoded in batches of about ``tokenizer.batch_chars`` characters, or this
# many segments, which amortises per-call overhead and lets batch tokenizers run in parallel.
BATCH_SEGMENTS = 1024


@dataclasses.dataclass
class PackStats:
    """Counts from one packing pass."""

    num_tokens: int = 0
    num_documents: int = 0
    source_bytes: int = 0
    seconds: float = 0.0


def pack_segments(
    segments: Iterable[Segment],
    tokenizer: Tokenizer,
    out: BinaryIO,
    progress_total: int | None = None,
    progress: bool = True,
    description: str = "tokenizing",
) -> PackStats:
    """Tokenize ``segments`` and append the ids to ``out``; return the counts.

    Ids are written as ``token_dtype(tokenizer.vocab_size)`` in native byte order, with
    ``tokenizer.eot_id`` after each segment whose ``ends_document`` is True.
    ``progress_total`` is the expected number of source bytes, for the progress bar.
    """
    stats = PackStats()
    dtype = token_dtype(tokenizer.vocab_size)
    eot = np.array([tokenizer.eot_id], dtype=dtype)
    started = time.perf_counter()
    batch: list[Segment] = []
    batch_chars = 0
    with tqdm(
        total=progress_total, desc=description, unit="B", unit_scale=True,
        disable=not progress, file=sys.stderr,
    ) as bar:
        for segment in segments:
            batch.append(segment)
            batch_chars += len(segment.text)
            if batch_chars >= tokenizer.batch_chars or len(batch) >= BATCH_SEGMENTS:
                _write_batch(batch, tokenizer, eot, dtype, out, stats, bar)
                batch, batch_chars = [], 0
        if batch:
            _write_batch(batch, tokenizer, eot, dtype, out, stats, bar)
    stats.seconds = time.perf_counter() - started
    return stats


def _write_batch(
    batch: list[Segment],
    tokenizer: Tokenizer,
    eot: np.ndarray,
    dtype: np.dtype,
    out: BinaryIO,
    stats: PackStats,
    bar: tqdm,
) -> None:
    texts = [segment.text for segment in batch]
    for segment, ids in zip(batch, tokenizer.encode_arrays(texts)):
        # Writing each array's buffer directly avoids concatenating the batch first.
        out.write(ids.astype(dtype, copy=False).data)
        stats.num_tokens += len(ids)
        if segment.ends_document:
            out.write(eot.data)
            stats.num_tokens += 1
            stats.num_documents += 1
    # str.isascii() is O(1), so only non-ASCII text pays for encoding to count its bytes.
    batch_bytes = sum(len(text) if text.isascii() else len(text.encode("utf-8")) for text in texts)
    stats.source_bytes += batch_bytes
    bar.update(batch_bytes)
