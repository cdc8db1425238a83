"""Recording policy (agent > group > queue) and the AMI trigger that starts MixMonitor."""

from __future__ import annotations

import asyncio

import pytest

from hotline.domain.config import ConfigSnapshot
from hotline.errors import AsteriskError
from hotline.features.recordings.policy import RecordingStarter, should_record
from hotline.protocols.ami import Message

from ... import factories as f


def _snap(queue: str = "never", group: str = "inherit", agent: str = "inherit") -> ConfigSnapshot:
    return ConfigSnapshot.build(
        1,
        queues=(f.queue(1, "sales", recording=queue),),
        agent_groups=(f.group(1, "g", recording=group),),
        agents=(f.agent(1, "1001", group_id=1, recording=agent),),
    )


@pytest.mark.parametrize(
    ("queue", "group", "agent", "expected"),
    [
        ("never", "inherit", "inherit", False),
        ("always", "inherit", "inherit", True),
        ("always", "never", "inherit", False),  # the group overrides the queue
        ("never", "always", "inherit", True),
        ("never", "never", "always", True),  # the agent overrides both
        ("always", "always", "never", False),
    ],
)
def test_most_specific_setting_wins(queue: str, group: str, agent: str, expected: bool) -> None:
    snap = _snap(queue, group, agent)
    assert should_record(snap, snap.agent_by_number["1001"], "sales") is expected


def test_no_agent_and_no_queue_is_not_recorded() -> None:
    snap = _snap("always")
    assert should_record(snap, None, None) is False
    assert should_record(snap, None, "sales") is True


def _event(name: str, **fields: str) -> Message:
    base = {"Event": name, "Channel": "PJSIP/carrier-0001", "Uniqueid": "node1-1.5",
            "ChanVariable": "HOTLINE_CALL_ID=call-7", **fields}  # fmt: skip
    return Message(list(base.items()))


async def test_agent_connect_starts_one_mixmonitor_on_the_callers_channel() -> None:
    sent: list[tuple[str, str, dict[str, str]]] = []

    async def send(node: str, action: str, fields: dict[str, str]) -> object:
        sent.append((node, action, fields))
        return None

    snap = _snap("always")
    starter = RecordingStarter(lambda: snap, lambda phone: None, send)
    starter.on_ami("node1", _event("AgentConnect", Queue="sales", MemberName="1001"))
    starter.on_ami("node1", _event("AgentConnect", Queue="sales", MemberName="1001"))  # a duplicate
    starter.on_ami("node1", _event("Hangup"))
    await asyncio.gather(*starter._tasks)
    assert sent == [
        ("node1", "MixMonitor", {"Channel": "PJSIP/carrier-0001", "File": "call-7-node1-1.5.wav", "Options": "b"})
    ]
    assert starter.started == 1


async def test_direct_calls_follow_the_agent_on_the_phone_and_failures_are_counted() -> None:
    async def send(node: str, action: str, fields: dict[str, str]) -> object:
        raise AsteriskError("node1: MixMonitor failed: no such channel")

    snap = _snap("never", "always")
    agent = snap.agent_by_number["1001"]
    starter = RecordingStarter(lambda: snap, lambda phone: agent if phone == "2001" else None, send)
    starter.on_ami("node1", _event("DialEnd", DialStatus="BUSY", DestChannel="PJSIP/2001-0002"))
    starter.on_ami("node1", _event("DialEnd", DialStatus="ANSWER", DestChannel="PJSIP/2002-0003"))  # no agent
    assert not starter._tasks
    starter.on_ami("node1", _event("DialEnd", DialStatus="ANSWER", DestChannel="PJSIP/2001-0002"))
    await asyncio.gather(*starter._tasks)
    assert starter.failed == 1 and starter.started == 0
