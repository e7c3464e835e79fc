"""The experiment store: SQLAlchemy models, engine set-up, schema versions and queries."""

from workbench.errors import (
    ExperimentExists,
    ExperimentNotFound,
    InvalidConfig,
    RunActive,
    RunNotFound,
    SchemaTooNew,
    StoreError,
)
from workbench.store.engine import DB_ENV_VAR, DEFAULT_DB_PATH, resolve_url
from workbench.store.migrations import MIGRATIONS, Migration
from workbench.store.models import Base, EvalResult, Experiment, Metric, Run, RunStatus, Sample, SchemaVersion
from workbench.store.queries import ExperimentSummary, MetricStats
from workbench.store.records import MetricRow
from workbench.store.store import ACTIVE_STATUSES, Store, validate_exp_id

__all__ = [
    "ACTIVE_STATUSES",
    "Base",
    "DB_ENV_VAR",
    "DEFAULT_DB_PATH",
    "EvalResult",
    "Experiment",
    "ExperimentExists",
    "ExperimentNotFound",
    "ExperimentSummary",
    "InvalidConfig",
    "MIGRATIONS",
    "Metric",
    "MetricRow",
    "MetricStats",
    "Migration",
    "Run",
    "RunActive",
    "RunNotFound",
    "RunStatus",
    "Sample",
    "SchemaTooNew",
    "SchemaVersion",
    "Store",
    "StoreError",
    "resolve_url",
    "validate_exp_id",
]
