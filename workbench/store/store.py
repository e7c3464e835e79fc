"""The experiment store as a library: units of work over experiments and runs.

Every method opens its own session and returns detached objects (``expire_on_commit=False``)
whose plain columns stay readable after the session closes. ``get_experiment`` loads the
runs and ``get_run`` the experiment, so those two relationships are readable as well.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from workbench.errors import ExperimentExists, ExperimentNotFound, InvalidConfig, RunActive, RunNotFound
from workbench.store.engine import IMMEDIATE, make_engine, resolve_url, sqlite_path
from workbench.store.migrations import MIGRATIONS, Migration, ensure_schema
from workbench.store.models import Experiment, Run, RunStatus, utc_now
from workbench.store.queries import QueriesMixin
from workbench.store.records import RecordsMixin

logger = logging.getLogger(__name__)

EXP_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")

ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)

# Run columns a caller may set through update_run; ids, the experiment and created_at are fixed.
UPDATABLE_RUN_FIELDS = frozenset(
    {
        "status", "run_dir", "host", "devices", "pid", "process_started_at", "exit_code",
        "heartbeat_at", "last_step", "total_steps", "checkpoint_path", "best_checkpoint_path",
        "info", "message", "started_at", "ended_at",
    }
)  # fmt: skip


def validate_exp_id(exp_id: str) -> str:
    """Return ``exp_id`` unchanged, or raise InvalidConfig if it is not a valid experiment id."""
    if not isinstance(exp_id, str) or not EXP_ID_PATTERN.fullmatch(exp_id):
        raise InvalidConfig(
            f"invalid exp_id {exp_id!r}: use 1 to 64 letters, digits, '_', '-' or '.'",
            key_path="exp_id",
        )
    return exp_id


class Store(RecordsMixin, QueriesMixin):
    """An experiment store at a database URL, created or upgraded on open.

    Args:
        url: a file path, an SQLAlchemy URL, or ``None`` for ``$WORKBENCH_DB`` or
            ``./experiments.db`` (see ``resolve_url``).
        migrations: the schema migrations to apply; tests pass their own list.
    """

    def __init__(self, url: str | os.PathLike[str] | URL | None = None, *, migrations: Sequence[Migration] = MIGRATIONS):
        self.url = url if isinstance(url, URL) else resolve_url(url)
        path = sqlite_path(self.url)
        if path is not None and not path.parent.is_dir():
            raise InvalidConfig(
                f"cannot create the store {path}: folder {path.parent} does not exist; "
                "create it or pass another --db"
            )
        self.engine = make_engine(self.url)
        self.schema_version = ensure_schema(self.engine, migrations)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            self.engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False
        )

    @property
    def url_text(self) -> str:
        """The URL with its password hidden, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @property
    def workdir(self) -> Path:
        """The folder of an SQLite store file, else the current directory.

        Run folders (``checkpoints/<exp_id>/<run_id>``) are created under it unless the
        launcher is given another root.
        """
        path = sqlite_path(self.url)
        return path.parent if path is not None else Path(os.getcwd())

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url_text!r})"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a session for queries; nothing it changes is committed."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Open a session that commits when the block ends without an exception.

        On SQLite it begins with ``BEGIN IMMEDIATE``, so it waits for other writers up front.
        """
        with self._write_sessions.begin() as session:
            yield session

    # Experiments

    def create_experiment(
        self,
        exp_id: str,
        config_text: str,
        *,
        notes: str = "",
        tags: Sequence[str] = (),
        parent_id: int | None = None,
    ) -> Experiment:
        """Insert an experiment; raise ExperimentExists if ``exp_id`` is taken."""
        validate_exp_id(exp_id)
        try:
            with self.write() as session:
                if session.scalar(select(Experiment.id).where(Experiment.exp_id == exp_id)):
                    raise ExperimentExists(exp_id)
                experiment = Experiment(
                    exp_id=exp_id, config_text=config_text, notes=notes, tags=list(tags), parent_id=parent_id
                )
                session.add(experiment)
        except IntegrityError as error:
            # Another process inserted the same exp_id between the check and the insert.
            raise ExperimentExists(exp_id) from error
        logger.info("created experiment %s", exp_id)
        return experiment

    def get_experiment(self, exp_id: str) -> Experiment:
        """Return the experiment with its runs loaded; raise ExperimentNotFound if absent."""
        with self.read() as session:
            experiment = session.scalar(
                select(Experiment)
                .where(Experiment.exp_id == exp_id)
                .options(selectinload(Experiment.runs), joinedload(Experiment.parent))
            )
        if experiment is None:
            raise ExperimentNotFound(exp_id)
        return experiment

    def list_experiments(self) -> list[Experiment]:
        """Return every experiment, oldest first."""
        with self.read() as session:
            return list(session.scalars(select(Experiment).order_by(Experiment.id)))

    def update_experiment(
        self,
        exp_id: str,
        *,
        config_text: str | None = None,
        notes: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Experiment:
        """Replace the given fields of an experiment; ``None`` leaves a field as it is."""
        with self.write() as session:
            experiment = self._experiment_in(session, exp_id)
            if config_text is not None:
                experiment.config_text = config_text
            if notes is not None:
                experiment.notes = notes
            if tags is not None:
                experiment.tags = list(tags)
        return experiment

    def delete_experiment(self, exp_id: str) -> None:
        """Delete an experiment with its runs and their records.

        Raises:
            RunActive: a run of the experiment is queued or running.
        """
        with self.write() as session:
            experiment = self._experiment_in(session, exp_id)
            active = session.scalars(
                select(Run.id).where(Run.experiment_id == experiment.id, Run.status.in_(ACTIVE_STATUSES))
            ).all()
            if active:
                raise RunActive(
                    f"experiment '{exp_id}' has active runs ({', '.join(map(str, active))}); "
                    f"stop them first with `workbench stop RUN`"
                )
            session.execute(delete(Experiment).where(Experiment.id == experiment.id))
        logger.info("deleted experiment %s", exp_id)

    # Runs

    def create_run(
        self,
        exp_id: str,
        *,
        overrides: Sequence[str] = (),
        resumed_from_id: int | None = None,
        resume_checkpoint: str | None = None,
        total_steps: int | None = None,
    ) -> Run:
        """Insert a queued run that snapshots the experiment's current config text."""
        with self.write() as session:
            experiment = self._experiment_in(session, exp_id)
            run = Run(
                experiment=experiment,
                config_text=experiment.config_text,
                overrides=list(overrides),
                resumed_from_id=resumed_from_id,
                resume_checkpoint=resume_checkpoint,
                total_steps=total_steps,
            )
            session.add(run)
            session.flush()
            session.refresh(run, ["experiment"])
        logger.info("created run %d of experiment %s", run.id, exp_id)
        return run

    def get_run(self, run_id: int) -> Run:
        """Return the run with its experiment loaded; raise RunNotFound if absent."""
        with self.read() as session:
            run = session.scalar(select(Run).where(Run.id == run_id).options(joinedload(Run.experiment)))
        if run is None:
            raise RunNotFound(run_id)
        return run

    def list_runs(
        self, exp_id: str | None = None, statuses: Iterable[RunStatus] | None = None
    ) -> list[Run]:
        """Return runs (of one experiment, with given statuses), oldest first."""
        query = select(Run).options(joinedload(Run.experiment)).order_by(Run.id)
        if exp_id is not None:
            experiment = self.get_experiment(exp_id)
            query = query.where(Run.experiment_id == experiment.id)
        if statuses is not None:
            query = query.where(Run.status.in_(list(statuses)))
        with self.read() as session:
            return list(session.scalars(query))

    def update_run(self, run_id: int, **fields: Any) -> Run:
        """Set the given columns of a run, such as ``status=RunStatus.STOPPED``."""
        unknown = set(fields) - UPDATABLE_RUN_FIELDS
        if unknown:
            raise ValueError(
                f"cannot update run fields {sorted(unknown)}; updatable: {sorted(UPDATABLE_RUN_FIELDS)}"
            )
        with self.write() as session:
            run = self._run_in(session, run_id)
            for name, value in fields.items():
                setattr(run, name, value)
            session.flush()
            session.refresh(run, ["experiment"])
        return run

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        message: str | None = None,
        exit_code: int | None = None,
        only_if_active: bool = False,
    ) -> Run | None:
        """Set a final status and the end time of a run.

        With ``only_if_active``, a run that already has a final status is left unchanged and
        ``None`` is returned. The launcher and reconciliation use it, so they never overwrite
        what the worker itself reported.
        """
        if status.is_active:
            raise ValueError(f"finish_run needs a final status, got {status.value!r}")
        with self.write() as session:
            run = self._run_in(session, run_id)
            if only_if_active and not run.status.is_active:
                return None
            run.status = status
            run.ended_at = utc_now()
            if message is not None:
                run.message = message
            if exit_code is not None:
                run.exit_code = exit_code
            session.flush()
            session.refresh(run, ["experiment"])
        logger.info("run %d finished: %s%s", run_id, status.value, f" ({message})" if message else "")
        return run

    @staticmethod
    def _experiment_in(session: Session, exp_id: str) -> Experiment:
        experiment = session.scalar(select(Experiment).where(Experiment.exp_id == exp_id))
        if experiment is None:
            raise ExperimentNotFound(exp_id)
        return experiment

    @staticmethod
    def _run_in(session: Session, run_id: int) -> Run:
        run = session.get(Run, run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run
