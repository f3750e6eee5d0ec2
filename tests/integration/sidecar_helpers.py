"""Helpers for integration tests: run the real sidecar process, scrape it, read topics."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, cast

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from driftsentinel.stream.topic_reader import read_to_end

REPO = Path(__file__).resolve().parents[2]


_PORT_LINE = re.compile(rb"metrics on http://[^\s/]+:(\d+)/metrics")


class MetricsPortFromLog:
    """A child process started with ``--metrics-port 0``: the port it bound, from its log line
    (a port picked here and bound by the child later can be taken in between); its scrapes,
    probes and log."""

    log_path: Path
    proc: subprocess.Popen
    _log: IO[bytes]

    _port: int | None = None

    def _known_port(self) -> int | None:
        if self._port is None:
            found = _PORT_LINE.findall(self.log_path.read_bytes())
            self._port = int(found[-1]) if found else None  # the last: a restart in place binds anew
        return self._port

    @property
    def metrics_port(self) -> int:
        """The bound port; waits (at most 60 s) for the child to log it."""
        deadline = time.monotonic() + 60
        while (port := self._known_port()) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no metrics port in the log:\n{self.log_path.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.1)
        return port

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        """Samples by (name, sorted labels); None when the endpoint does not answer (yet)."""
        url = self._url("/metrics")
        if url is None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                text = r.read().decode()
        except OSError:
            self._unreachable()
            return None
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def probe(self, path: str) -> int | None:
        """The HTTP status of ``path`` (/healthz, /readyz); None when nothing answers."""
        url = self._url(path)
        if url is None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            self._unreachable()
            return None

    def wait_until(self, cond: Callable[[dict], bool], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.scrape()
            if snap is not None and cond(snap):
                return snap
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.log_path.stem} exited ({self.proc.returncode}) early:\n{self.log()[-3000:]}"
                )
            time.sleep(0.1)
        raise AssertionError(f"condition not met in {timeout}s; log tail:\n{self.log()[-3000:]}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def _url(self, path: str) -> str | None:
        port = self._known_port()
        return None if port is None else f"http://127.0.0.1:{port}{path}"

    def _unreachable(self) -> None:
        self._port = None  # re-read the log: the child may have restarted on another port


class SidecarProcess(MetricsPortFromLog):
    """``driftsentinel run`` as a child process, with its metrics port."""

    def __init__(
        self,
        bootstrap: str,
        input_topic: str,
        *extra: str,
        config: dict | None = None,
        tmp: Path | None = None,
        group: str | None = None,
        alerts_topic: str | None = None,
    ) -> None:
        name = uuid.uuid4().hex[:8]
        self.alerts_topic = alerts_topic or f"{input_topic}-alerts"
        self.dlq_topic = f"{input_topic}-dlq"
        self.group = group or f"{input_topic}-group"
        args = [
            sys.executable,
            "-m",
            "driftsentinel.stream.cli",
            "run",
            "--bootstrap-servers",
            bootstrap,
            "--input-topic",
            input_topic,
            "--alerts-topic",
            self.alerts_topic,
            "--dlq-topic",
            self.dlq_topic,
            "--group-id",
            self.group,
            "--metrics-port",
            "0",
            *extra,
        ]
        if config is not None:
            assert tmp is not None
            path = tmp / f"config-{name}.json"
            path.write_text(json.dumps(config))  # JSON is YAML
            args += ["--config", str(path)]
        self.log_path = (tmp or Path("/tmp")) / f"sidecar-{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def sample(snap: dict, name: str, **labels: str) -> float | None:
    return snap.get((name, tuple(sorted(labels.items()))))


def read_all(
    bootstrap: str, topic: str, expect: int | None = None, timeout: float = 30.0, client: dict | None = None
) -> list[Message]:
    """Every message of ``topic`` (all partitions) from the beginning, read_committed.

    Without ``expect``: up to each partition's end (its last stable offset) as of the read,
    for topics whose writers are done; with it: until ``expect`` messages (or ``timeout``),
    for topics still being written. ``client``: extra client settings (e.g. SASL).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            **(client or {}),
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        if expect is None:
            return list(read_to_end(consumer, parts, timeout))
        consumer.assign(parts)
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < expect:
            out += [m for m in consumer.consume(1000, timeout=0.5) if m.error() is None]
        return out
    finally:
        consumer.close()


def value_of(m: Message) -> bytes:
    """``m.value()``, never None: the topics read by these tests hold no tombstones."""
    raw = m.value()
    assert raw is not None, f"tombstone at {m.topic()}/{m.partition()}@{m.offset()}"
    return raw


def key_of(m: Message) -> bytes:
    """``m.key()``, never None: the sidecar keys every alert (``model/feature``)."""
    raw = m.key()
    assert raw is not None, f"no key at {m.topic()}/{m.partition()}@{m.offset()}"
    return raw


def headers_of(m: Message) -> dict[str, bytes]:
    """``m.headers()`` as a dict: the sidecar sets each DLQ header once, as bytes."""
    return dict(cast(list[tuple[str, bytes]], m.headers() or []))


def produce(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes | None],
    key: bytes | None = b"demo",
    partitions: list[int] | None = None,
) -> None:
    """Produce ``values`` in order (to ``partitions[i]`` when given, else by ``key``)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
    for i, v in enumerate(values):
        while True:
            try:
                if partitions is None:
                    producer.produce(topic, key=key, value=v)
                else:
                    producer.produce(topic, key=key, value=v, partition=partitions[i])
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        [tp] = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return tp.offset
    finally:
        consumer.close()
