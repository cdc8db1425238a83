"""Routing decisions from a configuration snapshot (pure)."""

from __future__ import annotations

from hotline.domain.config import Agent, ConfigSnapshot, DidRoute, Phone, Queue
from hotline.features.routing.router import decide_inbound, decide_internal


def _phone(i: int, name: str, enabled: bool = True) -> Phone:
    return Phone(
        id=i,
        name=name,
        digest_md5="0" * 32,
        digest_sha256="0" * 64,
        realm="hotline",
        context="hotline-phones",
        callerid="",
        codecs="ulaw",
        max_contacts=1,
        enabled=enabled,
    )


def _route(i: int, did: str, t: str, v: str = "", cause: int | None = None, enabled: bool = True) -> DidRoute:
    return DidRoute(id=i, did=did, dest_type=t, dest_value=v, hangup_cause=cause, description="", enabled=enabled)


def _snap() -> ConfigSnapshot:
    queue = Queue(
        id=1,
        name="support",
        strategy="ringall",
        timeout=15,
        retry=5,
        wrapuptime=0,
        maxlen=0,
        servicelevel=60,
        musicclass="default",
        joinempty="yes",
        leavewhenempty="no",
        ringinuse=False,
        weight=0,
        max_wait=120,
        announce_frequency=0,
        announce_holdtime="no",
    )
    agent = Agent(id=1, number="1001", name="Alice", group_id=None, pin_hash=None, phone_id=1, enabled=True)
    lonely = Agent(id=2, number="1002", name="Boris", group_id=None, pin_hash=None, phone_id=None, enabled=True)
    return ConfigSnapshot.build(
        7,
        phones=(_phone(1, "2001"), _phone(2, "2002", enabled=False)),
        agents=(agent, lonely),
        queues=(queue,),
        did_routes=(
            _route(1, "5000", "queue", "support"),
            _route(2, "5001", "agent", "1001"),
            _route(3, "5002", "external", "+4930123456"),
            _route(4, "5003", "hangup", cause=21),
            _route(5, "5004", "queue", "nope"),
            _route(6, "5005", "queue", "support", enabled=False),
            _route(7, "5006", "agent", "1002"),
            _route(8, "5007", "phone", "2002"),
            _route(9, "5008", "external", "12; Hangup"),
        ),
    )


def test_queue_route_sets_queue_and_max_wait() -> None:
    d = decide_inbound(_snap(), "5000")
    assert d.action == "queue"
    assert dict(d.variables) == {
        "HOTLINE_QUEUE": "support",
        "HOTLINE_QUEUE_OPTIONS": "t",
        "HOTLINE_QUEUE_TIMEOUT": "120",
    }


def test_agent_route_dials_the_agents_phone() -> None:
    d = decide_inbound(_snap(), "5001")
    assert d.action == "dial" and dict(d.variables)["HOTLINE_DIAL"] == "PJSIP/2001"


def test_external_route_goes_to_the_carrier() -> None:
    d = decide_inbound(_snap(), "5002")
    assert dict(d.variables)["HOTLINE_DIAL"] == "PJSIP/+4930123456@carrier"


def test_hangup_route_uses_its_cause() -> None:
    d = decide_inbound(_snap(), "5003")
    assert d.action == "hangup" and dict(d.variables)["HOTLINE_CAUSE"] == "21"


def test_unknown_did_missing_queue_and_disabled_route_are_unallocated() -> None:
    for did in ("9999", "5004", "5005"):
        d = decide_inbound(_snap(), did)
        assert d.action == "hangup" and dict(d.variables)["HOTLINE_CAUSE"] == "1", did


def test_agent_without_phone_and_disabled_phone() -> None:
    assert dict(decide_inbound(_snap(), "5006").variables)["HOTLINE_CAUSE"] == "20"
    assert dict(decide_inbound(_snap(), "5007").variables)["HOTLINE_CAUSE"] == "1"


def test_external_number_with_dialplan_syntax_is_refused() -> None:
    d = decide_inbound(_snap(), "5008")
    assert d.action == "hangup" and "not dialable" in d.summary


def test_internal_calls() -> None:
    snap = _snap()
    assert dict(decide_internal(snap, "2002", "2001").variables)["HOTLINE_DIAL"] == "PJSIP/2001"
    assert decide_internal(snap, "2001", "5000").action == "queue"
    assert dict(decide_internal(snap, "2001", "1001").variables)["HOTLINE_DIAL"] == "PJSIP/2001"
    assert dict(decide_internal(snap, "2001", "0049301234").variables)["HOTLINE_DIAL"] == "PJSIP/0049301234@carrier"
