"""Progress reporting for long analysis steps, independent of how it is shown.

Each long step opens a task with a description and a total, then calls the returned
function with ``(done, total)``. That is the ``ProgressFn`` signature of ``sedd.sampling``
and ``sedd.likelihood``, so the function can be passed to them directly. The command line
shows rich progress bars (``RichProgress``); the default only logs each task's start and end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


class Progress:
    """Logs the start and the duration of each task; subclasses draw bars."""

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[ProgressFn]:
        """Open a task of ``total`` units and yield its ``(done, total)`` update function."""
        started = time.perf_counter()
        logger.info("%s: started (%d units)", description, total)
        yield self._update_function(description, total)
        logger.info("%s: done in %.1f s", description, time.perf_counter() - started)

    def _update_function(self, description: str, total: int) -> ProgressFn:
        return lambda done, total: None


class RichProgress(Progress):
    """Draws one ``rich`` progress bar per task on stderr while the task runs."""

    def __init__(self, console: Any | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as Bars

        self._bars = Bars(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=console or Console(stderr=True), transient=False,
        )  # fmt: skip

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bars.stop()

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[ProgressFn]:
        task_id = self._bars.add_task(description, total=total)
        latest_total = [total]

        def update(done: int, new_total: int) -> None:
            latest_total[0] = new_total
            self._bars.update(task_id, completed=done, total=new_total)

        with super().task(description, total):
            yield update
        # A task may end early (a skipped corpus); show it as finished rather than stalled.
        self._bars.update(task_id, completed=latest_total[0])
