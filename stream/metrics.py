"""Prometheus metrics (declared once, here) and the HTTP endpoint serving them.

Endpoints: ``/metrics`` (Prometheus text format), ``/healthz`` (the loop is alive),
``/readyz`` (partitions assigned and the broker answering).

Series are bounded twice. Label values come from bounded sets: models per input partition
(``detectors.max_models``), features per model (``detectors.max_features``), closed sets of
reasons, detectors and statistics. And every labelled metric declared here draws on one
budget, ``metrics_max_series`` (a hard cap whatever the input): a new label set over it is
not created, and the attempt is counted in ``driftsentinel_metrics_series_dropped_total``,
so the memory and the scrape time of ``/metrics`` stay bounded.

The HTTP server (:class:`ProbeServer`) accepts on one thread and waits for requests with a
selector; only a connection that has sent something takes one of a few worker threads.
Idle connections are closed after ``metrics_idle_timeout_s``, and past
``metrics_max_connections`` the longest-idle one is closed, so idle sockets can never keep
a liveness probe out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as _Counter
from prometheus_client import Gauge as _Gauge

from driftsentinel.schemas.config import RunConfig

PREFIX = "driftsentinel"
_DEFAULTS = RunConfig()
log = logging.getLogger("driftsentinel")


class SeriesBudget:
    """The hard cap on a registry's labelled series; what goes over it is refused and counted.

    >>> b = SeriesBudget(3)
    >>> b.take(2), b.take(2), b.take(1), b.used, b.dropped
    (True, False, True, 3, 1)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self.on_drop: Callable[[], None] | None = None

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                self.dropped += 1
                ok = False
            else:
                self.used += n
                ok = True
        if not ok and self.on_drop is not None:
            self.on_drop()
        return ok


class _BoundedRegistry(CollectorRegistry):
    """A registry whose labelled metrics (of the classes below) share one :class:`SeriesBudget`."""

    def __init__(self, budget: SeriesBudget) -> None:
        super().__init__(auto_describe=True)
        self.budget = budget


def _admits(
    metric: Any, budget: SeriesBudget | None, series: int, values: tuple[object, ...], kwargs: dict[str, object]
) -> bool:
    """Is ``labels(*values, **kwargs)`` an existing series, or a new one the budget has room for?"""
    if budget is None:
        return True
    key = tuple(str(v) for v in values) if values else tuple(str(kwargs.get(n)) for n in metric._labelnames)
    return key in metric._metrics or budget.take(series)


class _Budgeted:
    """A prometheus-client metric whose new label sets draw on the registry's budget (``_SERIES``
    series each); over it, ``labels()`` returns an unregistered metric (the update is lost)."""

    _SERIES = 1

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        registry: CollectorRegistry | None = REGISTRY,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, documentation, labelnames, registry=registry, **kwargs)  # type: ignore[call-arg]
        self._budget: SeriesBudget | None = getattr(registry, "budget", None)
        self._sink: Self | None = None

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Self:
        if _admits(self, self._budget, self._SERIES, labelvalues, labelkwargs):
            return super().labels(*labelvalues, **labelkwargs)  # type: ignore[misc]
        if self._sink is None:
            self._sink = type(self)(self._original_name, self._documentation, registry=None)  # type: ignore[attr-defined]
        return self._sink


class Counter(_Budgeted, _Counter):
    """prometheus-client's Counter on the series budget (2 series each: ``_total`` and ``_created``)."""

    _SERIES = 2


class Gauge(_Budgeted, _Gauge):
    """prometheus-client's Gauge on the series budget (1 series each)."""


class Metrics:
    """All of driftsentinel's metrics, in their own registry; labelled series capped at ``max_series``."""

    def __init__(self, max_series: int = _DEFAULTS.metrics_max_series) -> None:
        self.budget = SeriesBudget(max_series)
        self.registry: CollectorRegistry = _BoundedRegistry(self.budget)
        r = self.registry
        self.series_dropped = _Counter(
            f"{PREFIX}_metrics_series_dropped",
            "Updates of label sets not created because the series were at metrics_max_series.",
            registry=r,
        )
        self.budget.on_drop = self.series_dropped.inc
        self.series = _Gauge(f"{PREFIX}_metrics_series", "Labelled series created (of metrics_max_series).", registry=r)
        self.series.set_function(lambda: self.budget.used)
        self.model_events_dropped = _Counter(
            f"{PREFIX}_model_events_dropped",
            "Events not monitored: their model is over detectors.max_models on its input partition.",
            registry=r,
        )
        self.events = Counter(f"{PREFIX}_events", "Valid events consumed.", ["model"], registry=r)
        self.invalid_events = Counter(
            f"{PREFIX}_invalid_events", "Malformed events sent to the DLQ, by reason.", ["reason"], registry=r
        )
        self.features_dropped = Counter(
            f"{PREFIX}_features_dropped",
            "Feature values not monitored: the model is at detectors.max_features, or include/exclude left them out.",
            ["model"],
            registry=r,
        )
        self.event_time_fallbacks = Counter(
            f"{PREFIX}_event_time_fallbacks",
            "Events whose ts was more than detectors.window_tests.event_time_tolerance_s from their message's "
            "Kafka timestamp: windowed by the message time instead.",
            ["model"],
            registry=r,
        )
        self.alerts = Counter(
            f"{PREFIX}_alerts", "DriftEvents published.", ["model", "feature", "detector", "status"], registry=r
        )
        self.drift_detected = Gauge(
            f"{PREFIX}_feature_drift_detected",
            "1 while the detector holds the feature in drift, else 0.",
            ["model", "feature", "detector"],
            registry=r,
        )
        self.drift_score = Gauge(
            f"{PREFIX}_feature_drift_score", "Drift statistic of a feature.", ["model", "feature", "stat"], registry=r
        )
        self.feature_mean = Gauge(
            f"{PREFIX}_feature_mean", "Mean of the feature's live window.", ["model", "feature"], registry=r
        )
        self.missing_ratio = Gauge(
            f"{PREFIX}_feature_missing_ratio", "Missing share in the live window.", ["model", "feature"], registry=r
        )
        self.window_size = Gauge(
            f"{PREFIX}_detector_window_size",
            "Values in the detector's current window.",
            ["model", "feature", "detector"],
            registry=r,
        )
        self._declare_loop(r)
        self._declare_skew_and_labels(r)

    def _declare_loop(self, r: CollectorRegistry) -> None:
        """The consume loop's own: lag, batch time, event time."""
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag", "High watermark minus position.", ["topic", "partition"], registry=r
        )
        self.batch_duration = Histogram(
            f"{PREFIX}_batch_duration_seconds",
            "Time to process one consumed batch (decode to commit).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.last_event_ts = Gauge(
            f"{PREFIX}_last_event_timestamp_seconds",
            "Event time (ts) of the newest event consumed.",
            ["topic", "partition"],
            registry=r,
        )
        self.dlq_truncated = _Counter(
            f"{PREFIX}_dlq_truncated",
            "DLQ records (key, value, headers) over the DLQ bound: written cut, with the original size and sha256.",
            registry=r,
        )
        self.transaction_aborts = _Counter(
            f"{PREFIX}_transaction_aborts",
            "Batches whose transaction was aborted (the input is rewound and re-read).",
            registry=r,
        )
        self.checkpoints_rejected = Counter(
            f"{PREFIX}_checkpoints_rejected",
            "State records set aside on restore (the partition is rebuilt from its earliest offset), by reason: "
            "unreadable, shape, size, offset.",
            ["reason"],
            registry=r,
        )

    def _declare_skew_and_labels(self, r: CollectorRegistry) -> None:
        """Train/serve skew (``driftsentinel skew``) and late labels (``kafka.labels_topic``)."""
        self.feature_skew_ratio = Gauge(
            f"{PREFIX}_feature_skew_ratio",
            "Share of joined serving/offline pairs whose values differ beyond tolerance (last join window).",
            ["model", "feature"],
            registry=r,
        )
        self.join_unmatched = Counter(
            f"{PREFIX}_join_unmatched",
            "Ids evicted from the skew join window without a partner, by the side they were seen on.",
            ["model", "side"],
            registry=r,
        )
        # late labels (kafka.labels_topic)
        self.labels_joined = Counter(
            f"{PREFIX}_labels_joined",
            "Labels joined to their prediction by id (concept drift input).",
            ["model"],
            registry=r,
        )
        self.labels_unmatched = Counter(
            f"{PREFIX}_labels_unmatched",
            "Predictions that got no label, and labels that found no prediction, within the wait limits.",
            ["side"],
            registry=r,
        )
        self.labels_pending = Gauge(
            f"{PREFIX}_labels_pending",
            "Predictions waiting for a label, and labels waiting for a prediction.",
            ["side"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthState:
    """What /healthz and /readyz answer; updated by the consumer loop."""

    def __init__(self, stall_after_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._heartbeat = time.monotonic()
        self._ready_reason = "starting"
        self._broker_reason = ""
        # Reasons that outlast the next commit (a rejected checkpoint, an undeliverable DLQ
        # record): reason -> monotonic expiry. Bounded: the oldest goes when full.
        self._lasting: dict[str, float] = {}
        self.stall_after_s = stall_after_s

    def beat(self) -> None:
        with self._lock:
            self._heartbeat = time.monotonic()

    def set_ready(self, reason: str | None) -> None:
        """``None`` = ready; otherwise the reason it is not."""
        with self._lock:
            self._ready_reason = reason or ""

    def set_ready_for(self, reason: str, seconds: float) -> None:
        """Not ready for ``seconds`` (from now) with ``reason``, whatever :meth:`set_ready` says meanwhile."""
        with self._lock:
            self._lasting.pop(reason, None)
            self._lasting[reason] = time.monotonic() + seconds
            while len(self._lasting) > 16:
                del self._lasting[next(iter(self._lasting))]

    def set_broker(self, reason: str | None) -> None:
        """The broker watch's verdict: ``None`` = the broker answers."""
        with self._lock:
            self._broker_reason = reason or ""

    def broker_ok(self) -> bool:
        with self._lock:
            return not self._broker_reason

    def healthy(self) -> tuple[bool, str]:
        with self._lock:
            age = time.monotonic() - self._heartbeat
        ok = age < self.stall_after_s
        return ok, "ok" if ok else f"loop stalled for {age:.0f}s"

    def ready(self) -> tuple[bool, str]:
        now = time.monotonic()
        with self._lock:
            for gone in [r for r, until in self._lasting.items() if until <= now]:
                del self._lasting[gone]
            lasting = next(reversed(self._lasting), "")
            reason = self._broker_reason or self._ready_reason or lasting
        return (not reason), (reason or "ready")


def serve(
    metrics: Metrics,
    health: HealthState,
    host: str,
    port: int,
    *,
    idle_timeout_s: float = _DEFAULTS.metrics_idle_timeout_s,
    max_connections: int = _DEFAULTS.metrics_max_connections,
) -> ProbeServer:
    """Start the HTTP endpoint in a daemon thread; ``port=0`` picks a free port."""
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics.render()),
        "/healthz": lambda: _probe(health.healthy()),
        "/readyz": lambda: _probe(health.ready()),
    }

    class Handler(BaseHTTPRequestHandler):
        timeout = idle_timeout_s  # each read of a request that has started (StreamRequestHandler.setup)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            route = routes.get(self.path.split("?", 1)[0])
            code, ctype, body = route() if route else (404, "text/plain", b"not found\n")
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # silence per-request logs
            return

    return ProbeServer(Handler, host, port, idle_timeout_s=idle_timeout_s, max_connections=max_connections).start()


class MetricsPortError(RuntimeError):
    """The metrics/probe port cannot be bound (taken, or not allowed): the process cannot start."""


class ProbeServer:
    """A small HTTP server whose connections and idle time are bounded.

    One thread accepts and waits, with a selector, for each connection's first bytes; a
    connection that has sent something is handed to one of ``workers`` threads. A
    connection that sends nothing for ``idle_timeout_s`` is closed, and at
    ``max_connections`` waiting connections the longest-waiting is closed to make room: a
    flood of idle sockets costs file descriptors only up to the bound, no threads, and
    never keeps a new probe waiting (the listen backlog is deep, the accept loop never blocks).
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        host: str,
        port: int,
        *,
        idle_timeout_s: float,
        max_connections: int,
        workers: int = 4,
    ) -> None:
        self.handler, self.idle_timeout_s, self.max_connections = handler, idle_timeout_s, max_connections
        try:
            self._sock = socket.create_server((host, port), backlog=max(128, max_connections))
        except OSError as exc:
            raise MetricsPortError(
                f"cannot serve metrics on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc} — another "
                "process (another "
                "driftsentinel?) holds the port: choose another with --metrics-port or metrics_port (0: any free port)"
            ) from None
        self._sock.setblocking(False)
        self.server_address: tuple[str, int] = self._sock.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._waiting: dict[socket.socket, float] = {}  # accepted, no request yet -> since (oldest first)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="metrics-http")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="metrics-http", daemon=True)

    @property
    def waiting(self) -> int:
        """Connections open and not yet sending (tests read it)."""
        return len(self._waiting)

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop accepting, close every waiting connection and the socket (requests in flight finish)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
        for conn in list(self._waiting):
            self._close(conn)
        self._selector.close()
        self._sock.close()
        self._pool.shutdown(wait=False)

    server_close = shutdown

    def _serve(self) -> None:
        tick = min(0.25, self.idle_timeout_s / 4)
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=tick):
                if key.fileobj is self._sock:
                    self._accept()
                else:
                    self._dispatch(key.fileobj)  # type: ignore[arg-type]
            self._expire(time.monotonic() - self.idle_timeout_s)

    def _accept(self) -> None:
        for _ in range(256):  # a burst at a time, then the ready connections get their turn
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: make room, retry on the next turn
                log.warning("metrics endpoint: accept failed (%s); closing the longest-idle connection", exc)
                if self._waiting:
                    self._close(next(iter(self._waiting)))
                return
            while len(self._waiting) >= self.max_connections:
                self._close(next(iter(self._waiting)))
            conn.setblocking(False)
            self._waiting[conn] = time.monotonic()
            self._selector.register(conn, selectors.EVENT_READ)

    def _dispatch(self, conn: socket.socket) -> None:
        self._selector.unregister(conn)
        self._waiting.pop(conn, None)
        try:
            self._pool.submit(self._handle, conn)
        except RuntimeError:  # shutting down
            conn.close()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.setblocking(True)
            self.handler(conn, conn.getpeername(), self)  # type: ignore[arg-type]
        except OSError:
            pass  # the peer went away or stalled past the timeout: nothing to answer
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()

    def _expire(self, before: float) -> None:
        while self._waiting:
            conn, since = next(iter(self._waiting.items()))
            if since > before:
                return
            self._close(conn)

    def _close(self, conn: socket.socket) -> None:
        self._waiting.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn)
        conn.close()


def _probe(result: tuple[bool, str]) -> tuple[int, str, bytes]:
    ok, text = result
    return (200 if ok else 503), "text/plain", (text + "\n").encode()
