"""Read queries the command line and the terminal UI share: overviews, curves, samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from workbench.store.models import EvalResult, Experiment, Metric, Run, RunStatus, Sample


@dataclass(frozen=True)
class ExperimentSummary:
    """An experiment with the state of its latest run; run fields are ``None`` without runs.

    ``best_val_loss`` and ``last_val_loss`` are in nats per token, ``tokens_per_sec`` is the
    last logged training throughput.
    """

    exp_id: str
    tags: list[Any]
    notes: str
    parent_exp_id: str | None
    created_at: datetime
    updated_at: datetime
    run_count: int
    run_id: int | None = None
    status: RunStatus | None = None
    last_step: int | None = None
    total_steps: int | None = None
    best_val_loss: float | None = None
    last_val_loss: float | None = None
    tokens_per_sec: float | None = None
    devices: list[Any] | None = None
    host: str | None = None
    heartbeat_at: datetime | None = None


@dataclass(frozen=True)
class MetricStats:
    """One metric of one run: minimum, maximum and the most recently logged value."""

    minimum: float
    maximum: float
    last: float


class _Sessions(Protocol):
    def read(self) -> AbstractContextManager[Session]: ...


def _last_value(run_id: Any, name: str) -> Any:
    return (
        select(Metric.value)
        .where(Metric.run_id == run_id, Metric.name == name)
        .order_by(Metric.step.desc(), Metric.id.desc())
        .limit(1)
        .scalar_subquery()
    )


class QueriesMixin:
    """Store methods that read overviews and run records; mixed into ``Store``."""

    def experiment_summaries(self: _Sessions) -> list[ExperimentSummary]:
        """Return every experiment with its latest run's status, step, losses and devices."""
        latest = (
            select(Run.experiment_id, func.max(Run.id).label("run_id"), func.count(Run.id).label("run_count"))
            .group_by(Run.experiment_id)
            .subquery()
        )
        parent = aliased(Experiment)
        best_val = (
            select(func.min(Metric.value))
            .where(Metric.run_id == Run.id, Metric.name == "val_loss")
            .scalar_subquery()
        )
        query = (
            select(
                Experiment, parent.exp_id, latest.c.run_count, Run,
                best_val, _last_value(Run.id, "val_loss"), _last_value(Run.id, "tokens_per_sec"),
            )
            .outerjoin(parent, Experiment.parent_id == parent.id)
            .outerjoin(latest, latest.c.experiment_id == Experiment.id)
            .outerjoin(Run, Run.id == latest.c.run_id)
            .order_by(Experiment.id)
        )  # fmt: skip
        with self.read() as session:
            rows = session.execute(query).all()
        return [_summary(*row) for row in rows]

    def metric_curve(
        self: _Sessions, run_id: int, name: str, max_points: int | None = None, min_step: int | None = None
    ) -> list[tuple[int, float]]:
        """Return ``(step, value)`` pairs of one metric in step order.

        With ``min_step``, only points at that step or later are read: a poller that passes
        one more than its last cached step reads only the new points, and a zoomed plot reads
        only its window. The index on ``(run_id, name, step)`` makes that cost grow with the
        points returned, not with the length of the run.

        With ``max_points``, a longer curve (or window) is thinned to every k-th point (k chosen
        so at most ``max_points`` remain, always keeping the first and the last), so plotted
        values are real logged values rather than averages.
        """
        if max_points is not None and max_points < 2:
            raise ValueError(f"max_points must be at least 2 (first and last point), got {max_points}")
        where = [Metric.run_id == run_id, Metric.name == name]
        if min_step is not None:
            where.append(Metric.step >= min_step)
        with self.read() as session:
            count = session.scalar(select(func.count()).select_from(Metric).where(*where)) or 0
            if max_points is None or count <= max_points:
                rows = session.execute(
                    select(Metric.step, Metric.value).where(*where).order_by(Metric.step, Metric.id)
                ).all()
                return [(step, value) for step, value in rows]

            # k - 1 strides over the first count - 1 points leave room for the last point.
            stride = math.ceil((count - 1) / (max_points - 1))
            position = func.row_number().over(order_by=(Metric.step, Metric.id)).label("position")
            numbered = select(Metric.step, Metric.value, position).where(*where).subquery()
            rows = session.execute(
                select(numbered.c.step, numbered.c.value)
                .where(((numbered.c.position - 1) % stride == 0) | (numbered.c.position == count))
                .order_by(numbered.c.position)
            ).all()
        return [(step, value) for step, value in rows]

    def metric_names(self: _Sessions, run_id: int) -> list[str]:
        """Return the names of the metrics a run has logged, sorted."""
        with self.read() as session:
            return list(session.scalars(select(Metric.name).where(Metric.run_id == run_id).distinct().order_by(Metric.name)))

    def last_metrics(self: _Sessions, run_id: int, names: Sequence[str] | None = None) -> dict[str, tuple[int, float]]:
        """Return each metric's latest ``(step, value)`` for a run.

        Without ``names`` every metric of the run is scanned once. With ``names`` each one is
        a single lookup at the end of its index range, so the cost stays flat as the run grows.
        Names the run never logged are left out of the result.
        """
        if names is not None:
            return _last_of_names(self, run_id, names)
        latest = (
            select(Metric.name, func.max(Metric.id).label("id"))
            .where(Metric.run_id == run_id)
            .group_by(Metric.name)
            .subquery()
        )
        with self.read() as session:
            rows = session.execute(
                select(Metric.name, Metric.step, Metric.value).join(latest, latest.c.id == Metric.id)
            ).all()
        return {name: (step, value) for name, step, value in rows}

    def metric_stats(self: _Sessions, run_id: int) -> dict[str, MetricStats]:
        """Return the minimum, maximum and last logged value of every metric of a run.

        The extremes are aggregated in SQL, and "last" is the row with the highest id of each
        name, so a run's history never reaches Python.
        """
        extremes = (
            select(Metric.name, func.min(Metric.value), func.max(Metric.value), func.max(Metric.id))
            .where(Metric.run_id == run_id)
            .group_by(Metric.name)
        )
        with self.read() as session:
            rows = session.execute(extremes).all()
            last_ids = [row[3] for row in rows]
            last_values = dict(session.execute(select(Metric.id, Metric.value).where(Metric.id.in_(last_ids))).all())
        return {name: MetricStats(minimum, maximum, last_values[last_id]) for name, minimum, maximum, last_id in rows}

    def list_samples(
        self: _Sessions, run_id: int, kind: str | None = None, limit: int | None = None
    ) -> list[Sample]:
        """Return a run's samples, newest first, optionally of one kind and at most ``limit``."""
        query = select(Sample).where(Sample.run_id == run_id).order_by(Sample.step.desc(), Sample.id.desc())
        if kind is not None:
            query = query.where(Sample.kind == kind)
        if limit is not None:
            query = query.limit(limit)
        with self.read() as session:
            return list(session.scalars(query))

    def list_eval_results(self: _Sessions, run_id: int) -> list[EvalResult]:
        """Return a run's evaluation results in insertion order."""
        with self.read() as session:
            return list(session.scalars(select(EvalResult).where(EvalResult.run_id == run_id).order_by(EvalResult.id)))


def _last_of_names(store: _Sessions, run_id: int, names: Sequence[str]) -> dict[str, tuple[int, float]]:
    latest: dict[str, tuple[int, float]] = {}
    with store.read() as session:
        for name in names:
            row = session.execute(
                select(Metric.step, Metric.value)
                .where(Metric.run_id == run_id, Metric.name == name)
                .order_by(Metric.step.desc(), Metric.id.desc())
                .limit(1)
            ).first()
            if row is not None:
                latest[name] = (row[0], row[1])
    return latest


def _summary(
    experiment: Experiment,
    parent_exp_id: str | None,
    run_count: int | None,
    run: Run | None,
    best_val_loss: float | None,
    last_val_loss: float | None,
    tokens_per_sec: float | None,
) -> ExperimentSummary:
    base = dict(
        exp_id=experiment.exp_id, tags=experiment.tags, notes=experiment.notes, parent_exp_id=parent_exp_id,
        created_at=experiment.created_at, updated_at=experiment.updated_at, run_count=run_count or 0,
    )  # fmt: skip
    if run is None:
        return ExperimentSummary(**base)
    return ExperimentSummary(
        **base, run_id=run.id, status=run.status, last_step=run.last_step, total_steps=run.total_steps,
        best_val_loss=best_val_loss, last_val_loss=last_val_loss, tokens_per_sec=tokens_per_sec,
        devices=run.devices, host=run.host, heartbeat_at=run.heartbeat_at,
    )  # fmt: skip
