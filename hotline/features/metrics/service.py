"""Hotline's latency metrics and the registry they live in: one `Metrics` per Hotline instance.

`Metrics` owns a `CollectorRegistry` (never prometheus_client's process-wide default: two Hotline
instances run in one test process) and the histograms that only a hook can fill, because the thing
measured is over before anyone scrapes:

- `observe_realtime(family, op, seconds)`: RealtimeASGI's `observe` hook, once per res_config_curl request;
- `observe_agi(script, seconds)` / `timed_agi_routes(routes)`: one FastAGI session per script;
- `on_ami(node, msg)`: an AMI listener; the lag of each event is now - its `Timestamp` header
  (manager.conf `timestampevents = yes`);
- `observe_http(method, route, status, seconds)`: the web layer's middleware (hotline/web/metrics.py).

Gauges and counters that services already keep are not copied here: hotline/web/metrics.py reads them
at scrape time.  Invariants: label values are bounded (families, operations, scripts and nodes come from
fixed sets or the configuration; anything else is "other"); the hooks never raise and never await; the
AMI hook, which runs for every event, does one dictionary lookup, one float parse and two updates.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TypeVar

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hotline.protocols.ami import Message

log = logging.getLogger(__name__)

T = TypeVar("T")

FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# an AGI session lasts from a few milliseconds (a routing decision) to minutes (an IVR menu, a login)
AGI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REALTIME_OPS = frozenset({"single", "multi", "store", "update", "destroy", "require", "static"})
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_NODES = 256  # AMI lag series; node names come from the configuration, this is a backstop


def ami_lag(msg: Message, now: float) -> float | None:
    """Seconds between Asterisk stamping an event (`Timestamp: 1718000000.123456`) and `now`;
    None when the event has no usable timestamp (timestampevents off, a garbled value)."""
    stamp = msg.get("Timestamp")
    if not stamp:
        return None
    try:
        sent = float(stamp)
    except ValueError:
        return None
    if not math.isfinite(sent) or sent <= 0:  # NaN, infinity or nonsense: not a time
        return None
    return now - sent


class Metrics:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        r = self.registry
        self.realtime_duration = Histogram(
            "hotline_realtime_request_duration_seconds",
            "Time to answer one res_config_curl request, by realtime family and operation",
            ("family", "op"),
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.agi_duration = Histogram(
            "hotline_agi_session_duration_seconds",
            "Duration of one FastAGI session (the routing decision and what the script asks of the call), by script",
            ("script",),
            buckets=AGI_BUCKETS,
            registry=r,
        )
        self.ami_lag = Histogram(
            "hotline_ami_lag_seconds",
            "Receive time minus the AMI event's Timestamp header, by node (negative lags count as 0)",
            ("node",),
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.http_duration = Histogram(
            "hotline_http_request_duration_seconds",
            "Time to answer one HTTP request of the web layer (REST, XML-RPC, pages), by route template",
            ("method", "route", "status"),
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self._ami_hist: dict[str, Histogram] = {}
        # the last lag per node, a plain dict (no lock per event), exposed as a gauge at scrape time
        self.ami_last_lag: dict[str, float] = {}
        self._collectors: dict[str, Collector] = {}
        r.register(_LastLagCollector(self.ami_last_lag))

    # ------------------------------------------------------------------ registry
    def add_collector(self, name: str, collector: Collector) -> None:
        """Register a scrape-time collector under `name`, replacing one registered before under it."""
        old = self._collectors.pop(name, None)
        if old is not None:
            self.registry.unregister(old)
        self.registry.register(collector)
        self._collectors[name] = collector

    # ------------------------------------------------------------------ realtime
    def observe_realtime(self, family: str, op: str, seconds: float) -> None:
        """RealtimeASGI's hook; it names a family the backend does not serve "other" already."""
        if op not in REALTIME_OPS:
            op = "other"
        self.realtime_duration.labels(family, op).observe(seconds)

    # ------------------------------------------------------------------ AGI
    def observe_agi(self, script: str, seconds: float) -> None:
        self.agi_duration.labels(script).observe(seconds)

    def timed_agi_routes(
        self, routes: Mapping[str, Callable[[T], Awaitable[None]]]
    ) -> dict[str, Callable[[T], Awaitable[None]]]:
        """The same FastAGI routes, each timed into `hotline_agi_session_duration_seconds{script}`.
        A session that raises is timed too (the AGI server still sees the exception)."""
        return {script: self._timed(script, handler) for script, handler in routes.items()}

    def _timed(self, script: str, handler: Callable[[T], Awaitable[None]]) -> Callable[[T], Awaitable[None]]:
        child = self.agi_duration.labels(script)
        clock = time.perf_counter

        async def timed(session: T) -> None:
            start = clock()
            try:
                await handler(session)
            finally:
                child.observe(clock() - start)

        timed.__name__ = getattr(handler, "__name__", script)
        return timed

    # ------------------------------------------------------------------ AMI
    def on_ami(self, node: str, msg: Message) -> None:
        """AMI listener: the lag of every timestamped event, per node."""
        lag = ami_lag(msg, self._clock())
        if lag is None:
            return
        hist = self._ami_hist.get(node)
        if hist is None:
            if len(self._ami_hist) >= MAX_NODES:
                return
            hist = self._ami_hist[node] = self.ami_lag.labels(node)
        hist.observe(lag if lag > 0 else 0.0)
        self.ami_last_lag[node] = lag

    # ------------------------------------------------------------------ HTTP
    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in HTTP_METHODS:
            method = "other"
        self.http_duration.labels(method, route, f"{status // 100}xx").observe(seconds)


class _LastLagCollector(Collector):
    def __init__(self, last: dict[str, float]) -> None:
        self._last = last

    def collect(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily(
            "hotline_ami_last_lag_seconds",
            "Lag of the last timestamped AMI event from the node (negative: the clocks disagree)",
            labels=["node"],
        )
        for node, lag in sorted(self._last.items()):
            fam.add_metric([node], lag)
        yield fam
