"""Build a corpus from the ``data:`` settings: built-in, local files, Hugging Face, presets.

Presets name the corpora of the SEDD paper. Without ``train_files`` a preset loads its
Hugging Face dataset. With ``train_files`` it reads those local files instead and still
applies its detokenizer. The local document unit matches the hub's rows where the
formats agree (one line of WikiText, PTB or lm1b is one hub row), so both paths give the
same documents. ``data.document_split`` and the ``hf_*`` keys are ignored for presets.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from sedd.data.corpus import Corpus
from sedd.data.hashing import memo_for_cache
from sedd.data.hf_corpus import HFSource, build_hf_corpus
from sedd.data.local_corpus import build_local_corpus
from sedd.data.settings import DataSettings
from sedd.data.stdlib_corpus import build_stdlib_corpus

logger = logging.getLogger(__name__)

_ALL_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A paper corpus: its hub source and how to read a local copy of its files."""

    hub: HFSource
    local_unit: str
    description: str

    @property
    def detokenizer(self) -> str | None:
        """Name of the detokenizer applied to both the hub rows and local files."""
        return self.hub.detokenizer


# NOTE: these hub names and splits follow common usage and the datasets hub as of 2024;
# none could be loaded from this offline build machine to confirm them.
PRESETS: dict[str, Preset] = {
    "openwebtext": Preset(
        HFSource("Skylion007/openwebtext", None, "text", {"train": "train"}),
        local_unit="file",
        description="OpenWebText; one document per local file; no held-out split on the hub",
    ),
    "wikitext2": Preset(
        HFSource("wikitext", "wikitext-2-raw-v1", "text", _ALL_SPLITS, "wikitext"),
        local_unit="lines",
        description="WikiText-2 (raw); one document per non-blank line (paragraph or heading)",
    ),
    "wikitext103": Preset(
        HFSource("wikitext", "wikitext-103-raw-v1", "text", _ALL_SPLITS, "wikitext"),
        local_unit="lines",
        description="WikiText-103 (raw); one document per non-blank line (paragraph or heading)",
    ),
    "ptb": Preset(
        HFSource("ptb_text_only", None, "sentence", _ALL_SPLITS, "ptb"),
        local_unit="lines",
        description="Penn Treebank (Mikolov's LM version); one document per sentence (line)",
    ),
    "lambada": Preset(
        HFSource("EleutherAI/lambada_openai", "en", "text", {"test": "test"}, "lambada"),
        local_unit="jsonl",
        description="LAMBADA (OpenAI version); hub: test split only; local: JSON lines, field text",
    ),
    "lm1b": Preset(
        HFSource("lm1b", None, "text", {"train": "train", "test": "test"}, "lm1b"),
        local_unit="lines",
        description="One Billion Word benchmark; one document per sentence (line)",
    ),
    "text8": Preset(
        HFSource("afmck/text8", None, "text", _ALL_SPLITS),
        local_unit="file",
        description="text8; a local file is split by position (90/5/5 with the default fractions)",
    ),
}


def build_corpus(data_cfg: Any) -> Corpus:
    """Build the corpus that the ``data:`` settings describe (a dict, DataConfig or DataSettings).

    Raises ``DataConfigError`` for invalid settings or unreadable local files and
    ``DataUnavailableError`` for a Hugging Face dataset that is neither cached nor
    downloadable.
    """
    settings = DataSettings.from_config(data_cfg)
    memo = memo_for_cache(settings.resolved_cache_dir())
    corpus = settings.corpus
    if corpus == "stdlib":
        return build_stdlib_corpus(settings, memo)
    if corpus in ("text", "jsonl"):
        unit = "jsonl" if corpus == "jsonl" else settings.document_split
        return build_local_corpus(corpus, settings, memo, unit)
    if corpus == "hf":
        source = HFSource(
            settings.hf_name or "", settings.hf_config, settings.hf_text_field, settings.hf_splits
        )
        return build_hf_corpus(corpus, settings, memo, source)
    preset = PRESETS[corpus]
    if settings.train_files:
        logger.info("preset %s: reading local files %s", corpus, settings.train_files)
        return build_local_corpus(corpus, settings, memo, preset.local_unit, preset.detokenizer)
    return build_hf_corpus(corpus, settings, memo, preset.hub)
