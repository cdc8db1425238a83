"""Hotline's realtime backend: answers Asterisk's res_config_curl requests from memory.

Asterisk POSTs `<base>/<family>/<op>` (op = single, multi, store, update, destroy, require, static).
Lookups never touch the database: `RealtimeTables` is rebuilt from the in-memory `ConfigSnapshot` each
time configuration changes and swapped in one assignment, so a request sees one consistent version.
The only state Asterisk writes is registrations (ps_contacts) and member pauses (queue_members): both
are applied to memory first (so the next lookup sees them) and persisted in the background by
`RealtimeBackend.persist_loop`; a write that fails to persist is retried and logged, never dropped.

Answers follow the traps in asterisk-reference.md: `%20` never `+`; `/single` reads only the first line;
store/update/destroy always answer a number (never an empty body); unknown families, operators or
malformed bodies get HTTP 400/404 (listed in res_curl.conf `failurecodes`, so Asterisk treats them as a
failure rather than parsing an error page as data) plus one log line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotline.domain.config import ConfigSnapshot
from hotline.errors import RealtimeProtocolError
from hotline.protocols.realtime import (
    Condition,
    RealtimeRequest,
    encode_count,
    encode_row,
    encode_rows,
    parse_request,
    row_matches,
)

log = logging.getLogger(__name__)

Row = tuple[tuple[str, str], ...]

FAMILIES = ("ps_endpoints", "ps_auths", "ps_aors", "ps_contacts", "queues", "queue_members")
# The column that names a row (the key of `single` lookups, the category of `multi` rows).
KEY_COLUMN = {
    "ps_endpoints": "id",
    "ps_auths": "id",
    "ps_aors": "id",
    "ps_contacts": "id",
    "queues": "name",
    "queue_members": "uniqueid",
}


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def endpoint_row(p: Any) -> Row:
    codecs = [c.strip() for c in p.codecs.split(",") if c.strip()]
    # Sorcery applies fields in order: disallow before allow (asterisk-reference.md §1.3).
    return (
        ("id", p.name),
        ("transport", "udp"),
        ("aors", p.name),
        ("auth", p.name),
        ("context", p.context),
        ("disallow", "all"),
        ("allow", ",".join(codecs) or "ulaw"),
        ("callerid", p.callerid or f'"{p.name}" <{p.name}>'),
        ("direct_media", "no"),
        ("rtp_symmetric", "yes"),
        ("force_rport", "yes"),
        ("rewrite_contact", "yes"),
        ("send_rpid", "yes"),
        ("trust_id_outbound", "yes"),
        ("dtmf_mode", "rfc4733"),
    )


def auth_row(p: Any) -> Row:
    # Only digests are stored; PJSIP takes them as password_digest=<ALG>:<hex> (22.x, pjsip.conf.sample).
    return (
        ("id", p.name),
        ("auth_type", "digest"),
        ("username", p.name),
        ("realm", p.realm),
        ("password_digest", f"MD5:{p.digest_md5}"),
        ("password_digest", f"SHA-256:{p.digest_sha256}"),
    )


def aor_row(p: Any) -> Row:
    return (
        ("id", p.name),
        ("max_contacts", str(p.max_contacts)),
        ("remove_existing", "yes"),
        ("qualify_frequency", "0"),
        ("default_expiration", "300"),
        ("maximum_expiration", "3600"),
        ("minimum_expiration", "30"),
    )


def queue_row(q: Any) -> Row:
    # app_queue turns '_' in column names into '-' (find_queue_by_name_rt).
    return (
        ("name", q.name),
        ("strategy", q.strategy),
        ("timeout", str(q.timeout)),
        ("retry", str(q.retry)),
        ("wrapuptime", str(q.wrapuptime)),
        ("maxlen", str(q.maxlen)),
        ("servicelevel", str(q.servicelevel)),
        ("musicclass", q.musicclass),
        ("joinempty", q.joinempty),
        ("leavewhenempty", q.leavewhenempty),
        ("ringinuse", _yn(q.ringinuse)),
        ("weight", str(q.weight)),
        ("announce_frequency", str(q.announce_frequency)),
        ("announce_holdtime", q.announce_holdtime),
        ("announce_position", q.announce_position),
        ("announce_position_limit", str(q.announce_position_limit)),
        *((("periodic_announce", q.periodic_announce),) if q.periodic_announce else ()),
        ("periodic_announce_frequency", str(q.periodic_announce_frequency)),
        # Hotline pauses agents itself after N missed calls (features/agents), per group
        ("autopause", "no"),
        ("setinterfacevar", "yes"),
        ("setqueueentryvar", "yes"),
        ("setqueuevar", "yes"),
    )


def member_row(m: Any) -> Row:
    row: list[tuple[str, str]] = [
        ("uniqueid", m.uniqueid),
        ("queue_name", m.queue_name),
        ("interface", m.interface),
        ("membername", m.membername or m.interface),
        ("state_interface", m.state_interface or m.interface),
        ("penalty", str(m.penalty)),
        ("paused", str(int(m.paused))),
        ("reason_paused", m.reason_paused or " "),
    ]
    if m.wrapuptime is not None:
        row.append(("wrapuptime", str(m.wrapuptime)))
    if m.ringinuse is not None:
        row.append(("ringinuse", str(int(m.ringinuse))))
    return tuple(row)


@dataclass
class Table:
    """Rows of one family with an index by key; rows are tuples of (column, value) in answer order."""

    key: str
    rows: dict[str, Row] = field(default_factory=dict)

    def put(self, row: Row) -> None:
        self.rows[dict(row)[self.key]] = row


@dataclass(frozen=True)
class RealtimeTables:
    version: int
    tables: Mapping[str, Table]

    @classmethod
    def from_snapshot(cls, snap: ConfigSnapshot, contacts: Table) -> RealtimeTables:
        t = {fam: Table(KEY_COLUMN[fam]) for fam in FAMILIES if fam != "ps_contacts"}
        for p in snap.phones:
            if not p.enabled:
                continue
            t["ps_endpoints"].put(endpoint_row(p))
            t["ps_auths"].put(auth_row(p))
            t["ps_aors"].put(aor_row(p))
        for q in snap.queues:
            t["queues"].put(queue_row(q))
        for m in snap.queue_members:
            t["queue_members"].put(member_row(m))
        t["ps_contacts"] = contacts
        return cls(snap.version, t)


PersistFn = Callable[[tuple[tuple[str, tuple[Any, ...]], ...]], Awaitable[None]]


class RealtimeBackend:
    """Answers one res_config_curl request; owns the in-memory tables and the write-behind queue."""

    def __init__(self, persist: PersistFn, *, max_pending_writes: int = 100_000) -> None:
        self._persist = persist
        # Requests may be served by a thread of their own (setting realtime_port): every touch of the
        # tables happens under this lock, and writes reach the queue on the loop that persists them.
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of persist_loop
        self._in_flight = 0  # writes handed to that loop from another thread, not queued yet
        self._contacts = Table("id")
        self._tables = RealtimeTables(0, {"ps_contacts": self._contacts})
        self._writes: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue(max_pending_writes)
        self._unsaved_pauses: dict[str, tuple[bool, str]] = {}
        self._node_families: dict[str, Callable[[str], Iterable[Mapping[str, str]]]] = {}
        self._node_keys: dict[str, str] = {}
        self.requests = 0
        self.errors = 0

    # ------------------------------------------------------------------ state
    def load_contacts(self, contacts: Iterable[tuple[str, Row]]) -> None:
        with self._lock:
            for cid, row in contacts:
                self._contacts.rows[cid] = row

    def apply_snapshot(self, snap: ConfigSnapshot) -> None:
        with self._lock:
            self._apply_snapshot(snap)

    def _apply_snapshot(self, snap: ConfigSnapshot) -> None:
        tables = RealtimeTables.from_snapshot(snap, self._contacts)
        # A pause Asterisk wrote that is not in the database yet must survive a reload: Asterisk re-reads
        # members on every Queue() and would otherwise unpause the agent.
        members = tables.tables["queue_members"]
        for uid, (paused, reason) in self._unsaved_pauses.items():
            row = members.rows.get(uid)
            if row is not None:
                merged = dict(row)
                merged.update(paused=str(int(paused)), reason_paused=reason or " ")
                members.rows[uid] = tuple(merged.items())
        self._tables = tables

    def add_node_family(
        self, family: str, key: str, rows_for_node: Callable[[str], Iterable[Mapping[str, str]]]
    ) -> None:
        """A read-only family whose rows depend on the asking node (X-Hotline-Node), e.g. `musiconhold`,
        whose folders are node paths.  `rows_for_node` must answer from memory."""
        self._node_families[family] = rows_for_node
        self._node_keys[family] = key

    @property
    def version(self) -> int:
        return self._tables.version

    def contact_count(self) -> int:
        return len(self._contacts.rows)

    # ------------------------------------------------------------------ requests
    def handle(self, family: str, op: str, body: bytes, query: str, node: str = "") -> tuple[int, str]:
        """Return (HTTP status, body) for one request. Never raises for bad input."""
        with self._lock:
            return self._handle(family, op, body, query, node)

    def _handle(self, family: str, op: str, body: bytes, query: str, node: str) -> tuple[int, str]:
        self.requests += 1
        tables = self._tables  # one consistent version for the whole request
        table = tables.tables.get(family)
        if family in self._node_families:
            if op not in ("single", "multi", "require"):
                self.errors += 1
                return 400, f"realtime family {family!r} is read-only\n"
            table = Table(self._node_keys[family])
            for row in self._node_families[family](node):
                table.put(tuple(row.items()))
        if table is None:
            self.errors += 1
            log.warning("realtime: unknown family %r (op %s)", family, op)
            return 404, f"unknown realtime family {family!r}\n"
        try:
            req = parse_request(op, body, query)
            return 200, self._answer(family, table, req)
        except RealtimeProtocolError as exc:
            self.errors += 1
            log.warning("realtime: rejected %s/%s: %s", family, op, exc)
            return 400, f"{exc}\n"

    def _answer(self, family: str, table: Table, req: RealtimeRequest) -> str:
        op = req.op
        if op == "single":
            row = self._first(table, req.conditions)
            return encode_row(row) if row is not None else ""
        if op == "multi":
            return encode_rows(self._select(table, req.conditions))
        if op == "require":
            return "0"
        if op == "static":
            raise RealtimeProtocolError(f"static config file {req.file!r} is not served by Hotline")
        if op == "store":
            return encode_count(self._store(family, table, req))
        if op == "update":
            return encode_count(self._update(family, table, req))
        if op == "destroy":
            return encode_count(self._destroy(family, table, req))
        raise RealtimeProtocolError(f"unsupported operation {op!r}")

    @staticmethod
    def _candidates(table: Table, conditions: tuple[Condition, ...]) -> Iterable[tuple[str, Row]]:
        """Rows that can match: one row for `key = v`, rows whose key starts with the literal prefix of
        `key LIKE 'prefix%'` (contacts by AOR: `id LIKE '<aor>;@%'`), otherwise every row."""
        for c in conditions:
            if c.column != table.key:
                continue
            if c.op == "=":
                row = table.rows.get(c.value)
                return ((c.value, row),) if row is not None else ()
            if c.op == "LIKE":
                cut = min((i for i in (c.value.find(ch) for ch in "%_\\") if i >= 0), default=len(c.value))
                prefix = c.value[:cut]
                if prefix:
                    return [(k, r) for k, r in table.rows.items() if k.startswith(prefix)]
        return table.rows.items()

    @classmethod
    def _matching(cls, table: Table, conditions: tuple[Condition, ...]) -> list[tuple[str, Row]]:
        """(key, row) of every row that matches all conditions, in table order."""
        return [(k, r) for k, r in cls._candidates(table, conditions) if row_matches(dict(r), conditions)]

    def _first(self, table: Table, conditions: tuple[Condition, ...]) -> Row | None:
        hits = self._matching(table, conditions)
        return hits[0][1] if hits else None

    def _select(self, table: Table, conditions: tuple[Condition, ...]) -> list[Row]:
        # Asterisk names each multi row by the value of its first lookup column: put that column first.
        first = conditions[0].column if conditions else table.key
        out = []
        for _, row in self._matching(table, conditions):
            if row[0][0] != first:
                d = dict(row)
                if first in d:
                    row = ((first, d[first]), *(kv for kv in row if kv[0] != first))
            out.append(row)
        return out

    def _enqueue(self, kind: str, args: tuple[Any, ...]) -> None:
        loop = self._loop
        if loop is not None and not _running_on(loop):
            self._in_flight += 1  # under the lock (called from handle)
            loop.call_soon_threadsafe(self._put, kind, args, True)
        else:
            self._put(kind, args, False)

    def _put(self, kind: str, args: tuple[Any, ...], handed_over: bool) -> None:
        if handed_over:
            with self._lock:
                self._in_flight -= 1
        try:
            self._writes.put_nowait((kind, args))
        except asyncio.QueueFull:
            log.error("realtime: write-behind queue full; %s %s kept in memory only", kind, args[:1])

    def _store(self, family: str, table: Table, req: RealtimeRequest) -> int:
        if family != "ps_contacts":
            raise RealtimeProtocolError(f"store is not allowed on {family}")
        values = dict(req.values)
        cid = values.get("id", "")
        if not cid:
            raise RealtimeProtocolError("store on ps_contacts needs an id")
        row = tuple(req.values)
        table.rows[cid] = row
        self._enqueue("contact_upsert", (cid, row))
        return 1

    def _update(self, family: str, table: Table, req: RealtimeRequest) -> int:
        if family == "ps_contacts":
            hits = [k for k, _ in self._matching(table, req.conditions)]
            for cid in hits:
                merged = dict(table.rows[cid])
                merged.update(dict(req.values))
                row = tuple(merged.items())
                table.rows[cid] = row
                self._enqueue("contact_upsert", (cid, row))
            return len(hits)
        if family == "queue_members":
            allowed = {"paused", "reason_paused"}
            bad = [k for k, _ in req.values if k not in allowed]
            if bad:
                raise RealtimeProtocolError(f"update of queue_members may only change paused/reason_paused, not {bad}")
            hits = [k for k, _ in self._matching(table, req.conditions)]
            for uid in hits:
                merged = dict(table.rows[uid])
                merged.update(dict(req.values))
                table.rows[uid] = tuple(merged.items())
                paused = merged.get("paused", "0") not in ("0", "", "no")
                # the column holds 80 printable characters; Asterisk passes whatever the agent or AMI gave
                reason = "".join(ch for ch in merged.get("reason_paused", "") if ch.isprintable()).strip()[:80]
                self._unsaved_pauses[uid] = (paused, reason)
                self._enqueue("member_pause", (uid, paused, reason))
            return len(hits)
        raise RealtimeProtocolError(f"update is not allowed on {family}")

    def _destroy(self, family: str, table: Table, req: RealtimeRequest) -> int:
        if family != "ps_contacts":
            raise RealtimeProtocolError(f"destroy is not allowed on {family}")
        hits = [k for k, _ in self._matching(table, req.conditions)]
        for cid in hits:
            del table.rows[cid]
            self._enqueue("contact_delete", (cid,))
        return len(hits)

    # ------------------------------------------------------------------ persistence
    async def persist_loop(self, *, max_batch: int = 500) -> None:
        """Write Asterisk's changes to the database in batches, in order; retry with back-off on failure.

        Everything queued is taken at once and coalesced (the last change per contact id or member wins,
        which is what the database would hold after applying them one by one), then written in one
        call of `persist`."""
        self._loop = asyncio.get_running_loop()
        while True:
            first = await self._writes.get()
            items = [first]
            while len(items) < max_batch and not self._writes.empty():
                items.append(self._writes.get_nowait())
            latest: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
            for kind, args in items:
                target = "member" if kind == "member_pause" else "contact"
                latest.pop((target, args[0]), None)  # re-insert: keep the order of last changes
                latest[(target, args[0])] = (kind, args)
            batch = tuple(latest.values())
            delay = 0.2
            while True:
                try:
                    await self._persist(batch)
                    with self._lock:
                        for kind, args in batch:
                            if kind == "member_pause" and self._unsaved_pauses.get(args[0]) == args[1:]:
                                del self._unsaved_pauses[args[0]]
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database is down: keep the writes, retry
                    log.warning(
                        "realtime: persisting %d writes failed (%s); retrying in %.1f s", len(batch), exc, delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
            for _ in items:
                self._writes.task_done()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that owns the write queue (where persist_loop runs); needed before requests are served
        from another thread."""
        self._loop = loop

    def pending_writes(self) -> int:
        return self._writes.qsize() + self._in_flight

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every write accepted so far is persisted (needs persist_loop running)."""

        async def settled() -> None:
            if self._in_flight:  # handed over by the realtime thread: their callbacks are already queued on
                await asyncio.sleep(0)  # this loop, ahead of this task's next step (the loop is FIFO)
            await self._writes.join()

        await asyncio.wait_for(settled(), timeout)


class RealtimeASGI:
    """The HTTP face of the backend: `POST /realtime/<family>/<op>`, token and address checked."""

    def __init__(
        self,
        backend: RealtimeBackend,
        token: str,
        allowed: Iterable[str],
        *,
        prefix: str = "/realtime/",
        max_body: int = 65536,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> None:
        """`observe(family, op, seconds)`, when given, is called after each request the backend answered
        (refused and malformed requests are not timed); a family the backend does not serve is "other"."""
        self.backend = backend
        self._token = token.encode()
        self._nets = [ipaddress.ip_network(n, strict=False) for n in allowed]
        self._prefix = prefix
        self._max_body = max_body
        self._observe = observe

    def address_allowed(self, host: str | None) -> bool:
        """Whether a peer at `host` may call the backend at all (the nodes' networks)."""
        if not host:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in n for n in self._nets)

    @property
    def max_body(self) -> int:
        return self._max_body

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        status, text = await self._respond(scope, receive)
        data = text.encode("utf-8", "replace")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _respond(self, scope: Mapping[str, Any], receive: Any) -> tuple[int, str]:
        token = b""
        node = b""
        for k, v in scope.get("headers", ()):
            if k == b"x-hotline-token":
                token = v
            elif k == b"x-hotline-node":
                node = v
        client = scope.get("client")
        host = client[0] if client else None
        if not self._authorised(host, token):
            return 403, FORBIDDEN
        body = bytearray()
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return 400, "client went away\n"
            body += msg.get("body", b"")
            if len(body) > self._max_body:
                log.warning("realtime: body over %d bytes refused", self._max_body)
                return 413, f"request body over {self._max_body} bytes\n"
            if not msg.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        return self.answer(scope.get("method", ""), scope.get("path", ""), query, node, bytes(body))

    def _authorised(self, host: str | None, token: bytes) -> bool:
        if not self.address_allowed(host) or not self.token_ok(token):
            log.warning("realtime: refused request from %s (token or address)", host)
            return False
        return True

    def token_ok(self, token: bytes) -> bool:
        return bool(token) and _consteq(token, self._token)

    def answer(self, method: str, path: str, query: str, node: bytes, body: bytes) -> tuple[int, str]:
        """(status, text) for one whole request from a peer already authorised (address and token), whatever
        server received it: the ASGI app above or the realtime listener's own HTTP protocol
        (hotline/asterisk/realtime_http.py); both have refused a body over `max_body` already. Never raises for
        bad input; the backend's lock is taken inside."""
        if not path.startswith(self._prefix):
            return 404, "expected /realtime/<family>/<operation>\n"
        rest = path[len(self._prefix) :].split("/")
        if len(rest) != 2 or not rest[0] or not rest[1]:
            return 404, "expected /realtime/<family>/<operation>\n"
        if method not in ("POST", "GET"):
            return 405, "use POST\n"
        node_name = node.decode("latin-1")
        if self._observe is None:
            return self.backend.handle(rest[0], rest[1], body, query, node_name)
        start = time.perf_counter()
        status, text = self.backend.handle(rest[0], rest[1], body, query, node_name)
        elapsed = time.perf_counter() - start
        try:
            self._observe(rest[0] if status != 404 else "other", rest[1], elapsed)
        except Exception:  # a metrics bug must never fail Asterisk's lookup
            log.exception("realtime: observer failed")
        return status, text


# what a peer without a node address or the node token is told, by either server
FORBIDDEN = "forbidden: realtime needs a node address and the node token\n"


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _consteq(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)
