"""What a person reads in the sidecar's log: a short start-up line, offsets in words,
librdkafka's repeats rate limited, a broker outage said once in words (and its end once)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, Producer

from driftsentinel.detectors.engine import Engine
from driftsentinel.schemas import load_config
from driftsentinel.stream.broker_watch import Lifecycle, Reachability, start_broker_watch
from driftsentinel.stream.clients import (
    Outages,
    RateLimit,
    effective_config_json,
    effective_config_line,
    rdkafka_log,
)
from driftsentinel.stream.metrics import HealthState
from driftsentinel.stream.partitions import Partitions
from driftsentinel.stream.restore import plan_restore, start_words
from driftsentinel.stream.transaction import Watchdog

FAIL_TEXT = (
    "[thrd:127.0.0.1:9092/bootstrap]: 127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: "
    "Connection refused (after {ms}ms in state CONNECT)"
)


def _rdkafka_record(client: str = "rdkafka#producer-1", ms: int = 0) -> logging.LogRecord:
    """A record as confluent-kafka's ``logger`` setting makes it (facility, client, text)."""
    args = ("FAIL", client, FAIL_TEXT.format(ms=ms))
    return logging.LogRecord("driftsentinel.rdkafka", logging.ERROR, "", 0, "%s [%s] %s", args, None)


# ---------------------------------------------------------------- the start-up line
def test_startup_line_is_short_and_says_what_a_person_checks() -> None:
    config = load_config(
        None,
        {
            "kafka.bootstrap_servers": "127.0.0.1:9092",
            "kafka.input_topic": "demo-features-1796545874",
            "kafka.alerts_topic": "demo-features-1796545874-alerts",
            "kafka.dlq_topic": "demo-features-1796545874-dlq",
            "kafka.group_id": "demo",
            "metrics_port": 8000,
            "idle_exit": 10,
            "kafka.common": {"sasl.password": "hunter2", "security.protocol": "SASL_SSL"},
        },
    )
    line = effective_config_line(config)
    assert len(line) < 300, line
    for part in (
        "input=demo-features-1796545874",
        "alerts=demo-features-1796545874-alerts",
        "bootstrap=127.0.0.1:9092",
        "group=demo",
        "backend=kernel",
        "reference=none",
        "features=discovered",
        "metrics_port=8000",
    ):
        assert part in line
    assert "hunter2" not in line and "kafka.common.sasl.password" in line  # the name of a change, never its value
    full = effective_config_json(config)  # the whole config, at DEBUG
    assert len(full) > 1500 and "hunter2" not in full and '"window_size": 5000' in full


def test_startup_line_stays_short_with_many_changes() -> None:
    consumer = {f"some.very.long.librdkafka.property.number.{i}": i for i in range(40)}
    line = effective_config_line(load_config(None, {"kafka.consumer": consumer, "batch_size": 10}))
    assert len(line) < 300, line
    assert "more" in line


def test_startup_line_counts_a_reference_profiles_features(tmp_path) -> None:
    import numpy as np

    from driftsentinel.detectors.profile import build_profile

    rng = np.random.default_rng(0)
    profile = build_profile({f"f{i}": rng.normal(size=200).tolist() for i in range(7)}, source="t")
    path = tmp_path / "ref.json"
    path.write_text(profile.model_dump_json())
    line = effective_config_line(load_config(None, {"reference": str(path)}))
    assert "features=7(reference)" in line and len(line) < 300 + len(str(path))


# ---------------------------------------------------------------- offsets in words
def test_sentinel_offsets_are_said_in_words() -> None:
    fresh = start_words(OFFSET_INVALID, OFFSET_BEGINNING, 0)
    assert fresh == "no committed offset, reading from the earliest"
    assert start_words(1234, 1234, 1234) == "resuming at offset 1,234"
    rebuilt = start_words(1234, OFFSET_BEGINNING, 1234)
    assert "-2" not in rebuilt and "the earliest offset" in rebuilt
    for text in (fresh, rebuilt, start_words(1234, 1000, 1234)):
        assert "-1001" not in text and "-2," not in text


def test_assignment_log_line_says_offsets_in_words(caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(None, {"kafka.input_topic": "t"})
    engine = Engine(config, "t", None, None)
    plan = plan_restore([("t", 0), ("t", 1)], {("t", 1): 5678}, {}, {}, None)
    caplog.set_level(logging.INFO, logger="driftsentinel")
    Partitions(config, engine, checkpointing=False).apply(plan, None)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("partition t[")]
    assert lines == [
        "partition t[0]: no committed offset, reading from the earliest",
        "partition t[1]: resuming at offset 5,678",
    ]


# ---------------------------------------------------------------- librdkafka's repeats
class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _logger_with(*filters: logging.Filter) -> Iterator[tuple[logging.Logger, _Collect]]:
    logger = logging.getLogger(f"test_logs.{id(filters)}")
    logger.propagate, logger.level = False, logging.DEBUG
    collect = _Collect()
    logger.addHandler(collect)
    for f in filters:
        logger.addFilter(f)
    try:
        yield logger, collect
    finally:
        logger.removeHandler(collect)
        for f in filters:
            logger.removeFilter(f)


def test_a_burst_of_identical_librdkafka_lines_is_one_record_then_counts() -> None:
    now = [0.0]
    with _logger_with(RateLimit(every_s=60.0, clock=lambda: now[0])) as (logger, collect):
        for i in range(1000):  # 1,000 lines over 10 minutes, from 3 clients, durations varying
            now[0] = i * 0.6
            record = _rdkafka_record(client=f"rdkafka#{('producer', 'consumer', 'admin')[i % 3]}-1", ms=i)
            logger.handle(record)
        assert 1 <= len(collect.records) <= 11  # the first, then one per minute carrying the count
        now[0] += 60.0
        logger.handle(_rdkafka_record())  # a line after the last window carries that window's count
    said = collect.records[0].getMessage()
    assert "Connection refused" in said and "more like this" not in said
    counted = [int(r.getMessage().split("[")[-1].split(" more")[0]) for r in collect.records[1:]]
    assert len(collect.records) + sum(counted) == 1001  # every line is said or counted


def test_the_module_logger_rate_limits_a_real_burst(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="driftsentinel.rdkafka")
    prefixes = ("127.0.0.1:9092/bootstrap", "127.0.0.1:9092/1", "TxnCoordinator: 127.0.0.1:9092")
    for i in range(1000):  # one failure of 4 clients, through 3 broker handles, with varying durations
        text = FAIL_TEXT.format(ms=i % 7).replace("]: 127.0.0.1:9092/bootstrap:", f"]: {prefixes[i % 3]}:")
        args = ("FAIL", f"rdkafka#producer-{i % 4 + 100}", text)
        rdkafka_log.handle(logging.LogRecord(rdkafka_log.name, logging.ERROR, "", 0, "%s [%s] %s", args, None))
    assert len([r for r in caplog.records if r.name == "driftsentinel.rdkafka"]) <= 1


def test_an_outage_said_in_words_holds_librdkafka_lines_back() -> None:
    held = Outages()
    words = logging.getLogger("test_logs.words")
    with _logger_with(held) as (logger, collect), _logger_with() as (words_logger, said):
        wall = iter([100.0, 142.0]).__next__
        reach = Reachability("127.0.0.1:9092", held, words_logger, wall=wall)
        logger.handle(_rdkafka_record())  # before the outage is said: passes
        assert reach.failed("Failed to get metadata")
        for i in range(500):
            logger.handle(_rdkafka_record(ms=i))
            assert not reach.failed("Failed to get metadata")
        assert reach.answered() and not reach.answered()
        logger.handle(_rdkafka_record())  # after it: passes again
    assert len(collect.records) == 2
    lines = [r.getMessage() for r in said.records]
    assert len(lines) == 2, lines
    assert "broker 127.0.0.1:9092 unreachable since" in lines[0]
    assert "Connect to ipv4#127.0.0.1:9092 failed: Connection refused" in lines[0]  # librdkafka's reason
    assert "reachable again after 42 s (500 librdkafka connection messages held back)" in lines[1]
    del words


# ---------------------------------------------------------------- a real client, a real broker
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Proxy:
    """A TCP forwarder from 127.0.0.1:``port`` to the real broker: the broker 'comes back' on a closed port."""

    def __init__(self, port: int, upstream: str) -> None:
        host, _, up_port = upstream.rpartition(":")
        self.upstream = (host, int(up_port))
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.2)
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(self.upstream, timeout=5)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        for s in [self.server, *self.sockets]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.mark.integration
def test_a_closed_port_is_said_unreachable_once_then_reachable_again(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="driftsentinel")
    port = _free_port()
    settings = {"bootstrap.servers": f"127.0.0.1:{port}", "logger": rdkafka_log, "reconnect.backoff.max.ms": 500}
    producer = Producer(settings)  # another client failing meanwhile, as the sidecar's consumer and producer do
    life = Lifecycle()
    life.starting = False
    watch = start_broker_watch(settings, HealthState(), Watchdog(45.0), life, interval_s=0.2)

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    def poll_until(done: float, until: str | None = None) -> None:
        while time.monotonic() < done and not (until and said(until)):
            producer.poll(0.1)

    proxy = None
    try:
        poll_until(time.monotonic() + 15, "unreachable since")
        poll_until(time.monotonic() + 3)  # three more seconds of refused connections, several a second
        assert len(said(f"broker 127.0.0.1:{port} unreachable since")) == 1
        assert "Connection refused" in said("unreachable since")[0]
        assert len([r for r in caplog.records if r.name == "driftsentinel.rdkafka"]) <= 3
        proxy = _Proxy(port, kafka_bootstrap)
        poll_until(time.monotonic() + 20, "reachable again")
        assert len(said(f"broker 127.0.0.1:{port} reachable again after")) == 1
    finally:
        life.done = True
        watch.join(5)
        if proxy is not None:
            proxy.close()
    assert not watch.is_alive()


def test_a_first_start_says_when_it_gives_up() -> None:
    with _logger_with() as (words_logger, said):
        reach = Reachability("127.0.0.1:1", Outages(), words_logger)
        assert reach.failed("Local: Broker transport failure", first_start=True)
        reach.close()
    line = said.records[0].getMessage()
    assert "unreachable since" in line and "start-up gives up after 30 s" in line and "waiting for it" not in line


def test_log_level_debug_shows_our_debug_lines_not_the_libraries() -> None:
    """``run --log-level debug``: our DEBUG lines (the full effective config) show, libraries stay at INFO."""
    from driftsentinel.stream.cli import _setup_logging, build_parser

    assert build_parser().parse_args(["run", "--log-level", "debug"]).log_level == "debug"
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("driftsentinel").level
    try:
        _setup_logging("text", "debug")
        assert logging.getLogger("driftsentinel.stream.consumer").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("numba").isEnabledFor(logging.DEBUG)
        _setup_logging("text")
        assert not logging.getLogger("driftsentinel.stream.consumer").isEnabledFor(logging.DEBUG)
    finally:
        root.handlers[:], level, ours = saved
        root.setLevel(level)
        logging.getLogger("driftsentinel").setLevel(ours)
