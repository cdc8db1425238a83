"""Alembic environment for Hotline's schema.

Two ways in:
- `hotline.db.migrate` passes an open `Connection` in `config.attributes["connection"]`; the migration
  runs on it, inside the caller's transaction;
- the alembic CLI (`alembic -c hotline/db/alembic.ini -x url=...`): the URL comes from `-x url=`, else
  HOTLINE_DATABASE_URL, and the engine is built by `hotline.db.engine.create_engine_for`, so SQLite
  gets the same pragmas as in production.

`target_metadata` is `hotline.db.tables.metadata` so that `alembic revision --autogenerate` and
`alembic check` compare against the declared schema.  Offline (SQL script) mode is not supported.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from hotline.db.engine import create_engine_for
from hotline.db.tables import metadata
from hotline.errors import ConfigError


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("HOTLINE_DATABASE_URL")
    if not url:
        raise ConfigError("no database URL: pass -x url=... or set HOTLINE_DATABASE_URL")
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise ConfigError("Hotline's migrations run online only (no --sql mode)")
run_migrations_online()
