"""When a call is recorded, and starting the recording on the node.

Policy (most specific wins): the agent's own setting, else the agent's group, else the queue; 'inherit'
passes the decision on, a queue says 'always' or 'never'.  Calls outside queues follow the agent and the
group only (no queue to inherit from: not recorded unless one of them says 'always').

Trigger: the moment the agent is connected, from the node's AMI events (AgentConnect for queue calls,
DialEnd with DialStatus ANSWER for calls dialled to or from an agent's phone).  The recording is started
with the AMI action MixMonitor on the caller's channel, option `b` (only bridged audio), file
`<call id>-<uniqueid of that channel>.wav` in the node's monitor folder: the name RecordingService expects
(docs/recordings.md).  Doing it from AMI keeps the call path free of any wait on Hotline: if Hotline is
slow, a recording starts late, a call is never held up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from hotline.domain.calls import pjsip_endpoint
from hotline.domain.config import Agent, ConfigSnapshot
from hotline.errors import HotlineError
from hotline.protocols.ami import Message

log = logging.getLogger(__name__)

#: (node, action, fields) -> the AMI response; raises HotlineError on failure
ActionSender = Callable[[str, str, dict[str, str]], Awaitable[object]]


def should_record(snap: ConfigSnapshot, agent: Agent | None, queue: str | None) -> bool:
    """The policy above, as a pure function of the configuration."""
    if agent is not None:
        if agent.recording in ("always", "never"):
            return agent.recording == "always"
        group = snap.group_by_id.get(agent.group_id) if agent.group_id is not None else None
        if group is not None and group.recording in ("always", "never"):
            return group.recording == "always"
    q = snap.queue_by_name.get(queue) if queue else None
    return q is not None and q.recording == "always"


class RecordingStarter:
    def __init__(
        self,
        snapshot: Callable[[], ConfigSnapshot],
        agent_on_phone: Callable[[str], Agent | None],
        send: ActionSender,
    ) -> None:
        self._snapshot = snapshot
        self._agent_on_phone = agent_on_phone
        self._send = send
        self._started: OrderedDict[tuple[str, str], None] = OrderedDict()  # (node, uniqueid), bounded
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = 0
        self.failed = 0

    def on_ami(self, node: str, msg: Message) -> None:
        name = msg.name
        if name == "AgentConnect":
            snap = self._snapshot()
            agent = snap.agent_by_number.get(msg.get("MemberName") or "")
            queue = msg.get("Queue")
        elif name == "DialEnd" and (msg.get("DialStatus") or "") == "ANSWER":
            snap = self._snapshot()
            queue = None
            agent = self._agent_on_phone(pjsip_endpoint(msg.get("DestChannel") or "")) or self._agent_on_phone(
                pjsip_endpoint(msg.get("Channel") or "")
            )
            if agent is None:
                return
        else:
            return
        call_id = msg.chan_variables.get("HOTLINE_CALL_ID") or ""
        channel, uniqueid = msg.get("Channel") or "", msg.get("Uniqueid") or ""
        if not call_id or not channel or not uniqueid or (node, uniqueid) in self._started:
            return
        if not should_record(snap, agent, queue):
            return
        self._started[(node, uniqueid)] = None
        while len(self._started) > 50_000:
            self._started.popitem(last=False)
        fields = {"Channel": channel, "File": f"{call_id}-{uniqueid}.wav", "Options": "b"}
        task = asyncio.get_running_loop().create_task(self._start(node, fields), name=f"mixmonitor-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, node: str, fields: dict[str, str]) -> None:
        try:
            await self._send(node, "MixMonitor", fields)
            self.started += 1
            log.info("recording %s on %s", fields["File"], node)
        except HotlineError as exc:
            self.failed += 1
            log.warning("recording %s on %s not started: %s", fields["File"], node, exc)
