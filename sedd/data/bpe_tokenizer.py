"""Byte-level BPE trained on the training split with the Hugging Face ``tokenizers`` library.

Byte-level BPE (the GPT-2 scheme) starts from the 256 byte values, so every string is
encodable and ``decode(encode(text))`` returns ``text`` without any unknown token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from sedd.data.corpus import split_into_pieces
from sedd.data.tokenizers import EOT_TOKEN, Tokenizer, encode_in_pieces, token_dtype

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
# Cap on the characters of the training split that BPE training reads, so that training
# time stays bounded on very large corpora. The value is an estimate of where more text
# changes the learned merges little, not a measured threshold.
MAX_TRAINING_CHARS = 1 << 30
# Training strings are cut to this length so the trainer's buffered batches stay small.
_TRAINING_PIECE_CHARS = 1 << 16


class BPETokenizer(Tokenizer):
    """Byte-level BPE with ``<|endoftext|>`` as its only special token."""

    kind = "bpe"

    def __init__(self, backend: tokenizers.Tokenizer):
        self.name = "bpe"
        self.backend = backend
        eot_id = backend.token_to_id(EOT_TOKEN)
        if eot_id is None:
            raise ValueError(f"BPE tokenizer has no {EOT_TOKEN!r} token")
        self._eot_id = eot_id

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, progress: bool = False) -> BPETokenizer:
        """Train on ``texts`` (streamed) up to ``vocab_size`` tokens, end-of-text included."""
        backend = tokenizers.Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOT_TOKEN],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=progress,
        )
        backend.train_from_iterator(_training_pieces(texts), trainer=trainer)
        tokenizer = cls(backend)
        if tokenizer.vocab_size < vocab_size:
            logger.info(
                "BPE vocabulary has %d tokens, fewer than the %d requested: the training text "
                "has no more merges", tokenizer.vocab_size, vocab_size,
            )
        return tokenizer

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def eot_id(self) -> int:
        return self._eot_id

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        return encode_in_pieces(texts, self._encode_batch_without_offsets, token_dtype(self.vocab_size))

    def _encode_batch_without_offsets(self, texts: list[str]) -> list[list[int]]:
        # encode_batch_fast (tokenizers >= 0.20) skips the character offsets, which packing
        # does not need.
        encode_batch = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        encodings = encode_batch(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def decode(self, ids: Iterable[int]) -> str:
        values = ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]
        return self.backend.decode(values, skip_special_tokens=False)

    def _save_files(self, directory: Path) -> None:
        self.backend.save(str(directory / TOKENIZER_FILE))

    @classmethod
    def _from_files(cls, directory: Path, meta: dict[str, Any]) -> BPETokenizer:
        return cls(tokenizers.Tokenizer.from_file(str(directory / TOKENIZER_FILE)))

    def _vocab_bytes(self) -> bytes:
        return self.backend.to_str().encode("utf-8")


def _training_pieces(texts: Iterable[str]) -> Iterator[str]:
    used = 0
    for text in texts:
        for piece in split_into_pieces(text, _TRAINING_PIECE_CHARS):
            yield piece
        used += len(text)
        if used >= MAX_TRAINING_CHARS:
            logger.info("BPE training stopped reading after %d characters of the training split", used)
            return
