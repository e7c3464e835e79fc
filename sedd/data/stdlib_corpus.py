"""The default corpus: the Python standard library's own source files.

A Python installation ships its library as source (about 12 MB of human-written code
and docstrings with the exclusions below, measured on CPython 3.11), so runs, tests and
examples work with no download. Some stripped builds keep only ``.pyc`` files, and then
this corpus is unavailable. One ``*.py`` file is one
document, read in sorted order of its path relative to the standard library folder
(``sysconfig.get_paths()["stdlib"]``). Excluded are third-party packages
(``site-packages``, ``dist-packages``) and the test suites (folders ``test``, ``tests``
and ``idle_test``), which are mostly generated fixtures and deliberately broken files.
Everything else stays, including ``idlelib``, ``lib2to3`` and ``turtledemo``.

Files go to validation or test when the SHA-1 of their relative POSIX path falls below
``validation_fraction`` or the sum of both fractions, so a file keeps its split for a
given Python version whatever else changes.
"""

from __future__ import annotations

import os
import platform
import sysconfig
from pathlib import Path

from sedd.data.corpus import Corpus, CorpusSplit
from sedd.data.errors import DataUnavailableError
from sedd.data.hashing import FileHashMemo
from sedd.data.local_corpus import FileSplitReader, summarize_files
from sedd.data.settings import SPLITS, DataSettings

EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test"})


def stdlib_root() -> Path:
    """Return the folder of the running interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def stdlib_files(root: Path | None = None) -> list[tuple[Path, str]]:
    """Return ``(path, relative POSIX path)`` of every included source file, sorted by the latter."""
    root = root or stdlib_root()
    files = []
    for folder, subfolders, names in os.walk(root):
        # Pruning in place stops the walk from entering site-packages, which can hold
        # far more files than the standard library itself.
        subfolders[:] = [name for name in subfolders if name not in EXCLUDED_DIRS]
        for name in names:
            if name.endswith(".py"):
                path = Path(folder, name)
                files.append((path, path.relative_to(root).as_posix()))
    return sorted(files, key=lambda item: item[1])


def build_stdlib_corpus(settings: DataSettings, memo: FileHashMemo) -> Corpus:
    """Build the ``stdlib`` corpus with hash-assigned train, validation and test files."""
    root = stdlib_root()
    files = tuple(stdlib_files(root))
    if not files:
        raise DataUnavailableError(
            f"no Python source files in the standard library folder {root} (this Python "
            "installation ships compiled files only); use another corpus, such as corpus: text "
            "with train_files"
        )
    fractions = (settings.validation_fraction, settings.test_fraction)
    included = {"train": True, "validation": fractions[0] > 0, "test": fractions[1] > 0}
    splits = {}
    for split in SPLITS:
        if not included[split]:
            continue
        reader = FileSplitReader(
            files=files, unit="file", keep=split, fractions=fractions, max_bytes=settings.max_bytes
        )
        own_files = [(path, key) for path, key in files if reader.keeps(key)]
        described = memo.describe_all([path for path, _ in own_files])
        summary = summarize_files(described, [key for _, key in own_files])
        summary.pop("files", None)
        fingerprint = {
            "kind": "stdlib",
            "split": split,
            "python_version": platform.python_version(),
            "root": str(root),
            "excluded_dirs": sorted(EXCLUDED_DIRS),
            **summary,
            "validation_fraction": fractions[0],
            "test_fraction": fractions[1],
            "max_bytes": settings.max_bytes,
        }
        source_bytes = summary["byte_count"]
        if settings.max_bytes is not None:
            source_bytes = min(source_bytes, settings.max_bytes)
        splits[split] = CorpusSplit("stdlib", split, fingerprint, reader, source_bytes)
    return Corpus(name="stdlib", splits=splits)
