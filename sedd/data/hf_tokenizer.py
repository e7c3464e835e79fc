"""Pretrained Hugging Face tokenizers (``gpt2``, any hub name or local folder).

Loading goes through ``transformers.AutoTokenizer``, which needs the files in the local
Hugging Face cache, a reachable hub, or a local folder. The SEDD paper's models use the
GPT-2 tokenizer, whose ``<|endoftext|>`` (id 50256) separates documents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedd.data.errors import DataConfigError, DataUnavailableError
from sedd.data.tokenizers import Tokenizer, encode_in_pieces, token_dtype

logger = logging.getLogger(__name__)


class HFTokenizer(Tokenizer):
    """A ``transformers`` tokenizer behind this package's interface."""

    kind = "hf"

    def __init__(self, name: str, tokenizer: Any):
        self.name = name
        self.tokenizer = tokenizer
        eot_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        if eot_id is None:
            raise DataConfigError(
                f"tokenizer {name!r} defines neither an end-of-sequence nor a separator token, so "
                "documents cannot be separated; choose another tokenizer, or char or bpe"
            )
        self._eot_id = int(eot_id)

    @classmethod
    def from_name(cls, name: str) -> HFTokenizer:
        """Load ``name`` (hub name or local folder) with ``AutoTokenizer.from_pretrained``.

        Raises ``DataUnavailableError`` when the files are neither cached nor downloadable.
        """
        return cls(name, _auto_tokenizer(name))

    @property
    def vocab_size(self) -> int:
        # len() counts added tokens too, which ``tokenizer.vocab_size`` leaves out.
        return len(self.tokenizer)

    @property
    def eot_id(self) -> int:
        return self._eot_id

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False, verbose=False)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # verbose=False: documents longer than the model's context are expected here,
        # because packing cuts them into blocks afterwards.
        return self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        return encode_in_pieces(texts, self.encode_batch, token_dtype(self.vocab_size))

    def decode(self, ids: Iterable[int]) -> str:
        values = ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]
        return self.tokenizer.decode(values, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _save_files(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(str(directory))

    @classmethod
    def _from_files(cls, directory: Path, meta: dict[str, Any]) -> HFTokenizer:
        return cls(meta["name"], _auto_tokenizer(str(directory)))

    def _vocab_bytes(self) -> bytes:
        if getattr(self.tokenizer, "is_fast", False):
            state = json.loads(self.tokenizer.backend_tokenizer.to_str())
            # The parts that map text to ids without special tokens. Truncation, padding
            # and the post-processor only act when special tokens are added, and
            # transformers may rewrite them when it loads a saved tokenizer.
            kept = {key: state.get(key) for key in ("normalizer", "pre_tokenizer", "model", "decoder")}
            kept["added_tokens"] = [(token["id"], token["content"]) for token in state.get("added_tokens", [])]
            return json.dumps(kept, sort_keys=True).encode("utf-8")
        vocab = sorted(self.tokenizer.get_vocab().items())
        return hashlib.sha256(json.dumps(vocab).encode("utf-8")).digest()


def _auto_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    try:
        # The cache or folder first: a hub request for a missing name is retried for tens
        # of seconds when the network is down.
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except OSError as error:
        if _hub_offline():
            raise _unavailable(name, error) from error
        logger.info("tokenizer %s is not cached (%s); downloading it", name, _first_line(error))
    except ValueError as error:
        raise DataConfigError(f"cannot load tokenizer {name!r}: {error}") from error
    # NOTE: without network and without HF_HUB_OFFLINE=1 this download still waits for the
    # hub client's retries before it fails.
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as error:
        raise _unavailable(name, error) from error
    except ValueError as error:
        raise DataConfigError(f"cannot load tokenizer {name!r}: {error}") from error


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _unavailable(name: str, error: OSError) -> DataUnavailableError:
    return DataUnavailableError(
        f"Hugging Face tokenizer {name!r} is not in the local cache and could not be "
        f"loaded ({type(error).__name__}: {_first_line(error)}).\n"
        "Set data.tokenizer to a local folder with the tokenizer files (tokenizer.json, "
        "or the vocabulary files, with tokenizer_config.json, as save_pretrained writes "
        "them), download the tokenizer once where the hub is reachable, or use "
        "data.tokenizer: char or bpe, which are trained on the corpus."
    )


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else "no message"
