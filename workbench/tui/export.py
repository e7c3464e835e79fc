"""Writing the comparison table to CSV and Markdown files, each replaced atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from workbench.analysis.compare import ComparisonTable
from workbench.errors import WorkbenchError


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, fsync and rename.

    A reader sees the old file or the new one, never a half-written one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export_table(table: ComparisonTable, stem: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.md``. Return both paths.

    Raises ``WorkbenchError`` naming the folder when it cannot be created or written.
    """
    stem = Path(stem).expanduser()
    csv_path = stem.with_name(stem.name + ".csv")
    markdown_path = stem.with_name(stem.name + ".md")
    try:
        write_atomically(csv_path, table.to_csv())
        write_atomically(markdown_path, table.to_markdown())
    except OSError as error:
        raise WorkbenchError(f"cannot write the comparison to {stem.parent}: {error.strerror}; choose another folder") from error
    return csv_path, markdown_path
