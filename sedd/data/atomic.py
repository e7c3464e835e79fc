"""Crash-safe file writes: write a temporary file beside the target, fsync, then rename.

``os.replace`` is atomic on POSIX and Windows when both paths are on one file system, so
a reader sees either the old file or the complete new one, never a partial write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_binary_writer(target: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``target`` only when the block exits without error.

    On an exception the temporary file is removed and ``target`` is left untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(target.parent)


def write_text_atomic(target: Path, text: str) -> None:
    """Replace ``target`` with ``text`` (UTF-8) atomically."""
    with atomic_binary_writer(target) as file:
        file.write(text.encode("utf-8"))


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable. Windows cannot open directories, hence the guard.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
