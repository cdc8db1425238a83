"""Fixtures shared by every test folder.

# Database fixtures

`db_url` is parametrised over the three supported databases (ids: sqlite, postgresql, mariadb);
`sqlite_url`, `pg_url` and `mariadb_url` give one each.  Every one yields the URL (a str for
`hotline.db.engine.create_engine_for`) of a database migrated to head, with every table emptied and
`config_version` back to 0 before the test.

For speed there is one database per backend per session: an SQLite file in the session's tmp folder,
and on the servers a fresh `hotline_t_<random>` database created through an admin URL and dropped at
the end of the session.  Admin URLs (override with the environment variables):

    HOTLINE_TEST_PG_ADMIN_URL     postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    HOTLINE_TEST_MYSQL_ADMIN_URL  mysql+pymysql://root@127.0.0.1:3306/

A server that does not answer FAILS the tests that need it, never skips them: run
`sudo scripts/ensure-services`.  Deselect a backend explicitly with `-m "not mariadb"` / `-m "not postgres"`.

A test that leaves the schema at another revision (migration tests) is repaired by the next test's
set-up, which re-runs the migrations when alembic_version is not at head.

This section imports only SQLAlchemy at module level (hotline.db lazily), so a broken hotline.db
cannot stop unrelated test folders from being collected.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

PG_ADMIN_URL_ENV = "HOTLINE_TEST_PG_ADMIN_URL"
MYSQL_ADMIN_URL_ENV = "HOTLINE_TEST_MYSQL_ADMIN_URL"
PG_ADMIN_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MYSQL_ADMIN_URL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/"
_CONNECT_TIMEOUT_S = 5
_ENSURE_HINT = "start the database servers with `sudo scripts/ensure-services` (from the repository root)"


@dataclass
class _TestDatabase:
    """One migrated database reused by all tests of a session, and the engine that cleans it."""

    url: str
    engine: sa.Engine

    def prepare(self) -> None:
        """Bring the schema to head if a test moved it, then empty every table."""
        from hotline.db import migrate, tables

        head = migrate.head_revision()
        with self.engine.connect() as conn:
            try:
                at = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            except sa.exc.DBAPIError:
                at = None
            conn.rollback()
        if at != head:
            migrate.upgrade(self.engine)
        with self.engine.begin() as conn:
            for table in reversed(tables.metadata.sorted_tables):
                conn.execute(table.delete())
            conn.execute(tables.config_version.insert().values(id=tables.CONFIG_VERSION_ID, version=0))


def _server_database(kind: str, env: str, default: str) -> Iterator[_TestDatabase]:
    from hotline.db.engine import create_engine_for

    admin_url = sa.make_url(os.environ.get(env) or default)
    name = f"hotline_t_{secrets.token_hex(6)}"
    if kind == "postgresql":
        admin_url = admin_url.set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {"connect_timeout": _CONNECT_TIMEOUT_S}
        create = f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        admin_url = admin_url.set(drivername="mysql+pymysql").update_query_dict({"charset": "utf8mb4"})
        connect_args = {"connect_timeout": _CONNECT_TIMEOUT_S}
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        drop = f"DROP DATABASE IF EXISTS `{name}`"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args=connect_args)
    try:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(create)
        except sa.exc.DBAPIError as exc:
            pytest.fail(
                f"{kind} is not reachable at {admin_url.render_as_string()} ({env}): {exc.orig!r}\n-> {_ENSURE_HINT}",
                pytrace=False,
            )
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        engine = create_engine_for(url)
        try:
            yield _TestDatabase(url, engine)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(drop)
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def _hotline_sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_TestDatabase]:
    from hotline.db.engine import create_engine_for

    path: Path = tmp_path_factory.mktemp("sqlite") / "hotline.db"
    url = f"sqlite:///{path}"
    engine = create_engine_for(url)
    try:
        yield _TestDatabase(url, engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _hotline_pg_database() -> Iterator[_TestDatabase]:
    yield from _server_database("postgresql", PG_ADMIN_URL_ENV, PG_ADMIN_URL_DEFAULT)


@pytest.fixture(scope="session")
def _hotline_mariadb_database() -> Iterator[_TestDatabase]:
    yield from _server_database("mariadb", MYSQL_ADMIN_URL_ENV, MYSQL_ADMIN_URL_DEFAULT)


@pytest.fixture
def sqlite_url(_hotline_sqlite_database: _TestDatabase) -> str:
    _hotline_sqlite_database.prepare()
    return _hotline_sqlite_database.url


@pytest.fixture
def pg_url(_hotline_pg_database: _TestDatabase) -> str:
    _hotline_pg_database.prepare()
    return _hotline_pg_database.url


@pytest.fixture
def mariadb_url(_hotline_mariadb_database: _TestDatabase) -> str:
    _hotline_mariadb_database.prepare()
    return _hotline_mariadb_database.url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mariadb_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


# --------------------------------------------------------------------------------------------------
# Header: which real services this run used
def _probe(fn: Any) -> str:
    try:
        return str(fn())
    except Exception as exc:  # the header reports, the fixtures fail loudly
        return f"unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"


def pytest_report_header(config: pytest.Config) -> list[str]:
    import subprocess

    def asterisk() -> str:
        from hotline.asterisk import lab
        from hotline.settings import load_settings

        settings = load_settings(environ={}, create_secrets=False)
        if not lab.root_ready(settings):
            raise RuntimeError(f"no lab root at {settings.asterisk_root}; run hotline lab provision")
        return f"{lab.asterisk_version_in(settings.asterisk_root)} (lab root {settings.asterisk_root})"

    def server_version(url: str, sql: str) -> str:
        engine = sa.create_engine(url, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S})
        try:
            with engine.connect() as conn:
                return str(conn.execute(sa.text(sql)).scalar())
        finally:
            engine.dispose()

    def sipp() -> str:
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10, check=False)
        return " ".join(out.stdout.split()[:2]).rstrip(".")

    pg = os.environ.get(PG_ADMIN_URL_ENV, PG_ADMIN_URL_DEFAULT)
    my = os.environ.get(MYSQL_ADMIN_URL_ENV, MYSQL_ADMIN_URL_DEFAULT)
    return [
        f"Asterisk: {_probe(asterisk)}",
        f"PostgreSQL: {_probe(lambda: server_version(pg, 'SHOW server_version'))}",
        f"MariaDB: {_probe(lambda: server_version(my, 'SELECT VERSION()'))}",
        f"SIPp: {_probe(sipp)}",
    ]
