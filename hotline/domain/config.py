"""Configuration as Hotline's services see it: immutable values and one versioned snapshot.

Responsibility: the shapes of the configuration objects (phones, agents, queues, DID routes, nodes)
that the realtime backend, the AGI router and the web layer read.  They carry no behaviour and no I/O;
`hotline.db.repositories.ConfigRepository` builds them from the database.

Invariants:
- every object is a frozen, slotted dataclass; collections inside a `ConfigSnapshot` are tuples and
  its indexes are read-only mappings, so a snapshot can be shared between tasks and threads freely;
- a `ConfigSnapshot` is consistent: it was read in one transaction and `version` is the
  `config_version` that transaction saw.  Every configuration write bumps that version, so two
  snapshots with the same version hold the same data;
- datetimes are timezone-aware UTC; secrets appear only as digests or argon2id hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")

#: Where a DID route (an IVR option, a time condition, an overflow...) sends a call.
#: 'redirect' answers an unanswered inbound call with SIP 302 to a URI; 'hangup' may play a message first.
DEST_TYPES: tuple[str, ...] = ("queue", "agent", "phone", "external", "hangup", "ivr", "time", "redirect")

#: Agent runtime states (domain/agent_state.py holds the transitions).
AGENT_STATES: tuple[str, ...] = ("logged_out", "available", "ringing", "on_call", "wrap_up", "paused")

#: Call types for limits; numbers are classified by `CallTypeRule`s, internal numbers first.
CALL_TYPES: tuple[str, ...] = ("internal", "emergency", "local", "mobile", "long_distance", "international", "premium")

#: Actions an agent group may be allowed.
GROUP_ACTIONS: tuple[str, ...] = ("originate", "transfer_internal", "transfer_external", "listen", "whisper", "barge")

#: Recording policy values: queues say always/never; groups and agents may also inherit.
RECORDING_POLICIES: tuple[str, ...] = ("inherit", "always", "never")

#: The ring strategies Asterisk's app_queue accepts (queues.conf `strategy`).
QUEUE_STRATEGIES: tuple[str, ...] = (
    "ringall",
    "leastrecent",
    "fewestcalls",
    "random",
    "rrmemory",
    "linear",
    "wrandom",
    "rrordered",
)


@dataclass(frozen=True, slots=True)
class Phone:
    """A PJSIP endpoint; `name` is the endpoint, auth and AOR id.  Only digests are kept."""

    id: int
    name: str
    digest_md5: str
    digest_sha256: str
    realm: str
    context: str
    callerid: str
    codecs: str
    max_contacts: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """Agents sharing limits: call types and actions allowed, daily quotas per agent, auto-pause rule."""

    id: int
    name: str
    description: str
    max_missed_in_row: int
    allowed_call_types: str
    allowed_actions: str
    daily_call_quota: int | None
    daily_minute_quota: int | None
    recording: str

    @property
    def call_types(self) -> frozenset[str]:
        return frozenset(x.strip() for x in self.allowed_call_types.split(",") if x.strip())

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(x.strip() for x in self.allowed_actions.split(",") if x.strip())


@dataclass(frozen=True, slots=True)
class Agent:
    """A person who answers calls; `pin_hash` is an argon2id hash or None (no PIN login)."""

    id: int
    number: str
    name: str
    group_id: int | None
    pin_hash: str | None
    phone_id: int | None
    enabled: bool
    recording: str


@dataclass(frozen=True, slots=True)
class AgentQueue:
    """An agent's membership (skill) in a queue; it rings the agent's phone while the agent is logged in."""

    id: int
    agent_id: int
    queue_id: int
    penalty: int


@dataclass(frozen=True, slots=True)
class PauseReason:
    id: int
    name: str
    paid: bool
    max_duration_s: int | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class ServiceNumber:
    """A number any phone may dial, even with nobody logged in: 'help' or 'emergency'."""

    id: int
    number: str
    kind: str
    dest_type: str
    dest_value: str
    description: str


@dataclass(frozen=True, slots=True)
class IvrOption:
    id: int
    menu_id: int
    digit: str
    dest_type: str
    dest_value: str


@dataclass(frozen=True, slots=True)
class IvrMenu:
    id: int
    name: str
    prompt: str
    invalid_prompt: str
    timeout_s: int
    max_attempts: int
    fail_type: str
    fail_value: str


@dataclass(frozen=True, slots=True)
class TimeCondition:
    """Open/closed by weekly `hours` ("mon-fri 09:00-18:00; sat 10:00-14:00") in `timezone`; holidays closed."""

    id: int
    name: str
    timezone: str
    hours: str
    open_type: str
    open_value: str
    closed_type: str
    closed_value: str


@dataclass(frozen=True, slots=True)
class Holiday:
    id: int
    day: date
    name: str


@dataclass(frozen=True, slots=True)
class CallTypeRule:
    """`pattern` is an Asterisk-style number pattern (`_` prefix: X N Z [..] . !) or a literal prefix."""

    id: int
    position: int
    pattern: str
    call_type: str


@dataclass(frozen=True, slots=True)
class Queue:
    """An app_queue queue; field names follow Asterisk's realtime `queues` family.

    `max_wait` (seconds, None = no limit) is Hotline's own: the router passes it to Queue() as timeout.
    """

    id: int
    name: str
    strategy: str
    timeout: int
    retry: int
    wrapuptime: int
    maxlen: int
    servicelevel: int
    musicclass: str
    joinempty: str
    leavewhenempty: str
    ringinuse: bool
    weight: int
    max_wait: int | None
    announce_frequency: int
    announce_holdtime: str
    announce_position: str
    announce_position_limit: int
    periodic_announce: str
    periodic_announce_frequency: int
    priority: int
    overflow_type: str
    overflow_value: str
    recording: str


@dataclass(frozen=True, slots=True)
class QueueMember:
    """A member of a queue; fields follow Asterisk's realtime `queue_members` family.

    `uniqueid` is the key Asterisk uses when it updates a member through realtime (pause/unpause).
    `wrapuptime` and `ringinuse` of None mean "inherit from the queue".
    """

    id: int
    queue_id: int
    queue_name: str
    interface: str
    membername: str
    state_interface: str
    penalty: int
    paused: int
    reason_paused: str
    wrapuptime: int | None
    ringinuse: bool | None
    uniqueid: str
    agent_id: int | None


@dataclass(frozen=True, slots=True)
class DidRoute:
    """Where calls to one DID go: `dest_type` is one of DEST_TYPES.

    `dest_value` is a queue name, an agent number, a phone name or an external number; it is empty for
    'hangup', which uses `hangup_cause` (Q.850, None = normal clearing).
    """

    id: int
    did: str
    dest_type: str
    dest_value: str
    hangup_cause: int | None
    message: str
    description: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Node:
    """An Asterisk node of the cluster and the last status Hotline recorded for it."""

    id: int
    name: str
    address: str
    sip_port: int
    ami_port: int
    state: str
    last_seen_at: datetime | None
    active_calls: int
    load: float
    version: str


def _group(items: Iterable[_V], key: Callable[[_V], _K]) -> dict[_K, tuple[_V, ...]]:
    out: dict[_K, list[_V]] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return {k: tuple(v) for k, v in out.items()}


def _index(items: Iterable[_V], key: Callable[[_V], _K]) -> Mapping[_K, _V]:
    return MappingProxyType({key(item): item for item in items})


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """All configuration at one `version`, with the lookups the hot paths need.

    Build it with `ConfigSnapshot.build(...)`, or directly: the indexes are derived in __post_init__
    either way, so they can never disagree with the tuples.
    """

    version: int
    phones: tuple[Phone, ...] = ()
    agent_groups: tuple[AgentGroup, ...] = ()
    agents: tuple[Agent, ...] = ()
    queues: tuple[Queue, ...] = ()
    queue_members: tuple[QueueMember, ...] = ()
    did_routes: tuple[DidRoute, ...] = ()
    nodes: tuple[Node, ...] = ()
    agent_queues: tuple[AgentQueue, ...] = ()
    pause_reasons: tuple[PauseReason, ...] = ()
    service_numbers: tuple[ServiceNumber, ...] = ()
    ivr_menus: tuple[IvrMenu, ...] = ()
    ivr_options: tuple[IvrOption, ...] = ()
    time_conditions: tuple[TimeCondition, ...] = ()
    holidays: tuple[Holiday, ...] = ()
    call_type_rules: tuple[CallTypeRule, ...] = ()
    phone_by_name: Mapping[str, Phone] = field(init=False, compare=False, repr=False)
    queue_by_name: Mapping[str, Queue] = field(init=False, compare=False, repr=False)
    route_by_did: Mapping[str, DidRoute] = field(init=False, compare=False, repr=False)
    agent_by_number: Mapping[str, Agent] = field(init=False, compare=False, repr=False)
    members_by_queue: Mapping[str, tuple[QueueMember, ...]] = field(init=False, compare=False, repr=False)
    phone_by_id: Mapping[int, Phone] = field(init=False, compare=False, repr=False)
    agent_by_id: Mapping[int, Agent] = field(init=False, compare=False, repr=False)
    group_by_id: Mapping[int, AgentGroup] = field(init=False, compare=False, repr=False)
    queue_by_id: Mapping[int, Queue] = field(init=False, compare=False, repr=False)
    pause_reason_by_name: Mapping[str, PauseReason] = field(init=False, compare=False, repr=False)
    service_by_number: Mapping[str, ServiceNumber] = field(init=False, compare=False, repr=False)
    ivr_by_name: Mapping[str, IvrMenu] = field(init=False, compare=False, repr=False)
    ivr_options_by_menu: Mapping[int, Mapping[str, IvrOption]] = field(init=False, compare=False, repr=False)
    time_by_name: Mapping[str, TimeCondition] = field(init=False, compare=False, repr=False)
    holiday_days: frozenset[date] = field(init=False, compare=False, repr=False)
    skills_by_agent: Mapping[int, tuple[AgentQueue, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[QueueMember]] = {q.name: [] for q in self.queues}
        for member in self.queue_members:
            grouped.setdefault(member.queue_name, []).append(member)
        derived: dict[str, object] = {
            "phone_by_name": _index(self.phones, lambda p: p.name),
            "queue_by_name": _index(self.queues, lambda q: q.name),
            "route_by_did": _index(self.did_routes, lambda r: r.did),
            "agent_by_number": _index(self.agents, lambda a: a.number),
            "members_by_queue": MappingProxyType({k: tuple(v) for k, v in grouped.items()}),
            "phone_by_id": _index(self.phones, lambda p: p.id),
            "agent_by_id": _index(self.agents, lambda a: a.id),
            "group_by_id": _index(self.agent_groups, lambda g: g.id),
            "queue_by_id": _index(self.queues, lambda q: q.id),
            "pause_reason_by_name": _index(self.pause_reasons, lambda r: r.name),
            "service_by_number": _index(self.service_numbers, lambda n: n.number),
            "ivr_by_name": _index(self.ivr_menus, lambda m: m.name),
            "ivr_options_by_menu": MappingProxyType(
                {
                    m.id: _index((o for o in self.ivr_options if o.menu_id == m.id), lambda o: o.digit)
                    for m in self.ivr_menus
                }
            ),
            "time_by_name": _index(self.time_conditions, lambda c: c.name),
            "holiday_days": frozenset(h.day for h in self.holidays),
            "skills_by_agent": MappingProxyType(_group(self.agent_queues, lambda s: s.agent_id)),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def build(
        cls,
        version: int,
        *,
        phones: Iterable[Phone] = (),
        agent_groups: Iterable[AgentGroup] = (),
        agents: Iterable[Agent] = (),
        queues: Iterable[Queue] = (),
        queue_members: Iterable[QueueMember] = (),
        did_routes: Iterable[DidRoute] = (),
        nodes: Iterable[Node] = (),
        agent_queues: Iterable[AgentQueue] = (),
        pause_reasons: Iterable[PauseReason] = (),
        service_numbers: Iterable[ServiceNumber] = (),
        ivr_menus: Iterable[IvrMenu] = (),
        ivr_options: Iterable[IvrOption] = (),
        time_conditions: Iterable[TimeCondition] = (),
        holidays: Iterable[Holiday] = (),
        call_type_rules: Iterable[CallTypeRule] = (),
    ) -> ConfigSnapshot:
        return cls(
            version=version,
            phones=tuple(phones),
            agent_groups=tuple(agent_groups),
            agents=tuple(agents),
            queues=tuple(queues),
            queue_members=tuple(queue_members),
            did_routes=tuple(did_routes),
            nodes=tuple(nodes),
            agent_queues=tuple(agent_queues),
            pause_reasons=tuple(pause_reasons),
            service_numbers=tuple(service_numbers),
            ivr_menus=tuple(ivr_menus),
            ivr_options=tuple(ivr_options),
            time_conditions=tuple(time_conditions),
            holidays=tuple(holidays),
            call_type_rules=tuple(sorted(call_type_rules, key=lambda r: (r.position, r.id))),
        )
