"""Prometheus metrics (declared once, here) and the HTTP endpoint serving them.

Endpoints: ``/metrics`` (Prometheus text format), ``/healthz`` (the loop is alive),
``/readyz`` (partitions assigned and the broker answering). Label values are bounded:
models and features come from configuration or auto-discovery, which is capped
(``detectors.max_features``); invalid-event reasons are a closed set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "driftsentinel"


class Metrics:
    """All of driftsentinel's metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
            f"{PREFIX}_labels_joined", "Labels joined to their prediction by id (concept drift input).", ["model"],
            registry=r,
        )
        self.labels_unmatched = Counter(
            f"{PREFIX}_labels_unmatched",
            "Predictions that got no label, and labels that found no prediction, within the wait limits.",
            ["side"],
            registry=r,
        )
        self.labels_pending = Gauge(
            f"{PREFIX}_labels_pending", "Predictions waiting for a label, and labels waiting for a prediction.",
            ["side"], registry=r,
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
        self.stall_after_s = stall_after_s

    def beat(self) -> None:
        with self._lock:
            self._heartbeat = time.monotonic()

    def set_ready(self, reason: str | None) -> None:
        """``None`` = ready; otherwise the reason it is not."""
        with self._lock:
            self._ready_reason = reason or ""

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
        with self._lock:
            reason = self._broker_reason or self._ready_reason
        return (not reason), (reason or "ready")


def serve(metrics: Metrics, health: HealthState, host: str, port: int) -> ThreadingHTTPServer:
    """Start the HTTP endpoint in a daemon thread; ``port=0`` picks a free port."""
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics.render()),
        "/healthz": lambda: _probe(health.healthy()),
        "/readyz": lambda: _probe(health.ready()),
    }

    class Handler(BaseHTTPRequestHandler):
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

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def _probe(result: tuple[bool, str]) -> tuple[int, str, bytes]:
    ok, text = result
    return (200 if ok else 503), "text/plain", (text + "\n").encode()
