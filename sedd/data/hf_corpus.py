"""Corpora loaded with the Hugging Face ``datasets`` library.

Two modes:

- Hub: ``load_dataset(hf_name, hf_config)``, which needs the dataset in the local cache
  or a reachable hub. ``HF_DATASETS_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` (read by
  ``datasets`` when it is imported) forbids the download. A dataset that cannot be
  loaded raises ``DataUnavailableError`` that explains how to use local files instead.
- Local files: with ``train_files`` set, ``hf_name`` names a builder for local files
  (``text``, ``json``, ``csv``, ``parquet``) and the files become the splits. An
  ``hf_name`` that is a local folder is loaded as a dataset folder (splits named after
  its files, e.g. ``test.jsonl``).

A split the dataset lacks (its ``hf_splits`` entry is null or missing) is held out of the
training rows by a stable hash of the row's position, with the sizes that
``validation_fraction`` and ``test_fraction`` set.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sedd.data.corpus import (
    Corpus,
    CorpusSplit,
    Segment,
    cap_bytes,
    detokenize_segments,
    document_segments,
    split_into_pieces,
)
from sedd.data.errors import DataConfigError, DataUnavailableError
from sedd.data.hashing import FileHashMemo, assign_split
from sedd.data.local_corpus import relative_keys, resolve_files, summarize_files
from sedd.data.settings import SPLITS, DataSettings

logger = logging.getLogger(__name__)

_ROWS_PER_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class HFSource:
    """Hub location of a corpus (dataset name, config, text column, splits) and its detokenizer."""

    name: str
    config: str | None
    text_field: str
    splits: Mapping[str, str | None]
    detokenizer: str | None = None


@dataclasses.dataclass(frozen=True)
class DatasetSplitReader:
    """Callable that streams the text column of a ``datasets.Dataset`` as segments.

    Rows are documents. With ``keep`` set, only rows that ``assign_split`` sends to that
    split are read, keyed by ``"<source split>#<row index>"``.
    """

    dataset: Any
    source_split: str
    text_field: str
    keep: str | None = None
    fractions: tuple[float, float] = (0.0, 0.0)
    detokenizer: str | None = None
    max_bytes: int | None = None

    def __call__(self) -> Iterator[Segment]:
        return detokenize_segments(cap_bytes(self._rows(), self.max_bytes), self.detokenizer)

    def _rows(self) -> Iterator[Segment]:
        column = self.dataset.select_columns([self.text_field])
        index = 0
        for batch in column.iter(batch_size=_ROWS_PER_BATCH):
            for text in batch[self.text_field]:
                key = f"{self.source_split}#{index}"
                index += 1
                if text is None:
                    continue
                if self.keep is not None and assign_split(key, *self.fractions) != self.keep:
                    continue
                yield from document_segments(split_into_pieces(text))


def build_hf_corpus(
    name: str, settings: DataSettings, memo: FileHashMemo, source: HFSource
) -> Corpus:
    """Load ``source`` (or the local ``train_files`` through its builder) as a corpus."""
    dataset_dict, split_map, file_summaries = _open_datasets(settings, memo, source)

    # Evaluation-only datasets (LAMBADA has only a test split) have no training split,
    # and then nothing can be held out either.
    train_source = split_map.get("train")
    held_out = {
        split: split_map.get(split) is None and train_source is not None for split in ("validation", "test")
    }
    fractions = (
        settings.validation_fraction if held_out["validation"] else 0.0,
        settings.test_fraction if held_out["test"] else 0.0,
    )

    splits = {}
    for split in SPLITS:
        source_split = _source_split(split, split_map, fractions)
        if source_split is None:
            continue
        dataset = _dataset_split(dataset_dict, source_split, split, source)
        holding_out = source_split == train_source and any(fractions)
        reader = DatasetSplitReader(
            dataset=dataset,
            source_split=source_split,
            text_field=source.text_field,
            keep=split if holding_out else None,
            fractions=fractions,
            detokenizer=source.detokenizer,
            max_bytes=settings.max_bytes,
        )
        fingerprint = _fingerprint(source, split, reader, file_summaries.get(source_split))
        splits[split] = CorpusSplit(name, split, fingerprint, reader, None)
    return Corpus(name=name, splits=splits)


def _open_datasets(
    settings: DataSettings, memo: FileHashMemo, source: HFSource
) -> tuple[Any, Mapping[str, str | None], dict[str, dict[str, Any]]]:
    """Return the ``DatasetDict``, the map from this project's splits to its splits, and file summaries."""
    if not settings.train_files:
        return _load(source, None, settings), source.splits, {}
    data_files = _local_data_files(settings)
    file_summaries = {
        split: summarize_files(memo.describe_all(paths), relative_keys(paths))
        for split, paths in data_files.items()
    }
    split_map = {split: split for split in data_files}
    return _load(source, data_files, settings), split_map, file_summaries


def _dataset_split(dataset_dict: Any, source_split: str, split: str, source: HFSource) -> Any:
    """Return ``dataset_dict[source_split]`` after checking that it exists and has the text column."""
    if source_split not in dataset_dict:
        remedy = "" if split == "train" else ", or remove the entry to hold out a fraction of the training split"
        raise DataConfigError(
            f"dataset {source.name!r} has no split {source_split!r} (for {split}); its "
            f"splits are {list(dataset_dict.keys())}. Set data.hf_splits.{split} to one of them{remedy}"
        )
    dataset = dataset_dict[source_split]
    if source.text_field not in dataset.column_names:
        raise DataConfigError(
            f"dataset {source.name!r} has no column {source.text_field!r}; its columns are "
            f"{dataset.column_names}. Set data.hf_text_field to the column that contains the text"
        )
    return dataset


def _source_split(
    split: str, split_map: Mapping[str, str | None], fractions: tuple[float, float]
) -> str | None:
    """Return the dataset split that feeds ``split``, or None when ``split`` is not wanted."""
    mapped = split_map.get(split)
    if split == "train" or mapped is not None:
        return mapped
    held_out_fraction = fractions[0] if split == "validation" else fractions[1]
    return split_map.get("train") if held_out_fraction > 0 else None


def _local_data_files(settings: DataSettings) -> dict[str, list[Path]]:
    patterns = {
        "train": settings.train_files,
        "validation": settings.validation_files,
        "test": settings.test_files,
    }
    return {
        split: resolve_files(pattern, f"data.{split}_files")
        for split, pattern in patterns.items()
        if pattern
    }


def _load(source: HFSource, data_files: dict[str, list[Path]] | None, settings: DataSettings) -> Any:
    import datasets

    # Arrow copies of local data go to this project's cache. Hub datasets use the shared
    # Hugging Face cache, because a dataset downloaded earlier is found there.
    local_cache = str(settings.resolved_cache_dir() / "hf-datasets")
    if data_files is not None:
        files = {split: [str(path) for path in paths] for split, paths in data_files.items()}
        logger.info("loading local files with the datasets builder %r", source.name)
        return datasets.load_dataset(source.name, source.config, data_files=files, cache_dir=local_cache)
    if Path(source.name).expanduser().is_dir():
        logger.info("loading the dataset folder %s", source.name)
        return datasets.load_dataset(str(Path(source.name).expanduser()), source.config, cache_dir=local_cache)
    logger.info("loading Hugging Face dataset %r (config %r)", source.name, source.config)
    try:
        return datasets.load_dataset(source.name, source.config)
    except OSError as error:  # includes ConnectionError and DatasetNotFoundError
        raise DataUnavailableError(_unavailable_message(source, error)) from error


def _unavailable_message(source: HFSource, error: Exception) -> str:
    import datasets

    offline = bool(datasets.config.HF_HUB_OFFLINE) or _env_flag("HF_DATASETS_OFFLINE") or _env_flag(
        "HF_HUB_OFFLINE"
    )
    reason = (
        "offline mode is on (HF_DATASETS_OFFLINE or HF_HUB_OFFLINE), so nothing is downloaded"
        if offline
        else f"the download failed ({type(error).__name__}: {error})"
    )
    config = f" (config {source.config!r})" if source.config else ""
    return (
        f"Hugging Face dataset {source.name!r}{config} is not in the local cache and {reason}.\n"
        "Point the config at local files instead, for example a plain-text corpus:\n"
        "  data:\n"
        "    corpus: text\n"
        "    train_files: /path/to/train.txt       # a file or a glob such as /path/*.txt\n"
        "    validation_files: /path/to/valid.txt  # optional; else a fraction is held out\n"
        "or keep a preset (and its detokenizer) and give its files:\n"
        "  data:\n"
        "    corpus: wikitext2\n"
        "    train_files: /path/to/wikitext-2-raw/train.txt\n"
        "Or download the dataset once where the hub is reachable, so it is in the cache."
    )


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _fingerprint(
    source: HFSource, split: str, reader: DatasetSplitReader, files: dict[str, Any] | None
) -> dict[str, Any]:
    fingerprint: dict[str, Any] = {
        "kind": "hf",
        "split": split,
        "hf_name": source.name,
        "hf_config": source.config,
        "source_split": reader.source_split,
        "num_rows": reader.dataset.num_rows,
        "text_field": reader.text_field,
        "selection": (
            {"method": "sha1_of_row_key", "validation_fraction": reader.fractions[0],
             "test_fraction": reader.fractions[1]}
            if reader.keep is not None
            else {"method": "all"}
        ),
        "detokenizer": reader.detokenizer,
        "max_bytes": reader.max_bytes,
    }
    if files is not None:
        fingerprint.update(files)
    else:
        # The library's own hash of the cached Arrow data identifies the dataset version.
        fingerprint["dataset_fingerprint"] = reader.dataset._fingerprint
    return fingerprint
