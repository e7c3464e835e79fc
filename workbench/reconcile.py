"""Reconciliation: runs the store lists as active whose process is gone get a final status.

A worker reports its own final status, but a process killed with SIGKILL, by the OOM killer or
by a reboot reports nothing. ``reconcile_runs`` finds such runs so that no run stays
``running`` forever:

- a run on this host whose pid is gone, or whose pid now belongs to a process with another
  start time (a reused pid), becomes ``failed`` when its exit code is known and ``lost``
  otherwise. The exit code is known when the launcher in this process started the run, or
  when the worker recorded one;
- a run on another host cannot be inspected, so it becomes ``lost`` when its heartbeat is
  older than ``stale_after_s``;
- a run still ``queued`` without a process for ``stale_after_s`` (its launcher died before
  starting it) becomes ``lost``.

The command line calls it on every ``status`` and ``list``, and the terminal UI on refresh.
"""

from __future__ import annotations

import enum
import logging
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

import psutil

from workbench.store import ACTIVE_STATUSES, Run, RunStatus, Store
from workbench.store.models import utc_now

logger = logging.getLogger(__name__)

# A worker beats every HEARTBEAT_INTERVAL_S (see workbench.tracking); ten missed beats mean
# the run on another host is gone.
DEFAULT_STALE_AFTER_S = 300.0

# psutil derives create_time from boot time and clock ticks, so two reads of one process can
# differ by a few milliseconds. A process that reuses a pid starts at least this much later.
START_TIME_TOLERANCE_S = 0.5


class ProcessState(enum.Enum):
    ALIVE = "alive"
    GONE = "gone"
    REUSED = "reused"


def process_state(pid: int, started_at: float | None) -> ProcessState:
    """Return whether ``pid`` is still the process that started at ``started_at``.

    A zombie (exited, not yet reaped by its parent) counts as gone.
    """
    try:
        process = psutil.Process(pid)
        if started_at is not None and abs(process.create_time() - started_at) > START_TIME_TOLERANCE_S:
            return ProcessState.REUSED
        if process.status() == psutil.STATUS_ZOMBIE:
            return ProcessState.GONE
    except psutil.NoSuchProcess:
        return ProcessState.GONE
    return ProcessState.ALIVE


def this_host() -> str:
    return socket.gethostname()


def reconcile_runs(
    store: Store,
    *,
    exit_code_of: Callable[[int], int | None] | None = None,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    host: str | None = None,
    now: datetime | None = None,
) -> list[Run]:
    """Give a final status to every active run whose process is gone; return the changed runs.

    Args:
        exit_code_of: returns the exit code of a run's process when the caller started that process
            (``Launcher.exit_code``), else ``None``.
        stale_after_s: heartbeat age in seconds after which a run on another host is lost.
        host: this host's name; defaults to ``socket.gethostname()``.
    """
    host = host or this_host()
    now = now or utc_now()
    changed = []
    for run in store.list_runs(statuses=ACTIVE_STATUSES):
        verdict = _judge(run, host, now, timedelta(seconds=stale_after_s), exit_code_of)
        if verdict is None:
            continue
        status, message, exit_code = verdict
        finished = store.finish_run(run.id, status, message=message, exit_code=exit_code, only_if_active=True)
        if finished is not None:
            logger.warning("run %d marked %s: %s", run.id, status.value, message)
            changed.append(finished)
    return changed


def _judge(
    run: Run,
    host: str,
    now: datetime,
    stale_after: timedelta,
    exit_code_of: Callable[[int], int | None] | None,
) -> tuple[RunStatus, str, int | None] | None:
    if run.pid is None or run.host is None:
        if now - run.created_at > stale_after:
            return RunStatus.LOST, "the run was queued but its process never started", None
        return None

    if run.host != host:
        last_sign = run.heartbeat_at or run.started_at or run.created_at
        age = now - last_sign
        if age > stale_after:
            return RunStatus.LOST, f"no heartbeat from host {run.host} for {age.total_seconds():.0f} s", None
        return None

    state = process_state(run.pid, run.process_started_at)
    if state is ProcessState.ALIVE:
        return None
    exit_code = exit_code_of(run.id) if exit_code_of is not None else None
    if exit_code is None:
        exit_code = run.exit_code
    gone = "was replaced by another process (pid reused)" if state is ProcessState.REUSED else "is gone"
    if exit_code is None:
        return RunStatus.LOST, f"process {run.pid} {gone} and its exit code is unknown", None
    return (
        RunStatus.FAILED,
        f"process {run.pid} exited with code {exit_code} without reporting a final status",
        exit_code,
    )
