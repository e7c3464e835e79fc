"""Read documents out of local text and JSON-lines files, streaming in bounded pieces.

Document units:

- ``file``: the whole file is one document.
- ``blank_lines``: paragraphs separated by one or more blank (whitespace-only) lines.
- ``lines``: every non-blank line is a document (PTB and lm1b store one sentence a line).
- ``jsonl``: every non-blank line is a JSON object whose ``field`` is the document.

Readers yield ``(document_key, Segment)``. The key is ``"<file key>#<index>"`` (the index
counts the file's documents from 0) or the file key alone for the ``file`` unit, so a
document's hold-out assignment depends only on its file's relative path and its position.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path

from sedd.data.corpus import PIECE_CHARS, Segment, document_segments, split_into_pieces, whitespace_cut
from sedd.data.errors import DataConfigError

KeyedSegment = tuple[str, Segment]

_READ_BYTES = 1 << 23
# A newline followed by one or more whitespace-only lines ends a paragraph.
_BLANK_LINE_RUN = re.compile(r"\n(?:[^\S\n]*\n)+")
_NEWLINE = re.compile(r"\n")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[^\S\n]*\n)+")
_TRAILING_BLANK_LINES = re.compile(r"(?:\n[^\S\n]*)+\Z")


def read_pieces(path: Path, start: int = 0, end: int | None = None) -> Iterator[str]:
    """Yield the text of bytes ``[start, end)`` of ``path`` in pieces cut at whitespace.

    Pieces end where ``whitespace_cut`` puts the cut, so that words stay whole.
    Invalid UTF-8 becomes U+FFFD instead of failing, because one bad byte in a large
    corpus should not stop a run. ``start`` must be at a character boundary.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    with open(path, "rb") as file:
        file.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            size = _READ_BYTES if remaining is None else min(_READ_BYTES, remaining)
            block = file.read(size)
            if not block:
                break
            if remaining is not None:
                remaining -= len(block)
            text = carry + decoder.decode(block)
            cut = whitespace_cut(text, 0, len(text))
            carry = text[cut:]
            if cut:
                yield text[:cut]
    carry += decoder.decode(b"", final=True)
    if carry:
        yield carry


def file_document(path: Path, key: str, start: int = 0, end: int | None = None) -> Iterator[KeyedSegment]:
    """Yield bytes ``[start, end)`` of one file as a single document."""
    for segment in document_segments(read_pieces(path, start, end)):
        yield key, segment


def separated_documents(path: Path, key: str, unit: str) -> Iterator[KeyedSegment]:
    """Yield the paragraphs (``blank_lines``) or lines (``lines``) of one file as documents.

    A document longer than ``PIECE_CHARS`` is emitted in several segments, so one huge
    paragraph cannot exhaust memory.
    """
    separator = _BLANK_LINE_RUN if unit == "blank_lines" else _NEWLINE
    index = 0
    buffer = ""
    continued = False  # True once the buffered document's head was already emitted
    for piece in read_pieces(path):
        parts = separator.split(buffer + piece)
        buffer = parts.pop()
        for part in parts:
            if continued:
                yield f"{key}#{index}", Segment(part, True)
                index += 1
                continued = False
                continue
            part = _LEADING_BLANK_LINES.sub("", part)
            if part and not part.isspace():
                yield f"{key}#{index}", Segment(part, True)
                index += 1
        cut = _overflow_cut(buffer)
        if cut:
            head = buffer[:cut] if continued else _LEADING_BLANK_LINES.sub("", buffer[:cut])
            yield f"{key}#{index}", Segment(head, False)
            buffer = buffer[cut:]
            continued = True
    if not continued:
        buffer = _LEADING_BLANK_LINES.sub("", buffer)
    buffer = _TRAILING_BLANK_LINES.sub("", buffer)
    if continued or (buffer and not buffer.isspace()):
        yield f"{key}#{index}", Segment(buffer, True)


def _overflow_cut(buffer: str) -> int:
    """Return where to cut an unfinished document longer than ``PIECE_CHARS``, or 0.

    The cut goes before the whitespace that precedes the last visible line, so a
    blank-line run that starts at the end of the buffer is still whole when the next piece
    arrives.
    """
    if len(buffer) <= PIECE_CHARS:
        return 0
    end = len(buffer.rstrip())
    return whitespace_cut(buffer, 0, end) if end else 0


def jsonl_documents(path: Path, key: str, field: str) -> Iterator[KeyedSegment]:
    """Yield ``record[field]`` of each JSON line of one file as a document.

    Raises ``DataConfigError`` naming the file and line for invalid JSON, a missing
    field or a non-string value.
    """
    index = 0
    with open(path, encoding="utf-8", errors="replace") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            text = _jsonl_text(line, field, f"{path}:{line_number}")
            for segment in document_segments(split_into_pieces(text)):
                yield f"{key}#{index}", segment
            index += 1


def _jsonl_text(line: str, field: str, where: str) -> str:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise DataConfigError(f"invalid JSON at {where}: {error}") from None
    if not isinstance(record, dict) or field not in record:
        present = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise DataConfigError(
            f"JSON record at {where} has no field {field!r} (found {present}); "
            "set data.jsonl_field to the field that contains the text"
        )
    text = record[field]
    if not isinstance(text, str):
        raise DataConfigError(
            f"field {field!r} at {where} is a {type(text).__name__}, expected a string"
        )
    return text


def keyed_documents(path: Path, key: str, unit: str, field: str) -> Iterator[KeyedSegment]:
    """Yield the documents of one file for any unit (see the module docstring)."""
    if unit == "file":
        return file_document(path, key)
    if unit == "jsonl":
        return jsonl_documents(path, key, field)
    return separated_documents(path, key, unit)


def cut_offset(path: Path, target: int) -> int:
    """Return the first offset at or after ``target`` that follows a space or newline.

    Cutting there keeps the cut on a UTF-8 character boundary (both are single bytes) and
    between words. Returns the file size if no such byte follows ``target``.
    """
    with open(path, "rb") as file:
        file.seek(target)
        offset = target
        while block := file.read(1 << 16):
            positions = [p for p in (block.find(b"\n"), block.find(b" ")) if p >= 0]
            if positions:
                return offset + min(positions) + 1
            offset += len(block)
    return offset
