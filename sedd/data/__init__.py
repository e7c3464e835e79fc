"""The data pipeline: corpora, tokenizers, packing into blocks, on-disk cache, batch sampling.

``prepare_data(data_cfg)`` is the entry point. It reads the ``data:`` config section,
builds the corpus (``build_corpus``) and tokenizer (``build_tokenizer``), tokenizes each
split once into a cached token file, and returns a ``DataBundle`` of ``TokenBlocks``
datasets. ``BlockSampler`` yields resumable, seeded index batches for one or many ranks.

The names below are imported on first use, so importing ``sedd.data`` stays cheap for
command-line start-up; torch, ``datasets`` and ``transformers`` load only when needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BlockSampler": "sedd.data.batches",
    "TokenBlocks": "sedd.data.blocks",
    "DataBundle": "sedd.data.bundle",
    "prepare_data": "sedd.data.bundle",
    "Corpus": "sedd.data.corpus",
    "CorpusSplit": "sedd.data.corpus",
    "Segment": "sedd.data.corpus",
    "PRESETS": "sedd.data.corpora",
    "build_corpus": "sedd.data.corpora",
    "DETOKENIZERS": "sedd.data.detokenizers",
    "get_detokenizer": "sedd.data.detokenizers",
    "DataConfigError": "sedd.data.errors",
    "DataUnavailableError": "sedd.data.errors",
    "DataSettings": "sedd.data.settings",
    "Tokenizer": "sedd.data.tokenizers",
    "build_tokenizer": "sedd.data.tokenizers",
    "load_tokenizer": "sedd.data.tokenizers",
    "has_saved_tokenizer": "sedd.data.tokenizers",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from sedd.data.batches import BlockSampler
    from sedd.data.blocks import TokenBlocks
    from sedd.data.bundle import DataBundle, prepare_data
    from sedd.data.corpora import PRESETS, build_corpus
    from sedd.data.corpus import Corpus, CorpusSplit, Segment
    from sedd.data.detokenizers import DETOKENIZERS, get_detokenizer
    from sedd.data.errors import DataConfigError, DataUnavailableError
    from sedd.data.settings import DataSettings
    from sedd.data.tokenizers import Tokenizer, build_tokenizer, has_saved_tokenizer, load_tokenizer


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sedd.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
