"""Log services: the last lines of a run's ``run.log``, and following it as it grows."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.launcher import RUN_LOG_NAME
from workbench.services.base import ServiceBase
from workbench.store import Run

FOLLOW_POLL_INTERVAL_S = 0.2
TAIL_BLOCK_BYTES = 64 * 1024


class LogServices(ServiceBase):
    """Reading run logs; mixed into ``Workbench``."""

    def log_path(self, run_id: int) -> Path:
        """Return the path of a run's log; raise WorkbenchError if the run never started."""
        run = self.store.get_run(run_id)
        if run.run_dir is None:
            raise WorkbenchError(f"run {run_id} has no log yet because it never started; see `workbench status`")
        return Path(run.run_dir) / RUN_LOG_NAME

    def tail_log(self, run_id: int, lines: int = 50) -> list[str]:
        """Return the last ``lines`` lines of a run's log, without line breaks."""
        path = self.log_path(run_id)
        if not path.is_file():
            return []
        return _tail(path, lines)

    def follow_log(
        self,
        run_id: int,
        *,
        lines: int = 50,
        poll_interval_s: float = FOLLOW_POLL_INTERVAL_S,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Yield the last ``lines`` lines, then each new line, until the run has ended.

        The iteration ends once the run has a final status and the log has no more data, or
        when ``should_stop`` returns true. A partial last line is held back until it ends.
        """
        path = self.log_path(run_id)
        offset = path.stat().st_size if path.is_file() else 0
        if offset:
            yield from _tail(path, lines, end=offset)
        pending = b""
        while True:
            run_ended = self._ended(run_id)
            chunk = _read_from(path, offset)
            offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace")
            if (run_ended and not chunk) or (should_stop is not None and should_stop()):
                if pending:
                    yield pending.decode("utf-8", errors="replace")
                return
            if not chunk:
                time.sleep(poll_interval_s)

    def _ended(self, run_id: int) -> bool:
        self.reconcile()
        run: Run = self.store.get_run(run_id)
        return not run.status.is_active


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            return file.read()
    except FileNotFoundError:
        return b""


def _tail(path: Path, lines: int, end: int | None = None) -> list[str]:
    """Return the last ``lines`` lines before byte ``end`` (default: the end of the file).

    Blocks are read backwards from ``end`` until enough line breaks are in hand, so a large
    log is never read whole.
    """
    if lines <= 0:
        return []
    with open(path, "rb") as file:
        if end is None:
            end = file.seek(0, os.SEEK_END)
        data = b""
        position = end
        while position > 0 and data.count(b"\n") <= lines:
            position = max(0, position - TAIL_BLOCK_BYTES)
            file.seek(position)
            data = file.read(end - position)
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]
