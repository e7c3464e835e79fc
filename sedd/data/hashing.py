"""Stable hashes: split assignment by key, content hashes of files, and cache keys.

Every function here returns the same value on every machine and Python run, because it
hashes explicit bytes with SHA-1 or SHA-256 and never uses Python's salted ``hash()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sedd.data.atomic import write_text_atomic

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20
# Hashing files from this size on takes long enough to be worth a log line.
_LOGGED_HASH_BYTES = 1 << 26
# Fingerprint keys that describe where or when data was found, not what it contains.
# Cache keys ignore them so a moved or touched corpus with the same content still hits.
LOCATION_KEYS = frozenset({"path", "root", "mtime"})


def stable_fraction(key: str) -> float:
    """Map ``key`` to a number in [0, 1) from the first 8 bytes of its SHA-1."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(key: str, validation_fraction: float, test_fraction: float) -> str:
    """Return "validation", "test" or "train" for the document ``key``.

    A document goes to validation when its stable fraction is below
    ``validation_fraction``, to test when it is below the sum of both, else to train.
    """
    fraction = stable_fraction(key)
    if fraction < validation_fraction:
        return "validation"
    if fraction < validation_fraction + test_fraction:
        return "test"
    return "train"


def fingerprint_digest(fingerprint: Any, length: int = 16) -> str:
    """Return a hex digest of ``fingerprint`` (JSON-like data) without its location keys."""
    canonical = json.dumps(_without_location(fingerprint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


def _without_location(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_location(v) for k, v in value.items() if k not in LOCATION_KEYS}
    if isinstance(value, (list, tuple)):
        return [_without_location(item) for item in value]
    return value


def hash_file(path: Path) -> str:
    """Return the SHA-1 of a file's bytes, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        while chunk := file.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileHashMemo:
    """Content hashes of files, remembered on disk by (path, size, mtime in ns).

    Hashing a multi-gigabyte corpus takes seconds, so the second run reuses the hash while
    size and modification time are unchanged, the same trade-off git's index makes.
    NOTE: an edit that keeps both the size and the nanosecond mtime goes unnoticed.
    """

    def __init__(self, memo_path: Path):
        self.memo_path = memo_path
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        if memo_path.is_file():
            try:
                self._entries = json.loads(memo_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                logger.warning("ignoring unreadable file-hash memo %s: %s", memo_path, error)

    def describe(self, path: Path) -> dict[str, Any]:
        """Return ``{"path", "bytes", "mtime", "sha1"}`` for one file, hashing it if needed."""
        resolved = path.resolve()
        stat = resolved.stat()
        key = str(resolved)
        entry = self._entries.get(key)
        if entry is None or entry["bytes"] != stat.st_size or entry["mtime_ns"] != stat.st_mtime_ns:
            log = logger.info if stat.st_size >= _LOGGED_HASH_BYTES else logger.debug
            log("hashing %s (%.1f MB) for the cache key", resolved, stat.st_size / 1e6)
            entry = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha1": hash_file(resolved)}
            self._entries[key] = entry
            self._dirty = True
        return {
            "path": key,
            "bytes": entry["bytes"],
            "mtime": entry["mtime_ns"] / 1e9,
            "sha1": entry["sha1"],
        }

    def describe_all(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        """Describe each path in order, then save the memo once."""
        described = [self.describe(path) for path in paths]
        self.save()
        return described

    def save(self) -> None:
        """Write the memo if it changed; a failure only costs re-hashing next time."""
        if not self._dirty:
            return
        try:
            self.memo_path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.memo_path, json.dumps(self._entries))
            self._dirty = False
        except OSError as error:
            logger.warning("could not save file-hash memo %s: %s", self.memo_path, error)


def memo_for_cache(cache_dir: Path) -> FileHashMemo:
    """Return the file-hash memo kept in ``cache_dir``."""
    return FileHashMemo(cache_dir / "file-hashes.json")

