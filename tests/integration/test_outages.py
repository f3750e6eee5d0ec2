"""Long broker outages and SIGTERM during one (issue 24 items 4 and 5), on a broker of the test's own.

The sidecar waits for the broker however long it is away (readiness red, liveness green),
resumes by itself and stays exactly-once: the alerts topic reads as the engine decides
offline. A process the transactional-call watchdog re-executed (``DRIFTSENTINEL_REEXEC``)
waits for the broker at start-up instead of failing. SIGTERM during an outage exits 0
within ``shutdown_timeout_s``; what was not committed is re-read by the next run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from driftsentinel.stream.broker_watch import REEXEC_ENV
from tests.integration.sidecar_helpers import SidecarProcess, sample
from tests.integration.test_exactly_once import (
    alert_keys,
    checkpoint_config,
    make_partition_values,
    offline_expected,
    per_key,
)

pytestmark = pytest.mark.integration

N = 30_000  # events on one partition
OUTAGE_S = 20.0
CONFIG = {**checkpoint_config(5_000), "batch_size": 500, "txn_stuck_s": 5, "shutdown_timeout_s": 10}


class Broker:
    """The project's launcher on a free port and its own data directory; stopped and started by the tests."""

    def __init__(self, data_dir: Path) -> None:
        from driftsentinel.stream import local_kafka

        self.lk, self.data_dir = local_kafka, data_dir
        self.port = local_kafka.free_port()
        self.bootstrap = self.start()

    def start(self) -> str:
        return str(self.lk.start(port=self.port, data_dir=self.data_dir, timeout=120))

    def stop(self) -> None:
        self.lk.stop(self.data_dir)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("outage-broker"))
    try:
        yield b
    finally:
        b.stop()


def _topic(bootstrap: str, name: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    return name


def _produce(bootstrap: str, topic: str, x: np.ndarray, start: int, stop: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "enable.idempotence": True})
    for i in range(start, stop):
        doc = {
            "model": "m0",
            "ts": 1.7e9 + i,
            "id": f"0-{i}",
            "features": {f"f{j}": float(v) for j, v in enumerate(x[i])},
        }
        while True:
            try:
                producer.produce(topic, key=b"m0", value=json.dumps(doc).encode(), partition=0)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


def _events(s: dict) -> float:
    return sample(s, "driftsentinel_events_total", model="m0") or 0


def _outage(broker: Broker, sidecar: SidecarProcess, seconds: float) -> tuple[bool, bool]:
    """Stop the broker for ``seconds``; the sidecar must stay alive. Returns (readyz red seen, healthz green seen)."""
    broker.stop()
    red = green = False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert sidecar.proc.poll() is None, sidecar.log()[-3000:]
        red |= sidecar.probe("/readyz") == 503
        green |= sidecar.probe("/healthz") == 200
        time.sleep(0.5)
    broker.start()
    return red, green


def _expected(x: np.ndarray, group: str, topic: str) -> dict:
    return per_key(offline_expected({0: x}, group, topic))


def test_a_long_outage_is_waited_out_and_the_alerts_stay_exact(broker: Broker, tmp_path: Path) -> None:
    """A 20 s outage with a 5 s watchdog: no exit, readiness red, liveness green, resumed by itself;
    the events produced after the outage are processed; the alerts read exactly as offline."""
    topic = _topic(broker.bootstrap, f"outage-{time.monotonic_ns()}")
    x = make_partition_values(0, N)
    _produce(broker.bootstrap, topic, x, 0, N // 2)
    sidecar = SidecarProcess(broker.bootstrap, topic, "--idle-exit", "8", tmp=tmp_path, config=CONFIG)
    try:
        sidecar.wait_until(lambda s: _events(s) > 1_000, 60)
        red, green = _outage(broker, sidecar, OUTAGE_S)
        assert red, "readyz stayed ready while the broker was away"
        assert green, "healthz was never green while the sidecar waited"
        # ready again by itself; when the watchdog restarted it in place mid-transaction (a loaded
        # machine), the offsets that transaction holds wait for the broker to abort it: its
        # transaction.timeout.ms (60 s) plus the abort scan, so up to about 75 s more
        sidecar.wait_until(lambda s: sidecar.probe("/readyz") == 200, 150)
        _produce(broker.bootstrap, topic, x, N // 2, N)
        assert sidecar.wait(90) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    assert "cannot start" not in sidecar.log(), sidecar.log()[-3000:]
    got = per_key(alert_keys(broker.bootstrap, sidecar.alerts_topic))
    assert got == _expected(x, sidecar.group, topic)
    print(f"outage: re-executed={'restarting in place' in sidecar.log()}, alerts={sum(map(len, got.values()))}")  # noqa: T201


def test_a_reexecuted_process_waits_for_the_broker_at_start_up(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the re-exec marker and the broker away, start-up waits (readiness red, liveness green), then runs."""
    topic = _topic(broker.bootstrap, f"reexec-{time.monotonic_ns()}")
    x = make_partition_values(0, 5_000)
    _produce(broker.bootstrap, topic, x, 0, 5_000)
    broker.stop()
    monkeypatch.setenv(REEXEC_ENV, "1")
    sidecar = SidecarProcess(broker.bootstrap, topic, "--idle-exit", "6", tmp=tmp_path, config=CONFIG)
    try:
        red = green = False
        deadline = time.monotonic() + 40  # beyond STARTUP_TIMEOUT_S (30 s), which ends a first start with 3
        while time.monotonic() < deadline:
            assert sidecar.proc.poll() is None, sidecar.log()[-3000:]
            red |= sidecar.probe("/readyz") == 503
            green |= sidecar.probe("/healthz") == 200
            time.sleep(0.5)
        assert red and green, (red, green)
        broker.start()
        assert sidecar.wait(90) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    got = per_key(alert_keys(broker.bootstrap, sidecar.alerts_topic))
    assert got == _expected(x, sidecar.group, topic)


def test_sigterm_during_an_outage_exits_0_within_the_bound_and_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    """SIGTERM with the broker away: exit 0 within shutdown_timeout_s (10 s here, plus the process's own
    exit); a second run after the broker returns completes the stream exactly."""
    topic = _topic(broker.bootstrap, f"sigterm-{time.monotonic_ns()}")
    x = make_partition_values(0, N)
    _produce(broker.bootstrap, topic, x, 0, N)
    first = SidecarProcess(broker.bootstrap, topic, "--idle-exit", "8", tmp=tmp_path, config=CONFIG)
    try:
        first.wait_until(lambda s: _events(s) > 1_000, 60)
        broker.stop()
        first.wait_until(lambda s: first.probe("/readyz") == 503, 30)
        sent = time.monotonic()
        first.terminate()
        code = first.wait(CONFIG["shutdown_timeout_s"] + 15)
        took = time.monotonic() - sent
    finally:
        first.kill()
        broker.start()
    assert code == 0, first.log()[-3000:]
    second = SidecarProcess(broker.bootstrap, topic, "--idle-exit", "8", tmp=tmp_path, config=CONFIG, group=first.group)
    try:
        assert second.wait(90) == 0, second.log()[-3000:]
    finally:
        second.kill()
    got = per_key(alert_keys(broker.bootstrap, first.alerts_topic))
    assert got == _expected(x, first.group, topic)
    print(f"sigterm during outage: exit {code} after {took:.1f}s")  # noqa: T201
