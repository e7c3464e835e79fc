"""Database URLs and engine set-up for the experiment store.

The store is ``./experiments.db`` unless ``--db`` or the ``WORKBENCH_DB`` environment variable
names another one. Either may be a file path (an SQLite database) or any SQLAlchemy URL, such
as ``postgresql+psycopg://user@host/workbench``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

logger = logging.getLogger(__name__)

DEFAULT_DB_PATH = "experiments.db"
DB_ENV_VAR = "WORKBENCH_DB"

# Seconds an SQLite connection waits for another process's write lock before it raises
# "database is locked". Training workers write metrics while the CLI and the TUI read and
# update runs, so waits are short but frequent.
SQLITE_BUSY_TIMEOUT_S = 30.0

# Execution option that makes a write unit of work start with BEGIN IMMEDIATE on SQLite.
IMMEDIATE = "workbench_begin_immediate"


def resolve_url(db: str | os.PathLike[str] | None = None) -> URL:
    """Return the store URL from ``db``, else ``$WORKBENCH_DB``, else ``./experiments.db``.

    A value without ``://`` is a file path and becomes an absolute ``sqlite:///`` URL, so a
    worker started in another directory opens the same file.
    """
    value = os.fspath(db) if db else os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH
    if "://" in value:
        return make_url(value)
    return URL.create("sqlite", database=str(Path(value).expanduser().resolve()))


def is_in_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def sqlite_path(url: URL) -> Path | None:
    """Return the database file of an SQLite URL, or ``None`` for in-memory and other databases."""
    if url.get_backend_name() != "sqlite" or is_in_memory(url):
        return None
    return Path(url.database)


def make_engine(url: URL) -> Engine:
    """Create an engine; for SQLite, set WAL mode, the busy timeout and foreign keys.

    An in-memory SQLite store (``sqlite://``) keeps one connection for every session and
    thread, because each new connection would open a new, empty database.
    """
    if url.get_backend_name() != "sqlite":
        # NOTE: only SQLite is exercised by the tests; other databases go through plain SQLAlchemy.
        return create_engine(url, pool_pre_ping=True)

    if is_in_memory(url):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # Autocommit at the driver level hands BEGIN to _begin_sqlite_transaction: pysqlite's own
    # implicit BEGIN is deferred and skipped before DDL, which loses writes under contention.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # WAL lets the TUI and the CLI read while a worker writes. It needs a file database.
        if cursor.execute("PRAGMA database_list").fetchone()[2]:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is locked"
    # when another process wrote in between; BEGIN IMMEDIATE takes the write lock up front and
    # waits for it under the busy timeout instead.
    immediate = connection.get_execution_options().get(IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
