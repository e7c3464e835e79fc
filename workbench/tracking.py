"""``StoreTracker``: the trainer's ``Tracker`` protocol written to the experiment store.

The trainer calls it on rank 0 only. Metric rows are buffered and inserted in one statement
per flush, at most ``flush_interval_s`` apart (or sooner once ``max_buffered_rows`` pile up),
so a trainer that logs every step does not pay a transaction per call. Every other call
flushes first, so the store never shows a sample, checkpoint or final status ahead of the
metrics before it.

A ``HeartbeatThread`` stamps the run's heartbeat every ``HEARTBEAT_INTERVAL_S`` seconds while
the worker lives. It keeps beating during data preparation and long evaluations, when the
trainer does not call the tracker. Reconciliation reads that time for runs on other hosts.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from workbench.store import MetricRow, RunStatus, Store
from workbench.store.models import utc_now

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 30.0
FINAL_STATUSES = {"completed", "stopped", "diverged", "failed"}


class StoreTracker:
    """Writes one run's metrics, samples, heartbeat, checkpoints and status to a store."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        *,
        flush_interval_s: float = 1.0,
        max_buffered_rows: int = 500,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.flush_interval_s = flush_interval_s
        self.max_buffered_rows = max_buffered_rows
        self._buffer: list[MetricRow] = []
        self._last_flush = time.monotonic()
        self._last_step: int | None = None
        self._skipped_nan: dict[str, int] = {}

    def run_started(self, info: dict[str, Any]) -> None:
        """Mark the run running and store the trainer's start-up facts (parameters, devices, ...)."""
        now = utc_now()
        run = self.store.get_run(self.run_id)
        self.store.update_run(
            self.run_id,
            status=RunStatus.RUNNING,
            info=_json_safe(info),
            started_at=run.started_at or now,
            heartbeat_at=now,
        )

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        now = time.time()
        for name, value in metrics.items():
            value = float(value)
            if math.isnan(value):
                # SQLite stores NaN as NULL, which the NOT NULL value column rejects.
                self._note_nan(name, step)
                continue
            self._buffer.append(MetricRow(step, name, value, now))
        self._last_step = step
        if len(self._buffer) >= self.max_buffered_rows or time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def log_samples(
        self, step: int, kind: str, texts: list[str], prompts: list[str | None] | None = None
    ) -> None:
        self.flush()
        self.store.add_samples(self.run_id, step, kind, texts, prompts)

    def heartbeat(self, step: int) -> None:
        self._last_step = max(step, self._last_step or 0)
        self.flush()

    def checkpoint_saved(self, step: int, path: str, is_best: bool) -> None:
        self.flush()
        fields: dict[str, Any] = {"checkpoint_path": str(path), "last_step": step}
        if is_best:
            fields["best_checkpoint_path"] = str(path)
        self.store.update_run(self.run_id, **fields)

    def run_finished(self, status: str, step: int, message: str | None = None) -> None:
        """Record the final status the trainer reports: completed, stopped, diverged or failed."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"unknown final status {status!r}; expected one of {sorted(FINAL_STATUSES)}")
        self._last_step = step
        self.flush()
        self.store.finish_run(self.run_id, RunStatus(status), message=message)

    def flush(self) -> None:
        """Insert the buffered metric rows and stamp the heartbeat and last step."""
        rows, self._buffer = self._buffer, []
        if rows:
            self.store.add_metrics(self.run_id, rows)
        self.store.record_heartbeat(self.run_id, self._last_step)
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        for name, count in self._skipped_nan.items():
            logger.warning("run %d: skipped %d NaN values of metric %s", self.run_id, count, name)

    def _note_nan(self, name: str, step: int) -> None:
        if name not in self._skipped_nan:
            logger.warning("run %d: metric %s is NaN at step %d; NaN values are not stored", self.run_id, name, step)
        self._skipped_nan[name] = self._skipped_nan.get(name, 0) + 1


class HeartbeatThread(threading.Thread):
    """Daemon thread that stamps a run's heartbeat every ``interval_s`` seconds until stopped."""

    def __init__(self, store: Store, run_id: int, interval_s: float = HEARTBEAT_INTERVAL_S) -> None:
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.store = store
        self.run_id = run_id
        self.interval_s = interval_s
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self.store.record_heartbeat(self.run_id)
            except SQLAlchemyError as error:
                # A busy or briefly unreachable database must not end the run; the next beat retries.
                logger.warning("run %d: heartbeat failed, retrying in %.0f s: %s", self.run_id, self.interval_s, error)

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=self.interval_s)


def _json_safe(value: Any) -> Any:
    # Start-up facts may hold torch dtypes, devices or paths; their str() is what a reader wants.
    return json.loads(json.dumps(value, default=str))
