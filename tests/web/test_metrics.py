"""GET /metrics on a real Hotline over HTTP: who may scrape, and metrics that move when the call center does.

State is changed the way Hotline's inputs change it: AMI events into the monitor and the metrics listener
(the same callables NodeService hands every event to), agents logging in through AgentService, res_config_curl
requests to the realtime backend, REST calls through the web layer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from hotline.db.repositories.accounts import AccountRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.domain.permissions import ROLES, Principal
from hotline.features.metrics import Metrics, ami_lag
from hotline.protocols.ami import Message
from tests.web.conftest import WebHotline

ADMIN = Principal(kind="user", name="t", scopes=ROLES["admin"], role="admin")


@dataclass(frozen=True)
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(lbl) for n, lbl in self.samples if n == name]


def parse(text: str) -> Scrape:
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return Scrape(samples)


@dataclass(frozen=True)
class Env:
    web: WebHotline
    client: httpx.AsyncClient
    key: str

    async def scrape(self) -> Scrape:
        r = await self.client.get("/metrics", headers={"Authorization": f"Bearer {self.key}"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=")
        return parse(r.text)


@pytest_asyncio.fixture(loop_scope="session")
async def env(hotline_web: WebHotline) -> AsyncIterator[Env]:
    h = hotline_web.hotline
    _, key = await h.accounts.create_api_key("prometheus", ["stats:read"], created_by=ADMIN)
    async with httpx.AsyncClient(base_url=hotline_web.base_url, timeout=10) as client:
        yield Env(hotline_web, client, key)


# ------------------------------------------------------------------------------------------ who may scrape
async def test_metrics_need_stats_read(env: Env) -> None:
    h = env.web.hotline
    anonymous = await env.client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    wrong = await env.client.get("/metrics", headers={"Authorization": "Bearer hlk_nope_nope"})
    assert wrong.status_code == 401
    _, calls_only = await h.accounts.create_api_key("no-stats", ["calls:read"], created_by=ADMIN)
    denied = await env.client.get("/metrics", headers={"Authorization": f"Bearer {calls_only}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert "hotline_" not in denied.text
    scrape = await env.scrape()
    assert scrape.value("hotline_active_calls") == 0


async def test_a_signed_in_supervisor_may_read_the_metrics(env: Env) -> None:
    repo = AccountRepository(env.web.hotline.engine)
    await asyncio.to_thread(repo.add_user, "sue", "supervisor pw 1", role="supervisor")
    login = await env.client.post("/api/v1/auth/login", json={"username": "sue", "password": "supervisor pw 1"})
    assert login.status_code == 200, login.text
    r = await env.client.get("/metrics")  # the session cookie
    assert r.status_code == 200 and "hotline_journal_pending" in r.text


async def test_two_instances_keep_separate_registries(env: Env) -> None:
    h = env.web.hotline
    other = Metrics()
    other.observe_agi("inbound", 0.5)
    assert other.registry is not h.metrics.registry
    scrape = await env.scrape()
    assert scrape.value("hotline_agi_session_duration_seconds_count", script="inbound") in (None, 0.0)


# ------------------------------------------------------------------------------------------ values move
async def test_queue_and_agent_gauges_follow_ami_and_agent_states(env: Env) -> None:
    h = env.web.hotline
    await h.config.write(h.config_repo.add_queue, "support")
    await h.config.write(h.config_repo.add_phone, "2101", "phone-secret-2101", realm="hotline")
    await h.config.write(h.config_repo.add_agent, "7101", "Alice")
    await h.config.write(CallCenterRepository(h.engine).set_agent_queue, "7101", "support")
    before = await env.scrape()
    assert before.value("hotline_queue_waiting_calls", queue="support") == 0
    assert before.value("hotline_queue_agents", queue="support", state="available") == 0

    await h.agents.login("7101", None, "2101", actor="test", check_pin=False)
    join = [("Event", "QueueCallerJoin"), ("Queue", "support"), ("Uniqueid", "1700.1"), ("Position", "1")]
    h.monitor.on_ami("lab", Message([*join, ("CallerIDNum", "+35550001")]))
    during = await env.scrape()
    assert during.value("hotline_queue_waiting_calls", queue="support") == 1
    longest = during.value("hotline_queue_longest_wait_seconds", queue="support")
    assert longest is not None and 0 <= longest < 60
    assert during.value("hotline_queue_agents", queue="support", state="available") == 1
    assert during.value("hotline_agents", state="available") == 1
    assert during.value("hotline_queue_calls_today", queue="support", outcome="offered") == 1

    connect = [("Event", "AgentConnect"), ("Queue", "support"), ("Uniqueid", "1700.1"), ("HoldTime", "4")]
    h.monitor.on_ami("lab", Message(connect))
    after = await env.scrape()
    assert after.value("hotline_queue_waiting_calls", queue="support") == 0
    assert after.value("hotline_queue_calls_today", queue="support", outcome="answered") == 1
    assert after.value("hotline_queue_service_level_today", queue="support") == 1.0


async def test_realtime_requests_are_counted_and_timed_by_family(env: Env) -> None:
    h = env.web.hotline
    await h.config.write(h.config_repo.add_phone, "2201", "phone-secret-2201", realm="hotline")
    before = await env.scrape()
    headers = {"X-Hotline-Token": h.settings.realtime_token}
    for _ in range(3):
        r = await env.client.post("/realtime/ps_endpoints/single", content=b"id=2201", headers=headers)
        assert r.status_code == 200 and "2201" in r.text
    bad = await env.client.post("/realtime/not_a_family/single", content=b"id=1", headers=headers)
    assert bad.status_code == 404
    after = await env.scrape()
    requests = after.value("hotline_realtime_requests_total") or 0
    assert requests - (before.value("hotline_realtime_requests_total") or 0) == 4
    assert (after.value("hotline_realtime_errors_total") or 0) - (
        before.value("hotline_realtime_errors_total") or 0
    ) == 1
    timed = "hotline_realtime_request_duration_seconds_count"
    assert (after.value(timed, family="ps_endpoints", op="single") or 0) - (
        before.value(timed, family="ps_endpoints", op="single") or 0
    ) == 3
    assert after.value(timed, family="other", op="single") is not None  # never the raw family name
    assert not [lbl for lbl in after.labels_of(timed) if lbl.get("family") == "not_a_family"]


async def test_ami_lag_per_node_from_the_timestamp_header(env: Env) -> None:
    h = env.web.hotline
    now = time.time()
    # what NodeService does with every event of node "lab2": each listener, the metrics among them
    msg = Message([("Event", "PeerStatus"), ("Timestamp", f"{now - 0.25:.6f}"), ("Peer", "PJSIP/2101")])
    h.nodes._on_event("lab2", msg)
    h.nodes._on_event("lab2", Message([("Event", "PeerStatus")]))  # timestampevents off: not counted
    scrape = await env.scrape()
    assert scrape.value("hotline_ami_lag_seconds_count", node="lab2") == 1
    last = scrape.value("hotline_ami_last_lag_seconds", node="lab2")
    assert last is not None and 0.25 <= last < 5


async def test_rest_requests_are_timed_by_route_template(env: Env) -> None:
    headers = {"Authorization": f"Bearer {env.key}"}
    for name in ("q-one", "q-two", "q-three"):
        await env.client.get(f"/api/v1/queues/{name}/status", headers=headers)
    await env.client.get("/no/such/page/7f3a", headers=headers)
    await env.scrape()  # a scrape is timed once it has answered: the next one shows it
    scrape = await env.scrape()
    routes = {lbl["route"] for lbl in scrape.labels_of("hotline_http_request_duration_seconds_count")}
    assert "/api/v1/queues/{name}/status" in routes
    assert "unmatched" in routes
    assert not [r for r in routes if "q-one" in r or "7f3a" in r]  # raw paths never become labels
    assert "/metrics" in routes


async def test_counters_of_services_are_exposed(env: Env) -> None:
    scrape = await env.scrape()
    expected = {
        "hotline_journal_pending",
        "hotline_journal_events_written_total",
        "hotline_journal_events_dropped_total",
        "hotline_agi_sessions_active",
        "hotline_agi_sessions_total",
        "hotline_agi_sessions_refused_total",
        "hotline_webhook_deliveries_total",
        "hotline_recordings_stored_total",
        "hotline_caller_lookups_total",
        "hotline_events_published_total",
        "hotline_event_stream_connections",
        "hotline_realtime_contacts",
        "hotline_config_version",
    }
    assert expected <= scrape.names(), expected - scrape.names()
    assert scrape.value("hotline_webhook_deliveries_total", result="delivered") == 0
    assert scrape.labels_of("hotline_recordings")  # per state, from the (cached) database count


# ------------------------------------------------------------------------------------------ units
def _stamped(ts: str) -> Message:
    return Message([("Event", "Newchannel"), ("Privilege", "call,all"), ("Timestamp", ts)])


def test_ami_lag_is_receive_time_minus_the_timestamp() -> None:
    assert ami_lag(_stamped("1718000000.250000"), 1718000000.75) == pytest.approx(0.5)
    assert ami_lag(_stamped("1718000001.000000"), 1718000000.0) == pytest.approx(-1.0)  # clocks disagree
    assert ami_lag(Message([("Event", "Newchannel")]), 1718000000.0) is None
    for garbled in ("", "soon", "nan", "inf", "-5", "1e999x"):
        assert ami_lag(_stamped(garbled), 1718000000.0) is None


def test_on_ami_records_lag_per_node_and_clamps_negative_lag_in_the_histogram() -> None:
    metrics = Metrics(clock=lambda: 1718000010.0)
    metrics.on_ami("n1", _stamped("1718000009.990000"))
    metrics.on_ami("n1", _stamped("1718000012.000000"))  # node clock 2 s ahead
    metrics.on_ami("n2", Message([("Event", "Newchannel")]))
    r = metrics.registry
    assert r.get_sample_value("hotline_ami_lag_seconds_count", {"node": "n1"}) == 2
    assert r.get_sample_value("hotline_ami_lag_seconds_bucket", {"node": "n1", "le": "0.01"}) == 2
    assert r.get_sample_value("hotline_ami_last_lag_seconds", {"node": "n1"}) == pytest.approx(-2.0)
    assert r.get_sample_value("hotline_ami_lag_seconds_count", {"node": "n2"}) is None


async def test_timed_agi_routes_time_each_script_even_when_it_fails() -> None:
    metrics = Metrics()

    async def ok(session: object) -> None:
        await asyncio.sleep(0)

    async def fails(session: object) -> None:
        raise RuntimeError("decision failed")

    routes = metrics.timed_agi_routes({"inbound": ok, "ivr": fails})
    await routes["inbound"](object())
    with pytest.raises(RuntimeError):
        await routes["ivr"](object())
    r = metrics.registry
    assert r.get_sample_value("hotline_agi_session_duration_seconds_count", {"script": "inbound"}) == 1
    assert r.get_sample_value("hotline_agi_session_duration_seconds_count", {"script": "ivr"}) == 1
