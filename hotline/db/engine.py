"""Engines for the three supported databases, and the two kinds of transaction Hotline uses.

Responsibility: turn a database URL into a configured SQLAlchemy `Engine` and hide per-database
transaction details from the repositories.

- SQLite: the parent folder is created; every connection gets WAL, synchronous=NORMAL, foreign keys
  and a 5 s busy timeout.  pysqlite's own transaction handling is switched off and Hotline emits BEGIN
  itself (the recipe in SQLAlchemy's pysqlite docs): that makes multi-statement reads consistent and
  lets write transactions start with BEGIN IMMEDIATE, which takes the write lock up front (waiting
  up to busy_timeout) instead of failing with SQLITE_BUSY when a read transaction upgrades.
- MariaDB/MySQL: PyMySQL with utf8mb4; PostgreSQL: psycopg 3.  Both with pool_pre_ping.
- `snapshot_transaction` reads at REPEATABLE READ on PostgreSQL (snapshot isolation there; the
  default READ COMMITTED would let each SELECT see a different state).  InnoDB's default is already
  REPEATABLE READ and SQLite's WAL read transactions are snapshots.

A bad URL raises `ConfigError`; nothing else from here raises driver errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from hotline.errors import ConfigError

# URL scheme given by the user -> the driver Hotline uses for it.
_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
}

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)

# Execution option a write transaction sets so that SQLite begins it with BEGIN IMMEDIATE.
_WRITE_OPTION = "hotline_write"


def normalize_url(url: str) -> URL:
    """Parse `url` and map its scheme to Hotline's driver; ConfigError if it is not supported."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not valid: {exc}") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(
            f"database URL scheme {parsed.drivername!r} is not supported "
            "(use sqlite://, postgresql:// or mysql:// / mariadb://)"
        )
    parsed = parsed.set(drivername=driver)
    if driver == "mysql+pymysql":
        # utf8mb4: MariaDB's "utf8" is 3-byte and cannot store every Unicode name.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def create_engine_for(url: str) -> Engine:
    """A configured engine for `url` (see the module docstring)."""
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the folder of the SQLite database {database}: {exc}") from exc
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, TypeError) as exc:
        raise ConfigError(f"database URL {parsed.render_as_string()!r} is not usable: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite; _on_begin emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One read-write transaction; commits on success, rolls back on any exception."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """One short read transaction (each statement may see newer data on PostgreSQL)."""
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def snapshot_transaction(engine: Engine) -> Iterator[Connection]:
    """One read transaction in which every statement sees the same committed state."""
    with engine.connect() as conn:
        if conn.dialect.name in ("postgresql", "mysql", "mariadb"):
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn
