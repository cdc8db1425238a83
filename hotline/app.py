"""The one place that wires Hotline together.

`Hotline(settings)` builds every component with its collaborators passed in; `start()` starts them in
dependency order as named, supervised tasks and `stop()` stops them in reverse order:

    database (migrated) -> configuration snapshot -> realtime backend -> agents' state -> journal
    -> AMI clients -> FastAGI server -> HTTP server (health + realtime)

No module-level state: two Hotline instances can run in one process (the tests do).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hotline.asterisk import lab
from hotline.asterisk.agi_server import AGIServer, AGISession
from hotline.asterisk.config_render import NodeSpec
from hotline.asterisk.realtime_backend import RealtimeASGI, RealtimeBackend
from hotline.asterisk.realtime_http import RealtimeListener
from hotline.db.engine import create_engine_for
from hotline.db.migrate import upgrade
from hotline.db.repositories import CallRepository, ConfigRepository, ContactRepository
from hotline.db.repositories.accounts import AccountRepository
from hotline.db.repositories.agents import AgentStateRepository
from hotline.db.repositories.crm import CustomerRepository
from hotline.db.repositories.history import HistoryRepository
from hotline.db.repositories.media import MediaRepository
from hotline.db.repositories.webhooks import WebhookRepository
from hotline.domain.calls import CallRecord
from hotline.errors import HotlineError, NotFoundError, ValidationError
from hotline.features.accounts import AccountService
from hotline.features.agents.service import AgentService
from hotline.features.calls import CallControlService
from hotline.features.cluster.service import NodeService
from hotline.features.config.resources import ResourceCatalog
from hotline.features.config.service import ConfigService
from hotline.features.crm import CallerLookupService
from hotline.features.events import EventBus
from hotline.features.journal.service import JournalService
from hotline.features.media import MediaService
from hotline.features.metrics import Metrics
from hotline.features.monitor import MonitorService, Thresholds
from hotline.features.recordings import (
    LocalStorage,
    Mp3Converter,
    NodePaths,
    RecordingRepository,
    RecordingService,
    RecordingStorage,
    S3Storage,
)
from hotline.features.recordings.policy import RecordingStarter
from hotline.features.routing.agi_handlers import RoutingHandlers
from hotline.features.routing.router import RouteContext
from hotline.features.webhooks import WebhookService
from hotline.protocols.ami import Message
from hotline.settings import Settings
from hotline.web import build_web
from hotline.web.auth import Authenticator
from hotline.web.context import WebServices
from hotline.web.metrics import HTTPMetricsMiddleware

log = logging.getLogger(__name__)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process owner (run_forever, tests) decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _http_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn as Hotline runs it: quiet, no lifespan (the app starts and stops its own services)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=65,
        interface="asgi3",
        **options,
    )


def _recording_storage(s: Settings) -> RecordingStorage:
    if s.recording_storage == "s3":
        return S3Storage(
            s.recording_s3_bucket,
            endpoint_url=s.recording_s3_endpoint_url or None,
            region=s.recording_s3_region,
            access_key=s.recording_s3_access_key or None,
            secret_key=s.recording_s3_secret_key or None,
            prefix=s.recording_s3_prefix,
            addressing_style=s.recording_s3_addressing_style,
        )
    return LocalStorage(Path(s.recording_dir) if s.recording_dir else Path(s.data_dir) / "recordings")


class Hotline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine_for(settings.effective_database_url)
        self.config_repo = ConfigRepository(self.engine)
        self.contact_repo = ContactRepository(self.engine)
        self.call_repo = CallRepository(self.engine)
        self.config = ConfigService(self.config_repo)
        self.bus = EventBus(ring_size=settings.event_ring_size)
        self.metrics = Metrics()
        self.customer_repo = CustomerRepository(self.engine)
        self.caller_lookup = CallerLookupService(
            self.customer_repo,
            self.bus,
            crm_url=settings.crm_url,
            crm_token=settings.crm_token,
            crm_timeout=settings.crm_timeout,
            lookup_timeout=settings.lookup_timeout,
            cache_ttl=settings.crm_cache_ttl,
            negative_ttl=settings.crm_negative_ttl,
            cache_size=settings.crm_cache_size,
            earlier_calls=settings.crm_earlier_calls,
        )
        self.webhooks = WebhookService(
            WebhookRepository(self.engine),
            self.bus,
            timeout=settings.webhook_timeout,
            max_attempts=settings.webhook_max_attempts,
            backoff_base=settings.webhook_backoff_base,
            backoff_max=settings.webhook_backoff_max,
            concurrency=settings.webhook_concurrency,
            queue_size=settings.webhook_queue_size,
            poll_interval=settings.webhook_poll_interval,
            retention=settings.webhook_retention_days * 86400,
        )
        self.realtime = RealtimeBackend(self._persist_realtime)
        self.journal = JournalService(
            self.call_repo,
            batch_size=settings.journal_batch_size,
            flush_interval=settings.journal_flush_interval,
            max_pending=settings.journal_max_pending,
            call_idle_timeout=settings.call_idle_timeout,
            on_call_end=self._call_ended,
        )
        self.media = MediaService(
            MediaRepository(self.engine),
            Path(settings.media_dir),
            self._media_node_dirs,
            ffmpeg=settings.ffmpeg_binary,
            max_upload_bytes=settings.media_max_upload_bytes,
            max_duration_s=settings.media_max_duration_s,
            convert_timeout_s=settings.media_convert_timeout_s,
            max_concurrent_conversions=settings.media_max_concurrent_conversions,
            sync_interval_s=settings.media_sync_interval_s,
        )
        self.realtime.add_node_family("musiconhold", "name", self.media.musiconhold_rows_for_node)
        self.agent_repo = AgentStateRepository(self.engine)
        self.agents = AgentService(
            self.agent_repo, lambda: self.config.snapshot, pauser=self._queue_pause, publish=self._publish
        )
        paths = NodePaths({n.name: (n.ast_dir, n.host_dir) for n in map(self._lab_node, lab.node_specs(settings))})
        self.recordings = RecordingService(
            RecordingRepository(self.engine),
            _recording_storage(settings),
            Mp3Converter(
                settings.ffmpeg_binary,
                bitrate_kbps=settings.recording_mp3_bitrate,
                timeout_s=settings.recording_convert_timeout,
            ),
            resolve=paths.resolve,
            monitor_dir=paths.monitor_dir,
            nodes=paths.nodes,
            workers=settings.recording_workers,
            max_attempts=settings.recording_max_attempts,
            retry_base_s=settings.recording_retry_base,
            retry_max_s=settings.recording_retry_max,
            retention_days=settings.recording_retention_days,
            incomplete_grace_s=settings.recording_incomplete_grace,
            scan_interval_s=settings.recording_scan_interval,
            gather_s=settings.journal_flush_interval,
        )
        self.recording_starter = RecordingStarter(
            lambda: self.config.snapshot, self.agents.agent_on_phone, self._ami_action
        )
        self.history = HistoryRepository(self.engine)
        self.monitor = MonitorService(
            lambda: self.config.snapshot,
            self.agents.statuses,
            self.history,
            self.bus,
            thresholds=lambda: {q: Thresholds(*v) for q, v in self.history.thresholds().items()},
        )
        self.nodes = NodeService(
            settings,
            self.config_repo,
            self.journal,
            listeners=[
                self.agents.on_ami,
                self.recording_starter.on_ami,
                self.recordings.on_ami,
                self._screen_pop,
                self.monitor.on_ami,
                self.metrics.on_ami,
            ],
        )
        self.calls = CallControlService(
            self.nodes.client,
            lambda: self.config.snapshot,
            self.agents,
            self.journal,
            originate_timeout=settings.call_originate_timeout,
            list_timeout=settings.ami_action_timeout,
            route_context=self._route_context,
        )
        self.routing = RoutingHandlers(
            self._route_context,
            self.journal,
            self.agents,
            decision_timeout=settings.agi_decision_timeout,
            pause_code_reason=settings.agent_pause_code_reason,
            enrich=self._caller_name,
        )
        self.agi = AGIServer(
            self.metrics.timed_agi_routes(self.routing.routes()),
            command_timeout=settings.agi_command_timeout,
            max_sessions=settings.agi_max_sessions,
            allowed=settings.agi_allowed_addresses,
        )
        self.realtime_asgi = RealtimeASGI(
            self.realtime,
            settings.realtime_token,
            settings.realtime_allowed_addresses,
            observe=self.metrics.observe_realtime,
        )
        self.accounts = AccountService(
            AccountRepository(self.engine),
            session_ttl=settings.session_ttl,
            login_max_failures=settings.login_max_failures,
            login_max_failures_per_address=settings.login_max_failures_per_address,
            login_window=settings.login_window,
            credential_cache_ttl=settings.credential_cache_ttl,
        )
        self.catalog = ResourceCatalog(self.engine, sip_realm=settings.sip_realm)
        self.services = WebServices(
            settings=settings,
            auth=Authenticator(self.accounts, settings),
            accounts=self.accounts,
            catalog=self.catalog,
            config=self.config,
            agents=self.agents,
            agent_repo=self.agent_repo,
            calls=self.calls,
            call_repo=self.call_repo,
            history=self.history,
            journal=self.journal,
            bus=self.bus,
            nodes=self.nodes,
            monitor=self.monitor,
            recordings=self.recordings,
            media=self.media,
            webhooks=self.webhooks,
            customers=self.customer_repo,
            caller_lookup=self.caller_lookup,
            realtime=self.realtime,
            agi=self.agi,
            metrics=self.metrics,
        )
        self.web = build_web(self.services, health=Route("/health", self._health))
        self.web.add_middleware(HTTPMetricsMiddleware, metrics=self.metrics)
        self._tasks: list[asyncio.Task[Any]] = []
        self._short_tasks: set[asyncio.Task[Any]] = set()
        self._http: uvicorn.Server | None = None
        self._realtime_loop: asyncio.AbstractEventLoop | None = None
        self._realtime_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ glue between features
    def _publish(self, name: str, data: dict[str, object]) -> None:
        self.bus.publish(name, data)

    def _call_ended(self, record: CallRecord) -> None:
        self.agents.call_ended(record)
        self.bus.publish(
            "call.ended",
            {
                "call_id": record.call_id,
                "caller": record.caller_num or "",
                "did": record.did or "",
                "status": record.status,
                "queue": record.queue_name or "",
                "agent": record.agent_number or "",
                "hangup_by": record.hangup_by or "",
                "talk_s": record.talk_s or 0.0,
                "queue_wait_s": record.queue_wait_s or 0.0,
            },
        )

    async def _caller_name(self, call_id: str, session: AGISession) -> dict[str, str]:
        """Inbound calls: look the caller up (earlier calls, customers, CRM) and set the caller name."""
        env = session.env
        if env.callerid in ("", "unknown", "anonymous"):
            return {}
        info = await self.caller_lookup.lookup(env.callerid, did=env.extension, call_id=call_id)
        return {"CALLERID(name)": info.name} if info.name else {}

    def _screen_pop(self, node: str, msg: Message) -> None:
        """The agent's phone rings (AgentCalled): publish what we know of the caller for the agent's screen."""
        if msg.name != "AgentCalled":
            return
        call_id = msg.chan_variables.get("HOTLINE_CALL_ID") or ""
        number = msg.get("CallerIDNum") or ""
        if call_id and number:
            self.caller_lookup.screen_pop_nowait(
                call_id=call_id, number=number, agent=msg.get("MemberName") or "", queue=msg.get("Queue")
            )

    async def _ami_action(self, node: str, action: str, fields: dict[str, str]) -> object:
        return await self.nodes.client(node).action(action, fields)

    def _lab_node(self, spec: NodeSpec) -> lab.LabNode:
        return lab.lab_node(self.settings, spec)

    def _media_node_dirs(self) -> dict[str, tuple[Path, str]]:
        """Each node's media folder: (as this host sees it, as Asterisk on the node sees it).  Lab nodes
        live in the lab root; a node elsewhere needs its folder shared or synced (docs/media.md)."""
        out = {}
        for n in self.config.snapshot.nodes:
            node = self._lab_node(NodeSpec(n.name, n.address, n.sip_port, n.ami_port, 0, 0))
            out[n.name] = (node.host_dir / "media", f"{node.ast_dir}/media")
        return out

    def _sound(self, node: str) -> Callable[[str], str]:
        """Prompt names -> what the node plays: an uploaded prompt's node path, else the name (a core sound)."""
        media = self.media

        def resolve(name: str) -> str:
            try:
                return media.prompt_path_for_node(node, name)
            except HotlineError:
                return name

        return resolve

    def _route_context(self, node: str) -> RouteContext:
        s = self.settings
        return RouteContext(
            snap=self.config.snapshot,
            now=datetime.now(UTC),
            sound=self._sound(node),
            agent_on_phone=self.agents.agent_on_phone,
            phone_of_agent=self.agents.phone_of_agent,
            usage_today=self.agents.usage_today,
            login_code=s.agent_login_code,
            logoff_code=s.agent_logoff_code,
            pause_code=s.agent_pause_code,
            unpause_code=s.agent_unpause_code,
        )

    async def _queue_pause(self, interface: str, paused: bool, reason: str) -> None:
        await self.nodes.queue_pause(interface, paused, reason)

    # ------------------------------------------------------------------ ASGI entry
    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/realtime/"):
            await self.realtime_asgi(scope, receive, send)
        else:
            await self.web(scope, receive, send)

    def realtime_listener_state(self) -> dict[str, object]:
        """The realtime listener as /health shows it: off (realtime_port = 0: served on http_port), or its
        port and whether its thread still serves."""
        port = self.settings.realtime_port
        thread = self._realtime_thread
        if not port or thread is None:
            return {"port": 0, "running": False, "served_on": "http_port"}
        return {"port": port, "running": thread.is_alive(), "served_on": "realtime_port"}

    async def _health(self, request: Request) -> JSONResponse:
        listener = self.realtime_listener_state()
        # the nodes read their configuration through the listener: without it no phone registers and no
        # queue rings, so a monitor or load balancer must see it (503)
        degraded = listener["served_on"] == "realtime_port" and not listener["running"]
        body = {
            "status": "degraded: the realtime listener is not running" if degraded else "ok",
            "config_version": self.config.version,
            "nodes": self.nodes.status(),
            "realtime": {
                "requests": self.realtime.requests,
                "errors": self.realtime.errors,
                "contacts": self.realtime.contact_count(),
                "pending_writes": self.realtime.pending_writes(),
                "listener": listener,
            },
            "agents": self.agents.summary(),
            "recordings": await self.recordings.status(),
            "recording_starts": {"started": self.recording_starter.started, "failed": self.recording_starter.failed},
            "webhooks": self.webhooks.stats(),
            "caller_lookup": self.caller_lookup.stats(),
            "events": {"position": self.bus.position},
            "agi": {"active": self.agi.active, "done": self.agi.sessions_done, "refused": self.agi.refused},
            "journal": {
                "pending": self.journal.pending(),
                "written": self.journal.written,
                "dropped": self.journal.dropped,
                "active_calls": len(self.journal.active_calls()),
            },
        }
        return JSONResponse(body, status_code=503 if degraded else 200)

    # ------------------------------------------------------------------ persistence of Asterisk's writes
    async def _persist_realtime(self, batch: tuple[tuple[str, tuple[Any, ...]], ...]) -> None:
        """One coalesced batch of Asterisk's writes (contacts, member pauses) to the database."""
        await asyncio.to_thread(self._persist_batch, batch)

    def _persist_batch(self, batch: tuple[tuple[str, tuple[Any, ...]], ...]) -> None:
        upserts: list[tuple[str, str, int, dict[str, str]]] = []
        deletes: list[str] = []
        for kind, args in batch:
            if kind == "contact_upsert":
                cid, row = args
                fields = dict(row)
                try:
                    expiration = int(fields.get("expiration_time") or 0)
                except ValueError:
                    expiration = 0
                upserts.append((cid, fields.get("endpoint", ""), expiration, fields))
            elif kind == "contact_delete":
                deletes.append(args[0])
            elif kind == "member_pause":
                uid, paused, reason = args
                try:
                    self.config_repo.set_member_paused(uid, paused, reason)
                except (ValidationError, NotFoundError) as exc:  # never retried: it can never be written
                    log.error("realtime: pause of member %s not persisted: %s", uid, exc)
        if upserts or deletes:
            try:
                self.contact_repo.apply(upserts, deletes)
            except ValidationError:
                # one contact the database refuses must not block the others: write them one by one
                for item in upserts:
                    try:
                        self.contact_repo.apply([item], [])
                    except ValidationError as exc:
                        log.error("realtime: contact %s not persisted: %s", item[0], exc)
                if deletes:
                    self.contact_repo.apply([], deletes)

    # ------------------------------------------------------------------ lifecycle
    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _spawn_once(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """A short task that is not kept for shutdown (a refresh after a configuration change)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._short_tasks.add(task)
        task.add_done_callback(self._short_tasks.discard)
        task.add_done_callback(self._task_done)

    @staticmethod
    def _task_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died: %r", task.get_name(), task.exception())

    async def start(self, *, serve_http: bool = True) -> None:
        s = self.settings
        await asyncio.to_thread(upgrade, self.engine)
        contacts = await asyncio.to_thread(self.contact_repo.load_all)
        self.realtime.load_contacts((cid, tuple(fields.items())) for cid, _ep, _exp, fields in contacts)
        self.config.subscribe(self.realtime.apply_snapshot)
        await self.config.start()
        await self.media.start()
        self.config.subscribe(lambda _snap: self.media.notify_changed())  # other instances' uploads
        self.config.subscribe(self.nodes.on_snapshot)
        await self.agents.start()
        self.config.subscribe(self.agents.on_snapshot)
        await self.monitor.start()
        self.config.subscribe(self.monitor.on_snapshot)
        self._spawn(self.monitor.tick_loop(), "monitor-tick")
        self._spawn(self.accounts.maintenance_loop(s.audit_retention_days), "accounts-maintenance")
        self._spawn(self.config.watch_loop(), "config-watch")
        self._spawn(self.agents.flush_loop(), "agents-flush")
        self._spawn(self.media.sync_loop(), "media-sync")
        self._spawn(self.agents.timer_loop(), "agents-timers")
        self.realtime.attach(asyncio.get_running_loop())
        self._spawn(self.realtime.persist_loop(), "realtime-persist")
        self._spawn(self.journal.flush_loop(), "journal-flush")
        await self.webhooks.start()
        self.config.subscribe(lambda _snap: self._spawn_once(self.webhooks.refresh(), "webhooks-refresh"))
        self._spawn(self.webhooks.run(), "webhooks")
        self._spawn(self.recordings.intake_loop(), "recordings-intake")
        self._spawn(self.recordings.work_loop(), "recordings-work")
        self._spawn(self.recordings.maintenance_loop(), "recordings-maintenance")
        await self.agi.start(s.agi_host, s.agi_port)
        if serve_http:
            config = _http_config(
                self.asgi,
                s.http_host,
                s.http_port,
                # The event stream's messages are small JSON (a tile is ~700 bytes) sent to every screen: per
                # client deflate costs the server a compression per message per screen (py-spy: ~6 % of
                # Hotline's CPU with 70 screens, bench/WEB.md) to save bandwidth a LAN does not miss.
                ws_per_message_deflate=False,
            )
            self._http = _QuietServer(config)
            self._spawn(self._http.serve(), "http")
            while not self._http.started:
                if self._tasks[-1].done():
                    self._tasks[-1].result()
                await asyncio.sleep(0.01)
            if s.realtime_port:
                await self._start_realtime_listener(s)
        log.info("Hotline started: http %s:%d, agi %s:%d", s.http_host, s.http_port, s.agi_host, s.agi_port)

    async def _start_realtime_listener(self, s: Settings) -> None:
        """The realtime backend on its own port, served by its own lean HTTP protocol
        (asterisk/realtime_http.py) in a thread with its own event loop: the nodes' lookups (a channel or a
        SIP transaction waits for each) do not queue behind the web's work."""
        listener = RealtimeListener(self.realtime_asgi)
        loop = _new_loop(s.event_loop)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(listener.start(s.http_host, s.realtime_port))
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(listener.close())
                loop.close()

        # the listener's thread waits for the GIL at most this long when a lookup arrives (default 5 ms)
        sys.setswitchinterval(0.0005)
        thread = self._realtime_thread = threading.Thread(target=serve, name="hotline-realtime", daemon=True)
        thread.start()
        try:
            await asyncio.wait_for(asyncio.wrap_future(started), 10)
        except Exception as exc:
            raise RuntimeError(
                f"the realtime listener on {s.http_host}:{s.realtime_port} did not start: {exc}"
            ) from exc
        self._realtime_loop = loop

    async def stop(self) -> None:
        if self._realtime_loop is not None and self._realtime_thread is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended (and closed)
                self._realtime_loop.call_soon_threadsafe(self._realtime_loop.stop)
            await asyncio.to_thread(self._realtime_thread.join, 10)
            self._realtime_loop = None
        if self._http is not None:
            self._http.should_exit = True
        await self.agi.stop()
        await self.nodes.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.realtime.drain(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.journal.flush(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.agents.flush(), 5)
        with contextlib.suppress(Exception):
            await self.webhooks.stop(grace=5)
        with contextlib.suppress(Exception):
            await self.caller_lookup.aclose()
        for task in reversed(self._tasks):
            if task.get_name() == "http":
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 5)
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.engine.dispose()


async def run_forever(settings: Settings, on_started: Callable[[Hotline], None] | None = None) -> None:
    hotline = Hotline(settings)
    await hotline.start()
    if on_started:
        # off the loop: it may block (starting lab nodes, which call back into Hotline while booting)
        await asyncio.to_thread(on_started, hotline)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await hotline.stop()


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(settings: Settings, main: Coroutine[Any, Any, None]) -> None:
    """Run the service's main coroutine on the configured event loop."""
    if settings.event_loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
