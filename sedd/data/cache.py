"""On-disk cache of tokenized splits: one flat token file plus a JSON metadata file.

The key hashes the split's source fingerprint (without file locations and mtimes), the
tokenizer's kind, name and vocabulary hash, and the cache format. The block length is
not part of the key: blocks are a view over the stored token stream, so changing
``seq_len`` reuses the cached tokens. The token file is written to a temporary name,
fsynced and renamed, and the metadata file is written after it, so a present metadata
file always describes a complete token file.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from sedd.data.atomic import atomic_binary_writer, write_text_atomic
from sedd.data.corpus import CorpusSplit
from sedd.data.hashing import fingerprint_digest
from sedd.data.packing import pack_segments
from sedd.data.tokenizers import Tokenizer, token_dtype

logger = logging.getLogger(__name__)

# Bump when the token file layout changes; old entries then miss and are rebuilt.
CACHE_FORMAT = 1


def cache_paths(cache_dir: Path, split: CorpusSplit, tokenizer: Tokenizer) -> tuple[Path, Path]:
    """Return the (token file, metadata file) paths for ``split`` under ``tokenizer``."""
    recipe = {
        "format": CACHE_FORMAT,
        "source": split.fingerprint,
        "tokenizer": {key: tokenizer.identity[key] for key in ("kind", "name", "vocab_hash")},
    }
    stem = f"{split.name}-{fingerprint_digest(recipe)}"
    folder = cache_dir / "tokens" / split.corpus
    return folder / f"{stem}.bin", folder / f"{stem}.json"


def load_or_pack(split: CorpusSplit, tokenizer: Tokenizer, cache_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Return the cache metadata of ``split``, tokenizing it first on a cache miss.

    The metadata contains ``token_file``, ``num_tokens``, ``dtype`` and the counts and
    fingerprints that produced them.
    """
    token_file, meta_file = cache_paths(cache_dir, split, tokenizer)
    meta = _read_valid_meta(token_file, meta_file)
    if meta is not None:
        logger.info("%s/%s: cached, %d tokens in %s", split.corpus, split.name, meta["num_tokens"], token_file)
        return meta
    logger.info("%s/%s: tokenizing with %s into %s", split.corpus, split.name, tokenizer.name, token_file)
    with atomic_binary_writer(token_file) as out:
        stats = pack_segments(
            split.segments(), tokenizer, out,
            progress_total=split.source_bytes, progress=progress,
            description=f"{split.corpus}/{split.name}",
        )
    megabytes = stats.source_bytes / 1e6
    logger.info(
        "%s/%s: %d documents, %.1f MB -> %d tokens in %.1f s (%.1f MB/s)",
        split.corpus, split.name, stats.num_documents, megabytes, stats.num_tokens,
        stats.seconds, megabytes / max(stats.seconds, 1e-9),
    )
    meta = {
        "format": CACHE_FORMAT,
        "token_file": str(token_file),
        "num_tokens": stats.num_tokens,
        "dtype": token_dtype(tokenizer.vocab_size).name,
        "num_documents": stats.num_documents,
        "source_bytes": stats.source_bytes,
        "tokenize_seconds": round(stats.seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tokenizer": tokenizer.identity,
        "source": split.fingerprint,
    }
    write_text_atomic(meta_file, json.dumps(meta, indent=2) + "\n")
    return meta


def _read_valid_meta(token_file: Path, meta_file: Path) -> dict[str, Any] | None:
    """Return the metadata if it and its token file agree, else None (a cache miss)."""
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        expected_size = meta["num_tokens"] * np.dtype(meta["dtype"]).itemsize
        actual_size = token_file.stat().st_size
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("rebuilding unreadable cache entry %s: %s", meta_file, error)
        return None
    if actual_size != expected_size:
        logger.warning(
            "rebuilding cache entry %s: token file has %d bytes, metadata expects %d",
            meta_file, actual_size, expected_size,
        )
        return None
    meta["token_file"] = str(token_file)
    return meta

