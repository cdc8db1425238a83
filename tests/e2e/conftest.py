"""Fixtures for end-to-end tests: one lab Asterisk 22 node and one Hotline process for the session.

The lab runs as instance "e2e" on 127.0.0.51 so it never collides with a demo running on the same
machine; Hotline gets free ports and a SQLite database in a temporary folder; the carrier is SIPp on
127.0.0.2 (the address the node's static `carrier` identify matches), the fallback target SIPp on
127.0.0.3.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.asterisk import lab
from hotline.db.engine import create_engine_for
from hotline.db.migrate import upgrade
from hotline.db.repositories import CallRepository, ConfigRepository
from hotline.settings import Settings, load_settings

from ..conftest import MYSQL_ADMIN_URL_DEFAULT, MYSQL_ADMIN_URL_ENV, PG_ADMIN_URL_DEFAULT, PG_ADMIN_URL_ENV
from .harness import HotlineProcess

NODE_ADDRESS = "127.0.0.51"
CARRIER_IP = "127.0.0.2"
FALLBACK_IP = "127.0.0.3"
FALLBACK_PORT = 5390
PHONE_PASSWORDS = {"2101": "agent-one-secret", "2102": "agent-two-secret", "2103": "agent-three-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    settings: Settings
    node: lab.LabNode
    hotline: HotlineProcess
    config: ConfigRepository
    calls: CallRepository
    workdir: Path
    engine: Engine | None = None

    @property
    def sip_target(self) -> str:
        return f"{self.node.spec.address}:{self.node.spec.sip_port}"


@contextlib.contextmanager
def _database(kind: str, work: Path) -> Iterator[str]:
    """A fresh database for one e2e session: the SQLite default, or a new PostgreSQL/MariaDB database."""
    if kind == "sqlite":
        yield ""
        return
    name = f"hotline_e2e_{secrets.token_hex(4)}"
    if kind == "postgresql":
        admin_url = os.environ.get(PG_ADMIN_URL_ENV, PG_ADMIN_URL_DEFAULT)
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        create, drop = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        admin_url = os.environ.get(MYSQL_ADMIN_URL_ENV, MYSQL_ADMIN_URL_DEFAULT)
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        create, drop = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", f"DROP DATABASE IF EXISTS `{name}`"
    with admin.connect() as conn:
        conn.execute(sa.text(create))
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(drop))
        admin.dispose()


@pytest.fixture(
    scope="session",
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def e2e_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with _database(request.param, work) as db_url:
        # the realtime backend on its own listener (setting realtime_port, the default) with PostgreSQL and
        # MariaDB, on the web server's /realtime path (realtime_port = 0) with SQLite: the same tests prove
        # both ways of serving it
        yield from _lab(work, db_url, own_realtime_listener=request.param != "sqlite")


def _seed_foundation(config: ConfigRepository, settings: Settings) -> None:
    for name, pw in PHONE_PASSWORDS.items():
        config.add_phone(name, pw, realm=settings.sip_realm, callerid=f'"Agent {name}" <{name}>')
    config.add_queue("e2e-support", strategy="ringall", timeout=10)
    config.add_queue_member("e2e-support", "PJSIP/2101", membername="agent-2101")
    config.add_queue("e2e-second", strategy="ringall", timeout=10)
    config.add_queue_member("e2e-second", "PJSIP/2102", membername="agent-2102")
    config.add_route("5100", "queue", "e2e-support")
    config.add_route("5101", "queue", "e2e-second")
    config.add_route("5102", "hangup", hangup_cause=21)
    config.add_route("7", "hangup", hangup_cause=21)  # a one-digit number is routed too


def _lab(
    work: Path,
    db_url: str,
    *,
    instance: str = "e2e",
    address: str = NODE_ADDRESS,
    seed: Callable[[ConfigRepository, Settings], None] = _seed_foundation,
    own_realtime_listener: bool = True,
) -> Iterator[Lab]:
    http_port, agi_port = free_port(), free_port()
    # realtime_port = 0: the nodes' lookups go to the web server's /realtime path (uvicorn), still supported
    realtime = f"realtime_port = {free_port() if own_realtime_listener else 0}\n"
    config_file = work / "hotline.toml"
    config_file.write_text(
        f"""data_dir = "{work / "data"}"
http_port = {http_port}
agi_port = {agi_port}
lab_instance = "{instance}"
node_address_base = "{address}"
carrier_addresses = ["{CARRIER_IP}/32"]
carrier_contact = "sip:{CARRIER_IP}:5060"
fallback_dial = "PJSIP/carrier/sip:fallback@{FALLBACK_IP}:{FALLBACK_PORT}"
agi_watchdog = 3
journal_flush_interval = 0.05
realtime_http_timeout = 1.5
database_url = "{db_url}"
{realtime}"""
    )
    settings = load_settings(config_file, environ={})
    engine = create_engine_for(settings.effective_database_url)
    upgrade(engine)
    config = ConfigRepository(engine)
    seed(config, settings)
    spec = lab.node_specs(settings, 1)[0]
    node = lab.lab_node(settings, spec)
    config.upsert_node(spec.name, spec.address, spec.sip_port, spec.ami_port)
    lab.stop_node(node)  # a node left over from an interrupted run
    hotline = HotlineProcess(config_file, http_port, work / "hotline.log")
    hotline.start()
    try:
        lab.start_node(settings, node)
        hotline.wait_nodes_connected()
        yield Lab(settings, node, hotline, config, CallRepository(engine), work, engine)
    finally:
        lab.stop_node(node)
        hotline.stop()
        engine.dispose()


CC_ADDRESS = "127.0.0.52"
CC_PASSWORDS = {"2201": "desk-one-secret", "2202": "desk-two-secret", "2203": "desk-three-secret"}
CLOSED_TARGET = "sip:closed@127.0.0.9:5090"


def _seed_callcenter(config: ConfigRepository, settings: Settings) -> None:
    from hotline.db.repositories.callcenter import CallCenterRepository

    cc = CallCenterRepository(config._engine)
    for name, pw in CC_PASSWORDS.items():
        config.add_phone(name, pw, realm=settings.sip_realm, callerid=f'"Desk {name}" <{name}>')
    config.add_agent_group("juniors")
    cc.update_agent_group("juniors", allowed_call_types="local", max_missed_in_row=2)
    config.add_agent("1001", "Alice", group="juniors", pin="4321")
    config.add_agent("1002", "Boris", pin="8765")
    # ring 2 s, retry after 1 s: a waiting caller rings a logged-in agent again and again
    config.add_queue("cc-sales", strategy="ringall", timeout=2, retry=1, max_wait=30)
    cc.set_agent_queue("1001", "cc-sales")
    cc.set_agent_queue("1002", "cc-sales")
    cc.add_pause_reason("lunch")
    cc.add_ivr("cc-main", "queue-thankyou", timeout_s=3, max_attempts=2)
    cc.set_ivr_option("cc-main", "1", "queue", "cc-sales")
    cc.set_ivr_option("cc-main", "2", "hangup")
    cc.add_time_condition("cc-hours", "* 00:00-24:00", open_type="ivr", open_value="cc-main",
                          closed_type="redirect", closed_value=CLOSED_TARGET)  # fmt: skip
    cc.add_call_type_rule("_[2-7]XXXXXX", "local", position=10)
    cc.add_call_type_rule("_9XXXXXXXXX", "mobile", position=20)
    # in the lab the emergency line ends at once (a real one goes to the carrier): the test checks the decision
    cc.add_service_number("112", "emergency", "hangup")
    config.add_route("5300", "queue", "cc-sales")
    config.add_route("5301", "time", "cc-hours")
    config.add_route("5302", "redirect", "sip:+4930999@127.0.0.9:5090")
    config.add_route("5303", "ivr", "cc-main")
    # nobody serves cc-hold: callers hear its music for 3 s, then the overflow hangs up
    config.add_queue("cc-hold", max_wait=3, overflow_type="hangup")
    config.add_route("5304", "queue", "cc-hold")


@pytest.fixture(scope="session")
def cc_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A second lab for the call-center features: its own node (127.0.0.52), Hotline, SQLite database."""
    work = tmp_path_factory.mktemp("e2e-cc")
    yield from _lab(work, "", instance="e2ecc", address=CC_ADDRESS, seed=_seed_callcenter)


@pytest.fixture()
def running_hotline(e2e_lab: Lab) -> Iterator[Lab]:
    """The lab with Hotline guaranteed up and connected (a previous test may have stopped it)."""
    if e2e_lab.hotline.proc is None or e2e_lab.hotline.proc.poll() is not None:
        e2e_lab.hotline.start()
    e2e_lab.hotline.wait_nodes_connected()
    yield e2e_lab
    if e2e_lab.hotline.proc is None or e2e_lab.hotline.proc.poll() is not None:
        e2e_lab.hotline.start()
