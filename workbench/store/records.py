"""Writing what a run produces: metrics, samples, evaluation results and heartbeats."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from workbench.errors import RunNotFound
from workbench.store.models import EvalResult, Metric, Run, Sample, utc_now


class MetricRow(NamedTuple):
    """One metric value; ``wall_time`` is seconds since the epoch (``time.time()``)."""

    step: int
    name: str
    value: float
    wall_time: float


class _Sessions(Protocol):
    def read(self) -> AbstractContextManager[Session]: ...
    def write(self) -> AbstractContextManager[Session]: ...


class RecordsMixin:
    """Store methods that append run records; mixed into ``Store``."""

    def add_metrics(self: _Sessions, run_id: int, rows: Iterable[MetricRow | Sequence[Any]]) -> int:
        """Insert metric rows ``(step, name, value, wall_time)`` in one statement; return the count."""
        values = [
            {"run_id": run_id, "step": int(step), "name": str(name), "value": float(value), "wall_time": float(wall_time)}
            for step, name, value, wall_time in rows
        ]
        if not values:
            return 0
        with self.write() as session:
            _require_run(session, run_id)
            # An executemany of one INSERT: far faster than adding ORM objects one by one.
            session.execute(insert(Metric), values)
        return len(values)

    def log_metrics(self, run_id: int, step: int, metrics: dict[str, float]) -> int:
        """Insert the metrics of one step, stamped with the current wall time."""
        now = time.time()
        return self.add_metrics(run_id, [MetricRow(step, name, value, now) for name, value in metrics.items()])

    def add_samples(
        self: _Sessions,
        run_id: int,
        step: int,
        kind: str,
        texts: Sequence[str],
        prompts: Sequence[str | None] | None = None,
    ) -> list[Sample]:
        """Insert decoded texts of one kind (``snapshot``, ``sample``, ``infill``) at ``step``."""
        if prompts is not None and len(prompts) != len(texts):
            raise ValueError(f"got {len(prompts)} prompts for {len(texts)} texts; pass one prompt per text or None")
        prompts = prompts if prompts is not None else [None] * len(texts)
        with self.write() as session:
            _require_run(session, run_id)
            samples = [
                Sample(run_id=run_id, step=step, kind=kind, prompt=prompt, text=text)
                for text, prompt in zip(texts, prompts)
            ]
            session.add_all(samples)
        return samples

    def add_eval_result(
        self: _Sessions, run_id: int, name: str, value: float, details: dict[str, Any] | None = None
    ) -> EvalResult:
        """Insert a named evaluation result with optional JSON-serialisable details."""
        with self.write() as session:
            _require_run(session, run_id)
            result = EvalResult(run_id=run_id, name=name, value=float(value), details=dict(details or {}))
            session.add(result)
        return result

    def record_heartbeat(self: _Sessions, run_id: int, step: int | None = None, at: datetime | None = None) -> None:
        """Set the run's heartbeat time and, when given, its last step."""
        fields: dict[str, Any] = {"heartbeat_at": at or utc_now()}
        if step is not None:
            fields["last_step"] = step
        with self.write() as session:
            result = session.execute(update(Run).where(Run.id == run_id).values(**fields))
            if result.rowcount == 0:
                raise RunNotFound(run_id)


def _require_run(session: Session, run_id: int) -> None:
    # The foreign key would reject the rows too, but with a driver message instead of the id.
    if session.scalar(select(Run.id).where(Run.id == run_id)) is None:
        raise RunNotFound(run_id)
