"""Run Hotline's Alembic migrations from Python.

Responsibility: bring a database to a schema revision (normally "head") without the alembic CLI and
without depending on the working directory: the script location is the `migrations` folder next to
this module.  Each call runs in one transaction where the database allows transactional DDL
(PostgreSQL, SQLite); MariaDB commits every DDL statement by itself, so a failed migration there can
leave a partial schema (Alembic's known limitation, not Hotline's).

Accepts an `Engine` (used, not disposed) or a URL (an engine is made with `create_engine_for` and
disposed afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from hotline.db.engine import create_engine_for

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic `Config` pointing at the packaged migrations (no file or CWD needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@contextmanager
def _engine(engine_or_url: Engine | str) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = create_engine_for(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    with _engine(engine_or_url) as engine, engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine_or_url: Engine | str, revision: str = "base") -> None:
    """Migrate the database down to `revision` ("base" drops every Hotline table)."""
    with _engine(engine_or_url) as engine, engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of Hotline."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
