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
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")

#: Where a DID route sends a call.
DEST_TYPES: tuple[str, ...] = ("queue", "agent", "phone", "external", "hangup")

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
    id: int
    name: str
    description: str


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
    phone_by_name: Mapping[str, Phone] = field(init=False, compare=False, repr=False)
    queue_by_name: Mapping[str, Queue] = field(init=False, compare=False, repr=False)
    route_by_did: Mapping[str, DidRoute] = field(init=False, compare=False, repr=False)
    agent_by_number: Mapping[str, Agent] = field(init=False, compare=False, repr=False)
    members_by_queue: Mapping[str, tuple[QueueMember, ...]] = field(init=False, compare=False, repr=False)

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
        )
