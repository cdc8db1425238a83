"""Engine creation: URL mapping, SQLite pragmas, and the transaction helpers' guarantees."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.db import tables
from hotline.db.engine import (
    create_engine_for,
    normalize_url,
    snapshot_transaction,
    write_transaction,
)
from hotline.errors import ConfigError


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:////tmp/x.db", "sqlite+pysqlite"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("mysql://u@h/db", "mysql+pymysql"),
        ("mariadb://u@h/db", "mysql+pymysql"),
        ("mysql+pymysql://u@h/db?charset=latin1", "mysql+pymysql"),
    ],
)
def test_url_schemes_map_to_hotlines_drivers(given: str, driver: str) -> None:
    url = normalize_url(given)
    assert url.drivername == driver
    if driver == "mysql+pymysql":
        assert url.query["charset"] == "utf8mb4"


@pytest.mark.parametrize("bad", ["", "not a url", "oracle://u@h/db", "postgresql+psycopg2://u@h/db"])
def test_unusable_url_raises_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        create_engine_for(bad)


def test_sqlite_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "hotline.db"
    eng = create_engine_for(f"sqlite:///{path}")
    try:
        with eng.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        eng.dispose()
    assert path.exists()
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}


def test_snapshot_transaction_sees_one_state(db_url: str) -> None:
    """A write committed during a snapshot transaction is not visible to it (all three databases)."""
    reader, writer = create_engine_for(db_url), create_engine_for(db_url)
    query = sa.select(tables.config_version.c.version)
    try:
        with snapshot_transaction(reader) as conn:
            before = conn.execute(query).scalar_one()
            with write_transaction(writer) as wconn:
                wconn.execute(sa.update(tables.config_version).values(version=tables.config_version.c.version + 7))
            assert conn.execute(query).scalar() == before
        with snapshot_transaction(reader) as conn:
            assert conn.execute(query).scalar() == before + 7
    finally:
        reader.dispose()
        writer.dispose()


def test_write_transaction_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        conn.execute(sa.update(tables.config_version).values(version=99))
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(sa.select(tables.config_version.c.version)).scalar() == 0
