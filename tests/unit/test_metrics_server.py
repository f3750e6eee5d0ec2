"""stream.metrics: the series budget (metrics_max_series) and the bounded HTTP server (issue 24 items 2 and 8)."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from driftsentinel.stream.metrics import HealthState, Metrics, serve


def _series(text: str) -> int:
    return sum(len(f.samples) for f in text_string_to_metric_families(text))


def test_labelled_series_stop_at_max_series_and_what_goes_over_is_counted() -> None:
    m = Metrics(max_series=1000)
    for i in range(5000):
        m.events.labels(f"model-{i}").inc()
        m.feature_mean.labels(f"model-{i}", "x").set(1.0)
    m.feature_mean.labels("model-0", "x").set(2.0)  # an existing series still updates
    text = m.render().decode()
    labelled = [s for f in text_string_to_metric_families(text) for s in f.samples if s.labels and "le" not in s.labels]
    assert len(labelled) <= 1000 and m.budget.used <= 1000
    assert _series(text) < 1100  # plus the fixed, unlabelled metrics
    assert m.series_dropped._value.get() > 0
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert values[("driftsentinel_feature_mean", (("feature", "x"), ("model", "model-0")))] == 2.0
    assert values[("driftsentinel_metrics_series_dropped_total", ())] == m.series_dropped._value.get()


def test_idle_sockets_never_keep_a_probe_out_and_are_closed_after_the_timeout() -> None:
    server = serve(Metrics(), HealthState(), "127.0.0.1", 0, idle_timeout_s=1.0, max_connections=64)
    port = server.server_address[1]
    idle: list[socket.socket] = []
    try:
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert r.status == 200 and r.read() == b"ok\n"
        assert server.waiting <= 64  # the oldest idle ones were closed to make room
        deadline = time.monotonic() + 30  # generous: a functional bound, not a speed check
        for s in idle:
            s.settimeout(max(deadline - time.monotonic(), 0.1))
            assert s.recv(1) == b""  # closed by the server (not a timeout of ours)
        assert server.waiting == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            assert r.status == 200 and b"driftsentinel_metrics_series" in r.read()
    finally:
        for s in idle:
            s.close()
        server.shutdown()


def test_a_request_that_stalls_is_closed_and_others_are_answered() -> None:
    server = serve(Metrics(), HealthState(), "127.0.0.1", 0, idle_timeout_s=1.0, max_connections=8)
    port = server.server_address[1]
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
    try:
        for s in stalled:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the rest: each holds a worker for one timeout
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=15) as r:
                assert r.status == 200
        for s in stalled:
            s.settimeout(15)
            # an answer or the end of the stream (a reset: closed with the partial request unread)
            with contextlib.suppress(ConnectionResetError):
                s.recv(1 << 16)  # returns: never left open (a timeout would raise)
    finally:
        for s in stalled:
            s.close()
        server.shutdown()
