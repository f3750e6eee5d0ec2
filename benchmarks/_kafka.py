"""Kafka helpers for the pipeline benchmark: a broker, topics, fast producers.

The broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set (used as is), otherwise a private
Apache Kafka started with :func:`stream.local_kafka.start` on a free port and a
temporary data directory, stopped when the context exits.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgspec
import numpy as np
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

MODEL = "bench"

#: How producers send in bulk: big batches, a little linger, lz4 (what a busy model server does).
PRODUCER_CONF = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
}


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, bool]]:
    """Yield ``(bootstrap, started_here)``."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env, False
        return
    from driftsentinel.stream import local_kafka

    with tempfile.TemporaryDirectory(prefix="ds-bench-broker-") as tmp:
        bootstrap = local_kafka.start(port=local_kafka.free_port(), data_dir=Path(tmp), timeout=120)
        try:
            yield bootstrap, True
        finally:
            local_kafka.stop(Path(tmp))


def new_topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        t = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if t is not None and t.error is None and all(p.leader >= 0 for p in t.partitions.values()):
            return name
        time.sleep(0.1)
    raise TimeoutError(f"topic {name} not ready")


def delete_topics(bootstrap: str, names: list[str]) -> None:
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.delete_topics(names, operation_timeout=10).values():
        with contextlib.suppress(Exception):
            fut.result(15)


def feature_names(features: int) -> list[str]:
    return [f"f{i}" for i in range(features)]


class Payloads:
    """FeatureEvent JSON as producers send it, built fast: the ``features`` object is
    encoded once per row with msgspec, the envelope (ts = produce time) per message."""

    def __init__(self, features: int, seed: int = 7) -> None:
        self.names = feature_names(features)
        self.rng = np.random.default_rng(seed)
        self._enc = msgspec.json.Encoder()

    def feature_blobs(self, rows: int, shift: np.ndarray | None = None) -> list[bytes]:
        x = self.rng.standard_normal((rows, len(self.names)))
        if shift is not None:
            x += shift
        enc, names = self._enc.encode, self.names
        return [enc(dict(zip(names, row, strict=True))) for row in x.tolist()]

    @staticmethod
    def message(i: int, blob: bytes, ts: float) -> bytes:
        return b'{"model":"%s","ts":%r,"id":"e-%d","features":%s}' % (MODEL.encode(), ts, i, blob)


def _delivered(failures: list[str]) -> Callable[[KafkaError | None, Message], None]:
    def cb(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    return cb


def _send_all(bootstrap: str, topic: str, values: Iterable[bytes], what: str) -> tuple[int, int, float]:
    """Produce every value (key: the model) as fast as the producer goes; (messages, bytes, seconds)."""
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONF})
    failures: list[str] = []
    cb = _delivered(failures)
    key = MODEL.encode()
    t0 = time.perf_counter()
    messages = nbytes = 0
    for value in values:
        messages += 1
        nbytes += len(value)
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=cb)
                break
            except BufferError:
                producer.poll(0.05)
        if messages % 1024 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left or failures:
        raise RuntimeError(f"{what}: {left} undelivered, errors {failures[:3]}")
    return messages, nbytes, time.perf_counter() - t0


def preload(
    bootstrap: str,
    topic: str,
    events: int,
    features: int,
    drift_at: int | None,
    drift_features: int = 3,
    shift: float = 1.0,
    chunk: int = 50_000,
) -> dict[str, float]:
    """Produce ``events`` FeatureEvents as fast as the producer goes; a +shift sigma
    mean shift on the first ``drift_features`` features from event ``drift_at`` on."""
    pay = Payloads(features)
    shift_vec = np.zeros(features)
    shift_vec[:drift_features] = shift

    def values() -> Iterator[bytes]:
        for a in range(0, events, chunk):
            n = min(chunk, events - a)
            blobs = pay.feature_blobs(n)
            if drift_at is not None and a + n > drift_at:
                k = max(drift_at - a, 0)
                blobs[k:] = pay.feature_blobs(n - k, shift_vec)
            for i, blob in enumerate(blobs, start=a):
                yield pay.message(i, blob, time.time())

    _, nbytes, secs = _send_all(bootstrap, topic, values(), "preload")
    return {
        "events": events,
        "seconds": round(secs, 2),
        "events_per_s": round(events / secs),
        "mean_message_bytes": round(nbytes / events),
    }


def preload_columnar(
    bootstrap: str,
    topic: str,
    events: int,
    features: int,
    rows: int,
    drift_at: int | None,
    drift_features: int = 3,
    shift: float = 1.0,
) -> dict[str, float]:
    """The same kind of stream as :func:`preload`, as columnar messages of ``rows`` events."""
    from driftsentinel.schemas.columnar import encode_columns

    rng = np.random.default_rng(7)
    names = feature_names(features)

    def values() -> Iterator[bytes]:
        for a in range(0, events, rows):
            n = min(rows, events - a)
            x = rng.standard_normal((n, features))
            if drift_at is not None and a + n > drift_at:
                x[max(drift_at - a, 0) :, :drift_features] += shift
            yield encode_columns(
                numeric={name: x[:, j] for j, name in enumerate(names)},
                model=MODEL,
                ts=np.full(n, time.time()),
                id=[f"e-{i}" for i in range(a, a + n)],
            )

    messages, nbytes, secs = _send_all(bootstrap, topic, values(), "preload_columnar")
    return {
        "events": events,
        "messages": messages,
        "seconds": round(secs, 2),
        "mean_message_bytes": round(nbytes / messages),
    }


def end_offset(bootstrap: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ds-bench-probe"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()
