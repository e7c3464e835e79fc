"""The ``data:`` section of an experiment config, normalised and checked for the pipeline.

``prepare_data`` accepts a plain dict or any object with these attribute names (the
config schema's ``DataConfig``). ``DataSettings.from_config`` copies the values into one
frozen dataclass so the rest of the package reads a single, validated type.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sedd.data.errors import DataConfigError

PRESET_CORPORA = ("openwebtext", "wikitext2", "wikitext103", "ptb", "lambada", "lm1b", "text8")
CORPORA = ("stdlib", "text", "jsonl", "hf", *PRESET_CORPORA)
# "lines" (one document per non-blank line) is the unit that the wikitext, ptb and lm1b
# presets use on local files. The config schema offers only "file" and "blank_lines".
DOCUMENT_SPLITS = ("file", "blank_lines", "lines")
SPLITS = ("train", "validation", "test")
DEFAULT_CACHE_DIR = Path("~/.cache/sedd-workbench")
CACHE_DIR_ENV = "SEDD_CACHE_DIR"
# Byte-level BPE starts from the 256 byte symbols and adds the end-of-text token.
MIN_BPE_VOCAB_SIZE = 257


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Validated values of the ``data:`` config section (field meanings as in the config schema).

    Construction validates the values and raises ``DataConfigError`` for an invalid one.
    """

    corpus: str = "stdlib"
    train_files: str | tuple[str, ...] | None = None
    validation_files: str | tuple[str, ...] | None = None
    test_files: str | tuple[str, ...] | None = None
    document_split: str = "file"
    jsonl_field: str = "text"
    hf_name: str | None = None
    hf_config: str | None = None
    hf_text_field: str = "text"
    hf_splits: Mapping[str, str | None] = dataclasses.field(
        default_factory=lambda: {"train": "train", "validation": "validation", "test": "test"}
    )
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    tokenizer: str = "char"
    vocab_size: int = 4096
    seq_len: int = 128
    max_bytes: int | None = None
    cache_dir: str | None = None

    @classmethod
    def from_config(cls, data_cfg: Any) -> DataSettings:
        """Build settings from a dict, a ``DataConfig`` or another ``DataSettings``.

        Missing keys take the defaults above. A dict with an unknown key raises
        ``DataConfigError`` naming it, because a misspelt key would otherwise be ignored.
        """
        if isinstance(data_cfg, DataSettings):
            return data_cfg
        names = [field.name for field in dataclasses.fields(cls)]
        if data_cfg is None:
            values: dict[str, Any] = {}
        elif isinstance(data_cfg, Mapping):
            unknown = sorted(set(data_cfg) - set(names))
            if unknown:
                raise DataConfigError(
                    f"unknown data setting(s) {unknown}; the known keys are {names}"
                )
            values = dict(data_cfg)
        else:
            values = {name: getattr(data_cfg, name) for name in names if hasattr(data_cfg, name)}
        for key in ("train_files", "validation_files", "test_files"):
            if isinstance(values.get(key), (list, tuple)):
                values[key] = tuple(str(pattern) for pattern in values[key])
        if values.get("hf_splits") is not None:
            values["hf_splits"] = dict(values["hf_splits"])
        return cls(**values)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``DataConfigError`` naming the first invalid value and what is accepted."""
        _check_choice("data.corpus", self.corpus, CORPORA)
        _check_choice("data.document_split", self.document_split, DOCUMENT_SPLITS)
        if not self.tokenizer:
            raise DataConfigError("data.tokenizer is empty; use char, bpe, gpt2 or a tokenizer path")
        unknown_splits = sorted(set(self.hf_splits) - set(SPLITS))
        if unknown_splits:
            raise DataConfigError(f"data.hf_splits has unknown key(s) {unknown_splits}; use {list(SPLITS)}")

        self._check_fractions()
        self._check_sizes()
        self._check_required_fields()

    def _check_fractions(self) -> None:
        for key in ("validation_fraction", "test_fraction"):
            value = getattr(self, key)
            if not 0.0 <= value < 1.0:
                raise DataConfigError(f"data.{key}={value!r} must be in [0, 1)")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise DataConfigError(
                f"data.validation_fraction + data.test_fraction = "
                f"{self.validation_fraction + self.test_fraction} leaves no training data; "
                "keep their sum below 1"
            )

    def _check_sizes(self) -> None:
        if self.seq_len < 1:
            raise DataConfigError(f"data.seq_len={self.seq_len!r} must be a positive integer")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise DataConfigError(f"data.max_bytes={self.max_bytes!r} must be positive or null")
        if self.tokenizer == "bpe" and self.vocab_size < MIN_BPE_VOCAB_SIZE:
            raise DataConfigError(
                f"data.vocab_size={self.vocab_size} is too small for byte-level BPE; use at "
                f"least {MIN_BPE_VOCAB_SIZE} (256 byte symbols plus the end-of-text token)"
            )

    def _check_required_fields(self) -> None:
        if self.corpus in ("text", "jsonl") and not self.train_files:
            raise DataConfigError(
                f"data.train_files is required for corpus {self.corpus!r}; set it to a file "
                "path or glob, for example train_files: data/*.txt"
            )
        if self.corpus == "hf" and not self.hf_name:
            raise DataConfigError(
                "data.hf_name is required for corpus 'hf'; set it to a `datasets` name such "
                "as wikitext (with hf_config: wikitext-2-raw-v1)"
            )

    def resolved_cache_dir(self) -> Path:
        """Return the cache folder: ``cache_dir``, else ``$SEDD_CACHE_DIR``, else the default."""
        chosen = self.cache_dir or os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
        return Path(chosen).expanduser()


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise DataConfigError(f"{key}={value!r} is not supported; use one of {list(allowed)}")
