"""The migrations create exactly the schema of hotline/db/tables.py, on all three databases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from hotline.db import migrate, tables


def _normalise_default(text: str | None) -> str | None:
    """Server defaults as reflected ("'x'::character varying", "('')", "(15)") vs as declared ("'x'")."""
    if text is None:
        return None
    text = re.sub(r"::[a-z ]+$", "", text.strip())
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    text = text.strip("'\"")
    return {"true": "1", "false": "0"}.get(text.lower(), text)


def _compare_default(
    _context: Any,
    _inspected_column: Any,
    _metadata_column: Any,
    inspected_default: str | None,
    _metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool:
    # True means "different".  Alembic's own comparison reports false differences for '' and for
    # booleans on MariaDB (stored as TINYINT 0/1), hence this normaliser.
    return _normalise_default(inspected_default) != _normalise_default(rendered_metadata_default)


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": _compare_default}
        )
        return list(compare_metadata(context, tables.metadata))


def test_upgraded_database_matches_metadata(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision() == "0003"
    assert schema_diff(engine) == []


def test_downgrade_drops_everything_and_upgrade_restores(engine: Engine) -> None:
    migrate.downgrade(engine)
    assert migrate.current_revision(engine) is None
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert schema_diff(engine) == []
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(sa.select(tables.config_version))] == [(1, 0)]


def test_upgrade_is_idempotent(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_upgrade_from_url_does_not_depend_on_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'h.db'}"
    migrate.upgrade(url)
    from hotline.db.engine import create_engine_for

    eng = create_engine_for(url)
    try:
        assert migrate.current_revision(eng) == migrate.head_revision()
        assert schema_diff(eng) == []
    finally:
        eng.dispose()


@pytest.mark.mariadb
def test_mariadb_tables_are_utf8mb4_binary(mariadb_url: str) -> None:
    from hotline.db.engine import create_engine_for

    eng = create_engine_for(mariadb_url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT table_name, engine, table_collation FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name <> 'alembic_version'"
                )
            ).all()
    finally:
        eng.dispose()
    assert {r[0] for r in rows} == set(tables.metadata.tables)
    assert {(r[1], r[2]) for r in rows} == {("InnoDB", "utf8mb4_bin")}
