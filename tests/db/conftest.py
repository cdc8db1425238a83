"""Fixtures for the repository tests: an engine on the (already migrated, emptied) `db_url`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository, ConfigRepository, ContactRepository


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine_for(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def config(engine: Engine) -> ConfigRepository:
    return ConfigRepository(engine)


@pytest.fixture
def calls(engine: Engine) -> CallRepository:
    return CallRepository(engine)


@pytest.fixture
def contacts(engine: Engine) -> ContactRepository:
    return ContactRepository(engine)
