"""The tokenizer interface, saving and loading, and ``build_tokenizer``.

Three kinds share one interface:

- ``char``: one token per character seen in the training split (``CharTokenizer``).
- ``bpe``: byte-level BPE trained on the training split with the ``tokenizers`` library.
- any other name: a Hugging Face tokenizer (``gpt2``, a hub name or a local folder)
  loaded with ``transformers.AutoTokenizer``.

Every tokenizer has an end-of-text id that packing puts after each document. ``save``
writes the files plus ``sedd_tokenizer.json``, so ``load_tokenizer`` rebuilds any kind
from a run folder alone. Trained tokenizers are cached under ``<cache_dir>/tokenizers``,
keyed by the training split's fingerprint, so a second run skips training.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sedd.data.atomic import write_text_atomic
from sedd.data.corpus import split_into_pieces
from sedd.data.errors import DataConfigError
from sedd.data.hashing import fingerprint_digest

logger = logging.getLogger(__name__)

META_FILE = "sedd_tokenizer.json"
EOT_TOKEN = "<|endoftext|>"
# Bump when the saved files of a trained tokenizer change meaning; old caches then miss.
TOKENIZER_FORMAT = 1
PIECE_CHARS_FOR_ENCODING = 1 << 16
CHARS_PER_ENCODE_CALL = 1 << 20


class Tokenizer(abc.ABC):
    """Text to token ids and back; ids are in ``[0, vocab_size)``."""

    kind: ClassVar[str]
    name: str
    # Characters that packing passes to one ``encode_arrays`` call. Subword tokenizers
    # need memory per character while encoding (see ``encode_in_pieces``), hence the
    # modest default.
    batch_chars: ClassVar[int] = 1 << 20

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included."""

    @property
    @abc.abstractmethod
    def eot_id(self) -> int:
        """Id of the end-of-text token placed after every document."""

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Return the ids of ``text``, without adding special tokens."""

    @abc.abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Return the text of ``ids`` (any iterable of ints, e.g. a 1-D int tensor)."""

    @abc.abstractmethod
    def _save_files(self, directory: Path) -> None:
        """Write the files that ``_from_files`` reads back."""

    @classmethod
    @abc.abstractmethod
    def _from_files(cls, directory: Path, meta: dict[str, Any]) -> Tokenizer:
        """Rebuild the tokenizer from files written by ``_save_files``."""

    @abc.abstractmethod
    def _vocab_bytes(self) -> bytes:
        """Serialise the vocabulary and rules: bytes that change whenever the text-to-ids mapping does."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Return the ids of each text."""
        return [self.encode(text) for text in texts]

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Return the ids of each text as a 1-D unsigned integer array (for packing)."""
        dtype = token_dtype(self.vocab_size)
        return [np.asarray(ids, dtype=dtype) for ids in self.encode_batch(texts)]

    def unknown_characters(self, text: str) -> list[str]:
        """Return the distinct characters of ``text`` that encode to an unknown token, in code point order.

        The byte-level BPE and GPT-2 tokenizers encode every character, so the default is empty.
        """
        # NOTE: a pretrained tokenizer with an unknown token (a WordPiece one, say) is not
        # checked here, so its prompts can still lose characters silently.
        return []

    @property
    def vocab_hash(self) -> str:
        """Short SHA-256 of the vocabulary and rules, part of the token cache key."""
        return hashlib.sha256(self._vocab_bytes()).hexdigest()[:16]

    @property
    def identity(self) -> dict[str, Any]:
        """Kind, name, vocabulary size and vocabulary hash, as JSON-ready data."""
        return {
            "kind": self.kind,
            "name": self.name,
            "vocab_size": self.vocab_size,
            "eot_id": self.eot_id,
            "vocab_hash": self.vocab_hash,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the tokenizer to ``directory`` (created if needed) and return its path.

        ``sedd_tokenizer.json`` is written last, so a folder with it is always complete.
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self._save_files(path)
        meta = dict(self.identity, format=TOKENIZER_FORMAT)
        write_text_atomic(path / META_FILE, json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Tokenizer:
        """Load a tokenizer saved with ``save`` (same as ``load_tokenizer``)."""
        return load_tokenizer(directory)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size})"


def encode_in_pieces(
    texts: Sequence[str], encode_batch: Callable[[list[str]], list[list[int]]], dtype: np.dtype
) -> list[np.ndarray]:
    """Encode each text as pieces of at most ``PIECE_CHARS_FOR_ENCODING`` characters.

    A subword tokenizer keeps every result of one ``encode_batch`` call in memory (about
    40 bytes per character, measured with tokenizers 0.23 on byte-level BPE), so each call
    gets at most ``CHARS_PER_ENCODE_CALL`` characters.
    Texts are cut at ``whitespace_cut`` points, where byte-level BPE gives the same ids as
    for the uncut text.
    """
    parts: list[list[np.ndarray]] = [[] for _ in texts]
    group: list[tuple[int, str]] = []  # (index of the text, piece)
    group_chars = 0
    for index, text in enumerate(texts):
        for piece in split_into_pieces(text, PIECE_CHARS_FOR_ENCODING):
            group.append((index, piece))
            group_chars += len(piece)
            if group_chars >= CHARS_PER_ENCODE_CALL:
                _encode_group(group, encode_batch, dtype, parts)
                group, group_chars = [], 0
    if group:
        _encode_group(group, encode_batch, dtype, parts)
    return [np.concatenate(text_parts) if text_parts else np.zeros(0, dtype=dtype) for text_parts in parts]


def _encode_group(
    group: list[tuple[int, str]],
    encode_batch: Callable[[list[str]], list[list[int]]],
    dtype: np.dtype,
    parts: list[list[np.ndarray]],
) -> None:
    """Encode the pieces of ``group`` in one call and append each result to its text's parts."""
    for (index, _), ids in zip(group, encode_batch([piece for _, piece in group])):
        parts[index].append(np.asarray(ids, dtype=dtype))


def token_dtype(vocab_size: int) -> np.dtype:
    """Return uint16 when every id fits in 16 bits, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def has_saved_tokenizer(directory: str | os.PathLike[str] | None) -> bool:
    """Return whether ``directory`` contains a complete tokenizer written by ``save``."""
    return directory is not None and (Path(directory) / META_FILE).is_file()


def load_tokenizer(directory: str | os.PathLike[str]) -> Tokenizer:
    """Load the tokenizer saved in ``directory``.

    Raises ``DataConfigError`` when the folder has no ``sedd_tokenizer.json`` or when the
    loaded vocabulary does not match the hash recorded at saving time.
    """
    path = Path(directory)
    if not has_saved_tokenizer(path):
        raise DataConfigError(
            f"no saved tokenizer in {str(path)!r} ({META_FILE} is missing); pass the folder "
            "that Tokenizer.save wrote, such as a run's tokenizer folder"
        )
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    tokenizer = _tokenizer_class(meta["kind"])._from_files(path, meta)
    if tokenizer.vocab_hash != meta["vocab_hash"]:
        raise DataConfigError(
            f"tokenizer files in {str(path)!r} do not match {META_FILE} (vocabulary hash "
            f"{tokenizer.vocab_hash} != {meta['vocab_hash']}); the folder was modified, save it again"
        )
    return tokenizer


def _tokenizer_class(kind: str) -> type[Tokenizer]:
    if kind == "char":
        from sedd.data.char_tokenizer import CharTokenizer

        return CharTokenizer
    if kind == "bpe":
        from sedd.data.bpe_tokenizer import BPETokenizer

        return BPETokenizer
    if kind == "hf":
        from sedd.data.hf_tokenizer import HFTokenizer

        return HFTokenizer
    raise DataConfigError(f"unknown tokenizer kind {kind!r} in {META_FILE}; expected char, bpe or hf")


def build_tokenizer(data_cfg: Any, corpus: Any = None, progress: bool = True) -> Tokenizer:
    """Build the tokenizer that ``data.tokenizer`` names.

    ``char`` and ``bpe`` are trained on the corpus's training split (built from
    ``data_cfg`` when ``corpus`` is None), or loaded from the cache when the same split was
    used before. A folder written by ``Tokenizer.save`` is loaded as it is. Any other value
    goes to ``transformers.AutoTokenizer``.
    """
    from sedd.data.settings import DataSettings

    settings = DataSettings.from_config(data_cfg)
    if settings.tokenizer in ("char", "bpe"):
        if corpus is None:
            from sedd.data.corpora import build_corpus

            corpus = build_corpus(settings)
        if "train" not in corpus.splits:
            raise DataConfigError(
                f"corpus {corpus.name!r} has no training split to train the {settings.tokenizer} "
                "tokenizer on; set data.train_files or use a pretrained tokenizer such as gpt2"
            )
        return _cached_trained_tokenizer(settings, corpus.splits["train"], progress)
    if has_saved_tokenizer(Path(settings.tokenizer).expanduser()):
        return load_tokenizer(Path(settings.tokenizer).expanduser())
    from sedd.data.hf_tokenizer import HFTokenizer

    return HFTokenizer.from_name(settings.tokenizer)


def _cached_trained_tokenizer(settings: Any, train_split: Any, progress: bool) -> Tokenizer:
    recipe = {
        "kind": settings.tokenizer,
        "vocab_size": settings.vocab_size if settings.tokenizer == "bpe" else None,
        "train": train_split.fingerprint,
        "format": TOKENIZER_FORMAT,
    }
    folder = settings.resolved_cache_dir() / "tokenizers" / f"{settings.tokenizer}-{fingerprint_digest(recipe)}"
    if has_saved_tokenizer(folder):
        logger.info("loading cached %s tokenizer from %s", settings.tokenizer, folder)
        return load_tokenizer(folder)
    texts = (segment.text for segment in train_split.segments())
    if settings.tokenizer == "char":
        from sedd.data.char_tokenizer import CharTokenizer

        tokenizer: Tokenizer = CharTokenizer.train(texts, progress=progress)
    else:
        from sedd.data.bpe_tokenizer import BPETokenizer

        tokenizer = BPETokenizer.train(texts, settings.vocab_size, progress=progress)
    _save_new_folder(tokenizer, folder)
    return tokenizer


def _save_new_folder(tokenizer: Tokenizer, folder: Path) -> None:
    """Save into a temporary sibling folder, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        tokenizer.save(temporary)
        os.replace(temporary, folder)
        logger.info("cached the trained %s tokenizer in %s", tokenizer.kind, folder)
    except OSError as error:
        # Another process may have cached the same tokenizer first; theirs is identical.
        logger.debug("not caching tokenizer in %s: %s", folder, error)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
