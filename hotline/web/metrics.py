"""Prometheus exposition: ``GET /metrics`` (docs/metrics.md lists every metric).

Three parts:
- `ServiceCollector` reads the services' live state at scrape time (calls, queues, agents, nodes, journal,
  realtime, AGI, webhooks, recordings, caller lookup, event stream): nothing is copied or kept up to date
  between scrapes, and no scrape queries the database except the recordings' per-state counts, which are
  refreshed at most every `RECORDINGS_REFRESH_S` seconds;
- `HTTPMetricsMiddleware` times every HTTP request of the web layer by route template (FastAPI's
  ``/api/calls/{call_id}``, never the raw path: the label set stays bounded);
- `metrics_routes` serves the instance's registry (`hotline.features.metrics.Metrics`, one per Hotline)
  to a caller holding the ``stats:read`` scope: an API key (``Authorization: Bearer hlk_...``, what a
  Prometheus scrape job sends) or a signed-in session.  No credentials: 401; no scope: 403.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.domain.config import AGENT_STATES
from hotline.errors import AuthenticationError, HotlineError, PermissionDeniedError
from hotline.features.metrics import Metrics
from hotline.web import ws
from hotline.web.context import WebServices
from hotline.web.errors import error_response

log = logging.getLogger(__name__)

RECORDINGS_REFRESH_S = 30.0
SCOPE = "stats:read"
QUEUE_AGENT_STATES = ("available", "ringing", "on_call", "wrap_up", "paused")
UNMATCHED = "unmatched"


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class ServiceCollector(Collector):
    """Gauges and counters read from the services when Prometheus scrapes."""

    def __init__(self, services: WebServices, *, clock: Callable[[], float] = time.time) -> None:
        self._s = services
        self._clock = clock
        self.recording_states: dict[str, int] | None = None
        self._recordings_at = float("-inf")
        self._refreshing = False

    def describe(self) -> Iterable[Metric]:
        return ()  # collect() reads live services; nothing to read before they start

    async def refresh_recordings(self) -> None:
        """Re-read recordings per state (one COUNT ... GROUP BY) when the cached figures are older than
        RECORDINGS_REFRESH_S; a database error keeps the last figures."""
        now = time.monotonic()
        if self._refreshing or now - self._recordings_at < RECORDINGS_REFRESH_S:
            return
        self._refreshing = True
        try:
            status = await self._s.recordings.status()
            states = status.get("states")
            if isinstance(states, dict):
                self.recording_states = {str(k): int(v) for k, v in states.items()}
            self._recordings_at = now
        finally:
            self._refreshing = False

    def collect(self) -> Iterator[Metric]:
        for part in (
            self._calls,
            self._queues,
            self._agents,
            self._nodes,
            self._journal,
            self._realtime,
            self._agi,
            self._webhooks,
            self._recordings,
            self._caller_lookup,
            self._events,
        ):
            try:
                yield from part()
            except Exception:  # one broken service must not hide the others' metrics
                log.exception("metrics: collecting %s failed", part.__name__)

    # ------------------------------------------------------------------ parts
    def _calls(self) -> Iterator[Metric]:
        yield _gauge(
            "hotline_active_calls", "Calls in progress (followed by the journal)", len(self._s.journal.active_calls())
        )
        yield _gauge("hotline_config_version", "Configuration version in memory", self._s.config.version or 0)

    def _queues(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily("hotline_queue_waiting_calls", "Callers waiting in the queue now", labels=["queue"])
        longest = GaugeMetricFamily(
            "hotline_queue_longest_wait_seconds", "How long the longest-waiting caller has waited", labels=["queue"]
        )
        agents = GaugeMetricFamily(
            "hotline_queue_agents", "Logged-in agents serving the queue, by state", labels=["queue", "state"]
        )
        today = GaugeMetricFamily(
            "hotline_queue_calls_today", "Queue calls since midnight (UTC), by outcome", labels=["queue", "outcome"]
        )
        sl = GaugeMetricFamily(
            "hotline_queue_service_level_today",
            "Share of today's answered calls answered within the queue's service level",
            labels=["queue"],
        )
        for tile in self._s.monitor.tiles():
            q = str(tile["queue"])
            waiting.add_metric([q], tile["waiting"])
            longest.add_metric([q], tile["longest_wait_s"])
            counts = tile["agents"]
            for state in QUEUE_AGENT_STATES:
                agents.add_metric([q, state], counts.get(state, 0))
            t = tile["today"]
            for outcome in ("offered", "answered", "abandoned"):
                today.add_metric([q, outcome], t[outcome])
            if t["service_level"] is not None:
                sl.add_metric([q], t["service_level"])
        yield from (waiting, longest, agents, today, sl)

    def _agents(self) -> Iterator[Metric]:
        summary = self._s.agents.summary()
        states = summary.get("states")
        counts = states if isinstance(states, dict) else {}
        fam = GaugeMetricFamily("hotline_agents", "Agents by state", labels=["state"])
        for state in AGENT_STATES:
            if state != "logged_out":  # agents never logged in have no status: the figure would be wrong
                fam.add_metric([state], counts.get(state, 0))
        yield fam
        errors = summary.get("write_errors")
        yield _counter(
            "hotline_agent_state_write_errors",
            "Agent state writes the database refused",
            errors if isinstance(errors, int) else 0,
        )

    def _nodes(self) -> Iterator[Metric]:
        now = self._clock()
        up = GaugeMetricFamily("hotline_node_connected", "1 when the node's AMI connection is up", labels=["node"])
        events = CounterMetricFamily("hotline_ami_events", "AMI events received from the node", labels=["node"])
        connects = CounterMetricFamily("hotline_ami_connects", "AMI (re)connections to the node", labels=["node"])
        age = GaugeMetricFamily(
            "hotline_ami_last_event_age_seconds", "Seconds since the node's last AMI event", labels=["node"]
        )
        for name, client in sorted(self._s.nodes.clients.items()):
            up.add_metric([name], 1 if client.connected else 0)
            events.add_metric([name], client.events_received)
            connects.add_metric([name], client.connects)
            if client.last_event_at is not None:
                age.add_metric([name], max(0.0, now - client.last_event_at))
        yield from (up, events, connects, age)
        yield _counter(
            "hotline_ami_listener_errors", "AMI events a feature's listener failed on", self._s.nodes.listener_errors
        )

    def _journal(self) -> Iterator[Metric]:
        j = self._s.journal
        yield _gauge("hotline_journal_pending", "Journal events and call records waiting to be written", j.pending())
        yield _counter("hotline_journal_events_written", "Journal events written to the database", j.written)
        yield _counter("hotline_journal_events_dropped", "Journal events dropped (queue full or refused)", j.dropped)

    def _realtime(self) -> Iterator[Metric]:
        r = self._s.realtime
        yield _counter("hotline_realtime_requests", "res_config_curl requests answered", r.requests)
        yield _counter("hotline_realtime_errors", "res_config_curl requests answered with an error", r.errors)
        yield _gauge("hotline_realtime_contacts", "PJSIP contacts (registrations) in memory", r.contact_count())
        yield _gauge("hotline_realtime_pending_writes", "Asterisk writes not yet in the database", r.pending_writes())

    def _agi(self) -> Iterator[Metric]:
        a = self._s.agi
        yield _gauge("hotline_agi_sessions_active", "FastAGI sessions running now", a.active)
        yield _counter("hotline_agi_sessions", "FastAGI sessions finished", a.sessions_done)
        yield _counter("hotline_agi_sessions_refused", "FastAGI connections refused (agi_max_sessions)", a.refused)

    def _webhooks(self) -> Iterator[Metric]:
        st = self._s.webhooks.stats()
        deliveries = CounterMetricFamily(
            "hotline_webhook_deliveries", "Webhook deliveries by result", labels=["result"]
        )
        for result in ("created", "delivered", "retried", "failed", "dropped"):
            deliveries.add_metric([result], st.get(result, 0))
        yield deliveries
        yield _gauge("hotline_webhook_queued", "Webhook events waiting to be stored", st.get("queued", 0))
        yield _gauge("hotline_webhook_in_flight", "Webhook deliveries being sent now", st.get("in_flight", 0))
        yield _gauge("hotline_webhooks", "Webhooks configured", st.get("webhooks", 0))

    def _recordings(self) -> Iterator[Metric]:
        rec = self._s.recordings
        if self.recording_states is not None:
            fam = GaugeMetricFamily(
                "hotline_recordings",
                f"Recordings by state (refreshed at most every {RECORDINGS_REFRESH_S:.0f} s)",
                labels=["state"],
            )
            for state, n in sorted(self.recording_states.items()):
                fam.add_metric([state], n)
            yield fam
        yield _counter("hotline_recordings_stored", "Recordings converted and stored", rec.stored)
        yield _counter(
            "hotline_recording_failures", "Recording conversion or upload attempts that failed", rec.failures
        )
        yield _counter("hotline_recording_events_dropped", "Recording facts dropped (intake full)", rec.dropped)

    def _caller_lookup(self) -> Iterator[Metric]:
        st = self._s.caller_lookup.stats()
        yield _counter("hotline_caller_lookups", "Caller lookups (earlier calls, customers, CRM)", st["lookups"])
        yield _counter("hotline_caller_lookup_cache_hits", "Caller lookups answered from the cache", st["cache_hits"])
        yield _counter("hotline_crm_requests", "Requests sent to the CRM", st["crm_requests"])
        yield _counter("hotline_crm_errors", "CRM requests that failed or timed out", st["crm_errors"])

    def _events(self) -> Iterator[Metric]:
        yield _counter("hotline_events_published", "Events published on the event bus", self._s.bus.position)
        m = ws.metrics  # process-wide: shared by every Hotline instance in the process
        yield _gauge(
            "hotline_event_stream_connections", "Event stream (WebSocket) clients connected now", m.connections
        )
        yield _counter(
            "hotline_event_stream_connections_opened", "Event stream connections accepted", m.connections_total
        )
        yield _counter("hotline_event_stream_events_sent", "Events sent to event stream clients", m.events_sent)
        yield _counter(
            "hotline_event_stream_clients_dropped", "Event stream clients closed as too slow", m.clients_dropped
        )
        refused = CounterMetricFamily(
            "hotline_event_stream_refused", "Event stream handshakes refused, by reason", labels=["reason"]
        )
        for reason, n in sorted(m.refused.items()):
            refused.add_metric([reason], n)
        yield refused


# ---------------------------------------------------------------------------------------- HTTP timing
def route_template(scope: Scope) -> str:
    """The template of the route that served the request (``/api/calls/{call_id}``), from what Starlette's
    routers left in the scope; ``unmatched`` when no route matched.  Mount prefixes in Hotline are fixed
    strings, so the mounted part of root_path is never a raw id."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    prefix = str(scope.get("root_path", ""))[len(str(scope.get("app_root_path", ""))) :]
    if isinstance(route, Mount):
        if isinstance(route.app, Router) or hasattr(route.app, "router"):
            return UNMATCHED  # a mounted application whose own routes found nothing
        return f"{prefix}/{{path}}"
    path = getattr(route, "path", None)
    return f"{prefix}{path}" if isinstance(path, str) else UNMATCHED


class HTTPMetricsMiddleware:
    """Times each HTTP request (not WebSocket) to `hotline_http_request_duration_seconds`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_http(
                str(scope.get("method", "")), route_template(scope), status, time.perf_counter() - start
            )


# ---------------------------------------------------------------------------------------- the endpoint
def _metrics_of(services: WebServices) -> Metrics:
    metrics = getattr(services, "metrics", None)
    if isinstance(metrics, Metrics):
        return metrics
    # not wired yet (WebServices without `metrics`): the scrape-time metrics still work
    return Metrics()


def metrics_routes(services: WebServices) -> list[BaseRoute]:
    metrics = _metrics_of(services)
    collector = ServiceCollector(services)
    metrics.add_collector("services", collector)

    async def endpoint(request: Request) -> Response:
        try:
            caller = await services.auth.caller(request)
        except HotlineError as exc:  # a throttled or wrong Basic login
            return error_response(exc)
        if caller is None:
            return error_response(AuthenticationError("metrics need an API key or a session with the stats:read scope"))
        if not caller.principal.has_scope(SCOPE):
            return error_response(PermissionDeniedError("metrics need the stats:read scope"))
        try:
            await collector.refresh_recordings()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("metrics: recordings per state not refreshed: %s", exc)
        # the text format Prometheus asked for in Accept (OpenMetrics, text 1.0.0 or 0.0.4)
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(metrics.registry), headers={"Content-Type": content_type})

    return [Route("/metrics", endpoint, methods=["GET"])]
