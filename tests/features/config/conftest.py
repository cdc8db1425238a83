"""The repository tests' fixtures (an engine on each of SQLite, PostgreSQL and MariaDB) and a catalogue."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from hotline.features.config.resources import ResourceCatalog
from tests.db.conftest import config, engine

__all__ = ["catalog", "config", "engine"]


@pytest.fixture
def catalog(engine: Engine) -> ResourceCatalog:
    return ResourceCatalog(engine, sip_realm="hotline")
