"""The corpus model shared by every source: splits that stream text segments.

A corpus split never keeps its whole text in memory. Reading it yields ``Segment`` pieces of at
most a few megabytes, and ``ends_document`` marks the last piece of each document, where
packing inserts the end-of-text token. Small documents are one segment each. A large one
(a 1 GB single-file corpus) arrives as many segments cut at line ends or spaces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from sedd.data.detokenizers import get_detokenizer

# Upper bound on one segment's length in characters. Large enough that per-segment Python
# overhead is negligible, small enough that a few copies of a segment fit in memory.
PIECE_CHARS = 1 << 23


class Segment(NamedTuple):
    """A piece of one document; ``ends_document`` is True on the document's last piece."""

    text: str
    ends_document: bool


@dataclasses.dataclass(frozen=True)
class CorpusSplit:
    """One split (train, validation or test) of a corpus.

    ``reader`` returns a fresh iterator over the split's segments on each call, in a fixed
    order. ``fingerprint`` is JSON-serialisable and identifies the text that the reader
    yields. ``source_bytes`` estimates the bytes read, for the progress bar, or is None.
    """

    corpus: str
    name: str
    fingerprint: dict[str, Any]
    reader: Callable[[], Iterator[Segment]]
    source_bytes: int | None = None

    def segments(self) -> Iterator[Segment]:
        """Yield the split's segments from the start."""
        return self.reader()

    def documents(self) -> Iterator[str]:
        """Yield whole documents by joining segments (a whole document is held in memory)."""
        pieces: list[str] = []
        for segment in self.segments():
            pieces.append(segment.text)
            if segment.ends_document:
                yield "".join(pieces)
                pieces = []


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A named corpus and its available splits, keyed by "train", "validation", "test"."""

    name: str
    splits: dict[str, CorpusSplit]

    @property
    def fingerprint(self) -> dict[str, Any]:
        """Corpus name and the fingerprint of each split."""
        return {"corpus": self.name, "splits": {n: s.fingerprint for n, s in self.splits.items()}}


def split_into_pieces(text: str, max_chars: int = PIECE_CHARS) -> Iterator[str]:
    """Cut ``text`` into pieces of at most ``max_chars`` characters at ``whitespace_cut`` points."""
    start = 0
    while len(text) - start > max_chars:
        end = whitespace_cut(text, start, start + max_chars)
        yield text[start:end]
        start = end
    if start < len(text):
        yield text[start:]


def whitespace_cut(text: str, start: int, end: int) -> int:
    """Return where to cut ``text[start:end]``: before the whitespace run of its last newline.

    Without a newline the run of the last space is used, and without either the cut is at
    ``end``. Cutting before a whole whitespace run, right after a visible character, gives
    byte-level BPE the same pre-tokens as the uncut text: GPT-2's pattern splits a
    whitespace run by what follows it, so a run must not be cut in two.
    """
    for separator in ("\n", " "):
        position = text.rfind(separator, start, end)
        if position < 0:
            continue
        while position > start and text[position - 1].isspace():
            position -= 1
        if position > start:
            return position
    return end


def document_segments(pieces: Iterable[str]) -> Iterator[Segment]:
    """Turn the pieces of one document into segments, marking the last as the end.

    A document with no visible character (empty or whitespace only) yields nothing,
    so an empty ``__init__.py`` or a blank record adds no lone end-of-text token.
    """
    leading_space: list[str] = []
    previous: str | None = None
    for piece in pieces:
        if previous is None and (not piece or piece.isspace()):
            leading_space.append(piece)
            continue
        if previous is None:
            yield from (Segment(space, False) for space in leading_space if space)
        else:
            yield Segment(previous, False)
        previous = piece
    if previous is not None:
        yield Segment(previous, True)


def cap_bytes(segments: Iterable[Segment], max_bytes: int | None) -> Iterator[Segment]:
    """Yield segments until ``max_bytes`` bytes of UTF-8 text have passed, then stop.

    The segment that crosses the cap is cut at the last whole character that fits, and
    ends its document there.
    """
    if max_bytes is None:
        yield from segments
        return
    remaining = max_bytes
    for segment in segments:
        encoded_length = len(segment.text.encode("utf-8"))
        if encoded_length < remaining:
            remaining -= encoded_length
            yield segment
            continue
        head = segment.text.encode("utf-8")[:remaining].decode("utf-8", errors="ignore")
        if head:
            yield Segment(head, True)
        return


def detokenize_segments(segments: Iterable[Segment], detokenizer: str | None) -> Iterator[Segment]:
    """Apply the named detokenizer to each segment's text (rules never cross a line end).

    NOTE: a line longer than ``PIECE_CHARS`` is cut at a space, and the line-end rules then
    drop that space. The corpora that have detokenizers use far shorter lines.
    """
    function = get_detokenizer(detokenizer)
    if function is None:
        yield from segments
        return
    for segment in segments:
        yield Segment(function(segment.text), segment.ends_document)
