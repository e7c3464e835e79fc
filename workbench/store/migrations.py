"""Schema versions of the experiment store and the upgrades between them.

A new database gets the current tables from the models and is stamped with every migration.
An existing database is upgraded by running, in order, the migrations newer than its highest
recorded version; each applied migration adds one row to ``schema_version``. A database whose
version is newer than the last migration here was written by a newer workbench and is
rejected, because this code cannot know what the newer columns mean.

To change the schema: change the models, then append a ``Migration`` whose ``upgrade`` brings
a database of the previous version to the new one (``ALTER TABLE``, data copies).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, select

from workbench.errors import SchemaTooNew, StoreError
from workbench.store.engine import IMMEDIATE
from workbench.store.models import Base, SchemaVersion, utc_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """A named step from schema version ``version - 1`` to ``version``."""

    version: int
    name: str
    upgrade: Callable[[Connection], None]


def _create_baseline_tables(connection: Connection) -> None:
    # Version 1 is the first released schema, so no database ever upgrades into it: a new
    # database gets its tables from the models in ensure_schema.
    Base.metadata.create_all(connection)


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "create_baseline_tables", _create_baseline_tables),)


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Raise ValueError unless the versions are 1, 2, 3, ... in order with distinct names."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order; got {versions}")
    names = [migration.name for migration in migrations]
    if len(set(names)) != len(names):
        raise ValueError(f"migration names must be distinct; got {names}")


def ensure_schema(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Create or upgrade the store schema in one transaction and return its version.

    Raises:
        SchemaTooNew: the database has a higher version than the last of ``migrations``.
        StoreError: the database has workbench tables but no ``schema_version`` table.
    """
    check_migrations(migrations)
    head = migrations[-1].version
    with engine.execution_options(**{IMMEDIATE: True}).begin() as connection:
        tables = set(inspect(connection).get_table_names())
        if SchemaVersion.__tablename__ not in tables:
            return _create_schema(connection, tables, migrations)

        current = connection.scalar(select(SchemaVersion.version).order_by(SchemaVersion.version.desc()))
        current = current or 0
        if current > head:
            raise SchemaTooNew(
                f"the store {engine.url.render_as_string(hide_password=True)} has schema version "
                f"{current}, but this workbench supports versions up to {head}; upgrade the "
                "workbench (`pip install -U sedd-workbench`) or open another store with --db"
            )
        for migration in migrations[current:]:
            logger.info("upgrading store schema to version %d (%s)", migration.version, migration.name)
            migration.upgrade(connection)
            _record(connection, migration)
        return head


def _create_schema(connection: Connection, tables: set[str], migrations: Sequence[Migration]) -> int:
    ours = {table.name for table in Base.metadata.sorted_tables} - {SchemaVersion.__tablename__}
    if tables & ours:
        raise StoreError(
            f"the database has workbench tables ({', '.join(sorted(tables & ours))}) but no "
            "schema_version table, so its schema version is unknown; open another store with --db"
        )
    Base.metadata.create_all(connection)
    for migration in migrations:
        _record(connection, migration)
    logger.info("created store schema version %d", migrations[-1].version)
    return migrations[-1].version


def _record(connection: Connection, migration: Migration) -> None:
    connection.execute(
        SchemaVersion.__table__.insert().values(
            version=migration.version, name=migration.name, applied_at=utc_now()
        )
    )
