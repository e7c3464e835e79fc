"""SQLAlchemy models of the experiment store: experiments, runs and what runs record.

Times are stored as naive UTC in the database and returned as timezone-aware UTC datetimes.
Deleting an experiment deletes its runs, and deleting a run deletes its metrics, samples and
evaluation results (``ON DELETE CASCADE``, so SQLite needs ``PRAGMA foreign_keys=ON``, which
the engine sets on every connection).
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, DateTime, Enum, ForeignKey, Index, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC and read back as aware UTC.

    SQLite has no time zone type, so an aware datetime would come back naive and compare
    wrongly with ``utc_now()``. This type makes every value aware on the way out.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class RunStatus(str, enum.Enum):
    """Lifecycle of a run. ``queued`` and ``running`` are active; the others are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    DIVERGED = "diverged"
    LOST = "lost"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class SchemaVersion(Base):
    """One applied schema migration; the highest ``version`` is the store's schema version."""

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    applied_at: Mapped[datetime] = mapped_column(default=utc_now)

    def __repr__(self) -> str:
        return f"SchemaVersion(version={self.version}, name={self.name!r})"


class Experiment(Base):
    """A named experiment: its config text and the runs launched from it."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    exp_id: Mapped[str] = mapped_column(String(64), unique=True)
    config_text: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    parent_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    parent: Mapped[Optional[Experiment]] = relationship(
        back_populates="clones", remote_side="Experiment.id"
    )
    clones: Mapped[list[Experiment]] = relationship(back_populates="parent")
    runs: Mapped[list[Run]] = relationship(
        back_populates="experiment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Run.id",
    )

    def __repr__(self) -> str:
        return f"Experiment(id={self.id}, exp_id={self.exp_id!r})"


class Run(Base):
    """One training process (or ``torchrun`` group) of an experiment.

    ``config_text`` and ``overrides`` are copied at launch, so later edits of the experiment's
    config do not change what a run trained with. ``devices`` lists the GPU indices given to
    the run (empty for CPU). ``process_started_at`` is psutil's ``create_time`` of ``pid`` in
    seconds since the epoch; it distinguishes the run's own process from a later one that
    reuses the pid.
    """

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    status: Mapped[RunStatus] = mapped_column(
        Enum(
            RunStatus,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="run_status",
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        default=RunStatus.QUEUED,
    )
    config_text: Mapped[str] = mapped_column(Text)
    overrides: Mapped[list[Any]] = mapped_column(default=list)
    resumed_from_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL")
    )
    resume_checkpoint: Mapped[Optional[str]] = mapped_column(Text)
    run_dir: Mapped[Optional[str]] = mapped_column(Text)
    host: Mapped[Optional[str]] = mapped_column(String(255))
    devices: Mapped[list[Any]] = mapped_column(default=list)
    pid: Mapped[Optional[int]]
    process_started_at: Mapped[Optional[float]]
    exit_code: Mapped[Optional[int]]
    heartbeat_at: Mapped[Optional[datetime]]
    last_step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[Optional[int]]
    checkpoint_path: Mapped[Optional[str]] = mapped_column(Text)
    best_checkpoint_path: Mapped[Optional[str]] = mapped_column(Text)
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    started_at: Mapped[Optional[datetime]]
    ended_at: Mapped[Optional[datetime]]

    experiment: Mapped[Experiment] = relationship(back_populates="runs")
    resumed_from: Mapped[Optional[Run]] = relationship(back_populates="resumed_by", remote_side="Run.id")
    resumed_by: Mapped[list[Run]] = relationship(back_populates="resumed_from")
    metrics: Mapped[list[Metric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    samples: Mapped[list[Sample]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )
    eval_results: Mapped[list[EvalResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Run(id={self.id}, experiment_id={self.experiment_id}, status={self.status.value})"


class Metric(Base):
    """One scalar a run logged at a step, such as ``train_loss`` or ``val_bpt``."""

    __tablename__ = "metrics"
    # Curve reads filter on (run_id, name) and order by step, so this index serves them alone.
    __table_args__ = (Index("ix_metrics_run_name_step", "run_id", "name", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float]
    wall_time: Mapped[float]

    run: Mapped[Run] = relationship(back_populates="metrics")

    def __repr__(self) -> str:
        return f"Metric(run_id={self.run_id}, step={self.step}, {self.name}={self.value!r})"


class Sample(Base):
    """A decoded text a run generated: a training snapshot, a sample or an infilling."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    prompt: Mapped[Optional[str]] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    run: Mapped[Run] = relationship(back_populates="samples")

    def __repr__(self) -> str:
        return f"Sample(id={self.id}, run_id={self.run_id}, step={self.step}, kind={self.kind!r})"


class EvalResult(Base):
    """A named evaluation of a run (for example test-set bits per token) with its details."""

    __tablename__ = "eval_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    run: Mapped[Run] = relationship(back_populates="eval_results")

    def __repr__(self) -> str:
        return f"EvalResult(run_id={self.run_id}, {self.name}={self.value!r})"
