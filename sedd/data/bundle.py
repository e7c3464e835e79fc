"""``prepare_data``: from the ``data:`` config section to a tokenizer and block datasets."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sedd.data.blocks import TokenBlocks
from sedd.data.cache import load_or_pack
from sedd.data.corpora import build_corpus
from sedd.data.errors import DataConfigError
from sedd.data.settings import SPLITS, DataSettings
from sedd.data.tokenizers import Tokenizer, build_tokenizer, has_saved_tokenizer, load_tokenizer

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class DataBundle:
    """The tokenizer and the block datasets of one experiment.

    A split that was not requested from ``prepare_data`` is None. ``fingerprint`` is
    JSON-ready: corpus, tokenizer identity, ``seq_len`` and per split its source
    fingerprint and token and block counts.
    """

    tokenizer: Tokenizer
    train: TokenBlocks | None
    validation: TokenBlocks | None
    test: TokenBlocks | None
    seq_len: int
    fingerprint: dict[str, Any]

    def split(self, name: str) -> TokenBlocks:
        """Return the dataset of split ``name``; raise KeyError if it was not prepared."""
        if name not in SPLITS or getattr(self, name) is None:
            raise KeyError(f"split {name!r} was not prepared; prepared: {self.prepared_splits()}")
        return getattr(self, name)

    def prepared_splits(self) -> list[str]:
        """Names of the splits that were prepared, in train, validation, test order."""
        return [name for name in SPLITS if getattr(self, name) is not None]


def prepare_data(
    data_cfg: Any,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    splits: Sequence[str] | None = None,
) -> DataBundle:
    """Build the corpus and tokenizer, tokenize the splits (or open the cache) and return them.

    ``data_cfg`` is the ``data:`` section: a dict, the config's ``DataConfig``, or any
    object with the same attribute names. When ``tokenizer_dir`` contains a saved
    tokenizer, it is loaded instead of training one, so a resumed run and its sampler reuse the run's
    tokenizer. When ``tokenizer_dir`` is given but empty, the tokenizer is saved there.
    ``splits`` names the splits to tokenize; each must exist in the corpus. None means
    every split the corpus has (a split is absent when its fraction is 0 and no files
    are given for it). A split that yields no whole block raises ``DataConfigError``.

    NOTE: concurrent calls with the same settings (one per DDP rank) are safe, because
    every write is atomic, but each repeats the work; let rank 0 run it first.
    """
    settings = DataSettings.from_config(data_cfg)
    unknown = [name for name in splits or () if name not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; use names from {list(SPLITS)}")
    corpus = build_corpus(settings)
    if splits is None:
        splits = list(corpus.splits)
    missing = [name for name in splits if name not in corpus.splits]
    if missing:
        raise DataConfigError(
            f"corpus {corpus.name!r} has no {'/'.join(missing)} split (it has "
            f"{list(corpus.splits)}); set data.validation_fraction/test_fraction above 0, "
            "give data.validation_files/test_files, or do not request the split"
        )
    tokenizer = _tokenizer_for_run(settings, corpus, tokenizer_dir, progress)
    cache_dir = settings.resolved_cache_dir()
    datasets: dict[str, TokenBlocks | None] = dict.fromkeys(SPLITS)
    split_info: dict[str, Any] = {}
    for name in splits:
        meta = load_or_pack(corpus.splits[name], tokenizer, cache_dir, progress)
        blocks = TokenBlocks(meta["token_file"], meta["num_tokens"], settings.seq_len, meta["dtype"], split=name)
        _check_not_empty(blocks, meta, settings)
        datasets[name] = blocks
        split_info[name] = {
            "source": corpus.splits[name].fingerprint,
            "documents": meta["num_documents"],
            "tokens": meta["num_tokens"],
            "blocks": blocks.num_blocks,
            "token_file": meta["token_file"],
        }
    logger.info(
        "data: corpus %s, %s tokenizer with %d tokens, seq_len %d, blocks %s",
        corpus.name, tokenizer.name, tokenizer.vocab_size, settings.seq_len,
        ", ".join(f"{name} {info['blocks']}" for name, info in split_info.items()),
    )
    fingerprint = {
        "corpus": corpus.name,
        "tokenizer": tokenizer.identity,
        "seq_len": settings.seq_len,
        "splits": split_info,
    }
    return DataBundle(tokenizer=tokenizer, seq_len=settings.seq_len, fingerprint=fingerprint, **datasets)


def _tokenizer_for_run(
    settings: DataSettings, corpus: Any, tokenizer_dir: str | os.PathLike[str] | None, progress: bool
) -> Tokenizer:
    if has_saved_tokenizer(tokenizer_dir):
        tokenizer = load_tokenizer(tokenizer_dir)  # type: ignore[arg-type]
        trained = settings.tokenizer in ("char", "bpe")
        if trained and tokenizer.kind != settings.tokenizer:
            raise DataConfigError(
                f"the saved tokenizer in {str(tokenizer_dir)!r} is {tokenizer.kind!r} but "
                f"data.tokenizer is {settings.tokenizer!r}; resume with the run's own config"
            )
        if not trained and tokenizer.name != settings.tokenizer:
            logger.warning(
                "using the saved tokenizer %r from %s although data.tokenizer is %r",
                tokenizer.name, tokenizer_dir, settings.tokenizer,
            )
        logger.info("loaded the run's %s tokenizer from %s", tokenizer.name, tokenizer_dir)
        return tokenizer
    tokenizer = build_tokenizer(settings, corpus, progress)
    if tokenizer_dir is not None:
        tokenizer.save(Path(tokenizer_dir))
    return tokenizer


def _check_not_empty(blocks: TokenBlocks, meta: dict[str, Any], settings: DataSettings) -> None:
    if blocks.num_blocks > 0:
        return
    raise DataConfigError(
        f"the {blocks.split} split has {meta['num_tokens']} tokens from {meta['num_documents']} "
        f"documents, less than one block of data.seq_len={settings.seq_len}; use more text "
        "(a larger data.max_bytes or held-out fraction, or more files) or a smaller seq_len"
    )
