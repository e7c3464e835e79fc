"""Corpora read from local files: ``text``, ``jsonl`` and presets given ``train_files``.

Splits come from separate files when ``validation_files``/``test_files`` are set, else
they are held out of the training files:

- A single training file read as one document (unit ``file``) is cut by position: the
  last ``test_fraction`` of its bytes is test and the ``validation_fraction`` before it is
  validation, the usual split of text8 and Tiny Shakespeare. Cuts fall after a space or
  newline.
- Otherwise each document goes to a split by a stable hash of its key. The key is the
  file's path relative to the common folder of the training files plus the document's
  index in the file, so the assignment survives moving the folder or adding files.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sedd.data.corpus import Corpus, CorpusSplit, Segment, cap_bytes, detokenize_segments
from sedd.data.errors import DataConfigError
from sedd.data.hashing import FileHashMemo, assign_split
from sedd.data.settings import SPLITS, DataSettings
from sedd.data.text_files import cut_offset, file_document, keyed_documents

logger = logging.getLogger(__name__)

# Fingerprints list files one by one up to this count, and only summarise larger sets.
MAX_LISTED_FILES = 16


@dataclasses.dataclass(frozen=True)
class FileSplitReader:
    """Callable that streams one split's segments out of local files.

    ``files`` lists ``(path, key)`` pairs in reading order. With ``keep`` set, only the
    documents that ``assign_split`` sends to that split are read; ``byte_range`` instead
    reads one file's bytes ``[start, end)`` as a single document.
    """

    files: tuple[tuple[Path, str], ...]
    unit: str
    jsonl_field: str = "text"
    keep: str | None = None
    fractions: tuple[float, float] = (0.0, 0.0)
    byte_range: tuple[int, int] | None = None
    detokenizer: str | None = None
    max_bytes: int | None = None

    def __call__(self) -> Iterator[Segment]:
        segments = (segment for _, segment in self._keyed_segments())
        return detokenize_segments(cap_bytes(segments, self.max_bytes), self.detokenizer)

    def _keyed_segments(self) -> Iterator[tuple[str, Segment]]:
        if self.byte_range is not None:
            path, key = self.files[0]
            yield from file_document(path, key, *self.byte_range)
            return
        for path, key in self.files:
            # Whole-file documents are assigned before opening the file, so a split
            # never reads the files of the other splits.
            if self.unit == "file" and not self.keeps(key):
                continue
            for document_key, segment in keyed_documents(path, key, self.unit, self.jsonl_field):
                if self.unit == "file" or self.keeps(document_key):
                    yield document_key, segment

    def keeps(self, key: str) -> bool:
        """Return whether the document ``key`` belongs to this reader's split."""
        return self.keep is None or assign_split(key, *self.fractions) == self.keep


def resolve_files(patterns: str | Sequence[str], setting: str) -> list[Path]:
    """Expand a path or glob (or a list of them) into a sorted, de-duplicated file list.

    Relative paths resolve against the current directory. Raises ``DataConfigError``
    naming ``setting`` when a pattern matches no file.
    """
    found: dict[Path, None] = {}
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        expanded = os.path.expanduser(pattern)
        matches = sorted(glob.glob(expanded, recursive=True)) if glob.has_magic(expanded) else [expanded]
        files = [Path(match).resolve() for match in matches if os.path.isfile(match)]
        if not files:
            raise DataConfigError(
                f"{setting}={pattern!r} matches no file (current directory {os.getcwd()}); "
                "check the path, or give a glob such as data/*.txt"
            )
        found.update(dict.fromkeys(files))
    return list(found)


def relative_keys(paths: Sequence[Path]) -> list[str]:
    """Return each path relative to the paths' common folder, in POSIX form."""
    if len(paths) == 1:
        return [paths[0].name]
    common = Path(os.path.commonpath([str(path) for path in paths]))
    return [path.relative_to(common).as_posix() for path in paths]


def summarize_files(described: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Summarise file descriptions (from ``FileHashMemo``) as count, bytes and content hash.

    The content hash covers each file's key and SHA-1 in order, so it changes when any
    file's content, name or order changes. Up to ``MAX_LISTED_FILES`` files are also listed.
    """
    digest = hashlib.sha256()
    for key, description in zip(keys, described):
        digest.update(f"{key}\0{description['sha1']}\n".encode("utf-8"))
    summary: dict[str, Any] = {
        "file_count": len(described),
        "byte_count": sum(description["bytes"] for description in described),
        "content_hash": digest.hexdigest(),
    }
    if len(described) <= MAX_LISTED_FILES:
        summary["files"] = [dict(description, key=key) for key, description in zip(keys, described)]
    return summary


def build_local_corpus(
    name: str,
    settings: DataSettings,
    memo: FileHashMemo,
    unit: str,
    detokenizer: str | None = None,
) -> Corpus:
    """Build a corpus from ``settings.train_files`` (and optional validation/test files).

    ``unit`` is the document unit (``file``, ``blank_lines``, ``lines`` or ``jsonl``).
    """
    if not settings.train_files:
        raise DataConfigError(f"data.train_files is required to read corpus {name!r} from local files")
    train_paths = resolve_files(settings.train_files, "data.train_files")
    separate = {
        split: resolve_files(patterns, f"data.{split}_files")
        for split, patterns in (("validation", settings.validation_files), ("test", settings.test_files))
        if patterns
    }
    fractions = (
        0.0 if "validation" in separate else settings.validation_fraction,
        0.0 if "test" in separate else settings.test_fraction,
    )
    common = dict(
        unit=unit,
        jsonl_field=settings.jsonl_field,
        detokenizer=detokenizer,
        max_bytes=settings.max_bytes,
    )
    train_keys = relative_keys(train_paths)
    if unit == "file" and len(train_paths) == 1 and any(fractions):
        readers = _position_readers(train_paths[0], train_keys[0], fractions, common)
    else:
        readers = _hash_readers(train_paths, train_keys, fractions, common)
    for split, paths in separate.items():
        files = tuple(zip(paths, relative_keys(paths)))
        readers[split] = FileSplitReader(files=files, **common)
    splits = {
        split: _split(name, split, readers[split], memo, settings) for split in SPLITS if split in readers
    }
    return Corpus(name=name, splits=splits)


def _position_readers(
    path: Path, key: str, fractions: tuple[float, float], common: dict[str, Any]
) -> dict[str, FileSplitReader]:
    validation_fraction, test_fraction = fractions
    size = path.stat().st_size
    validation_start = cut_offset(path, int(size * (1.0 - validation_fraction - test_fraction)))
    test_start = cut_offset(path, int(size * (1.0 - test_fraction))) if test_fraction else size
    ranges = {
        "train": (0, validation_start),
        "validation": (validation_start, test_start),
        "test": (test_start, size),
    }
    included = {"train": True, "validation": validation_fraction > 0, "test": test_fraction > 0}
    return {
        split: FileSplitReader(files=((path, key),), byte_range=byte_range, **common)
        for split, byte_range in ranges.items()
        if included[split]
    }


def _hash_readers(
    paths: list[Path], keys: list[str], fractions: tuple[float, float], common: dict[str, Any]
) -> dict[str, FileSplitReader]:
    files = tuple(zip(paths, keys))
    included = {"train": True, "validation": fractions[0] > 0, "test": fractions[1] > 0}
    holding_out = any(fractions)
    return {
        split: FileSplitReader(files=files, keep=split if holding_out else None, fractions=fractions, **common)
        for split in SPLITS
        if included[split]
    }


def _split(
    corpus: str, split: str, reader: FileSplitReader, memo: FileHashMemo, settings: DataSettings
) -> CorpusSplit:
    paths = [path for path, _ in reader.files]
    keys = [key for _, key in reader.files]
    described = memo.describe_all(paths)
    if reader.unit == "file" and reader.keep is not None:
        # Whole-file hold-out: the split's own files identify it.
        kept_indices = [i for i, key in enumerate(keys) if reader.keeps(key)]
        described = [described[i] for i in kept_indices]
        keys = [keys[i] for i in kept_indices]
    fingerprint = {
        "kind": "files",
        "split": split,
        "unit": reader.unit,
        **summarize_files(described, keys),
        "selection": _selection(reader),
        "detokenizer": reader.detokenizer,
        "max_bytes": reader.max_bytes,
    }
    if reader.unit == "jsonl":
        fingerprint["jsonl_field"] = reader.jsonl_field
    source_bytes = _estimate_bytes(reader, fingerprint["byte_count"])
    if settings.max_bytes is not None:
        source_bytes = min(source_bytes, settings.max_bytes)
    return CorpusSplit(corpus, split, fingerprint, reader, source_bytes)


def _estimate_bytes(reader: FileSplitReader, byte_count: int) -> int:
    if reader.byte_range is not None:
        return reader.byte_range[1] - reader.byte_range[0]
    if reader.keep is None or reader.unit == "file":
        return byte_count
    validation_fraction, test_fraction = reader.fractions
    share = {"validation": validation_fraction, "test": test_fraction}
    return int(byte_count * share.get(reader.keep, 1.0 - validation_fraction - test_fraction))


def _selection(reader: FileSplitReader) -> dict[str, Any]:
    if reader.byte_range is not None:
        return {"method": "byte_range", "start": reader.byte_range[0], "end": reader.byte_range[1]}
    if reader.keep is not None:
        return {
            "method": "sha1_of_document_key",
            "validation_fraction": reader.fractions[0],
            "test_fraction": reader.fractions[1],
        }
    return {"method": "all"}
