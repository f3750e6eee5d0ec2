"""Kafka clients for every loop (``run``, ``skew``): configuration, start-up, error reporting.

One place builds the librdkafka settings (security settings in ``common`` reach every
client), waits for the broker with a clear error, creates missing output topics and rate
limits librdkafka's repeated connection errors in the log.

>>> admin_settings({"bootstrap.servers": "b:9092"}, {"security.protocol": "SSL", "fetch.min.bytes": 1})
{'bootstrap.servers': 'b:9092', 'security.protocol': 'SSL'}
>>> is_client_setting("sasl.mechanism"), is_client_setting("group.id")
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from driftsentinel.schemas import SidecarConfig
from driftsentinel.stream.checkpoint import MAX_STATE_BYTES
from driftsentinel.stream.transaction import transactional_id

log = logging.getLogger("driftsentinel")

#: How long start-up waits for the broker before giving up with a clear message.
STARTUP_TIMEOUT_S = 30.0


class StartupError(RuntimeError):
    """The loop cannot start (broker unreachable, authentication failed, bad topic layout, ...)."""


class Stopped(RuntimeError):
    """A stop was requested while start-up was waiting for the broker (a clean exit)."""


class RateLimit(logging.Filter):
    """librdkafka repeats connection failures several times a second: one line per kind per 10 s.

    The kind is the record's ``kind`` extra (an error code name), else the text before
    the first colon (librdkafka's log facility).

    >>> f = RateLimit(every_s=60.0)
    >>> rec = logging.LogRecord("x", logging.WARNING, "", 0, "kafka: down", None, None)
    >>> f.filter(rec), f.filter(rec)
    (True, False)
    """

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = getattr(record, "kind", None) or record.getMessage().split(":", 1)[0][:80]
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self.every_s:
            return False
        self._last[kind] = now
        return True


#: librdkafka's own log lines (the clients' ``logger`` setting), rate limited.
rdkafka_log = logging.getLogger("driftsentinel.rdkafka")
rdkafka_log.addFilter(RateLimit())


def consume_error(err: KafkaError) -> None:
    """A consumed message that carries an error: a fatal one ends the loop (raised), others are logged."""
    if err.fatal():
        raise KafkaException(err)
    log.warning("consume error: %s", err.str())


def is_client_setting(key: str) -> bool:
    """Settings every client needs (security, DNS), as opposed to consumer-only ones."""
    return key.startswith(("security.", "sasl.", "ssl.", "client.dns", "socket.", "broker.address"))


def admin_settings(common: dict[str, Any], consumer: dict[str, Any]) -> dict[str, Any]:
    """The admin client's settings: ``common`` plus the client-level keys of the consumer section."""
    return {**common, **{k: v for k, v in consumer.items() if is_client_setting(k)}}


def explain(err: KafkaError, bootstrap_servers: str) -> str:
    """A one-line reason for a start-up failure."""
    if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        return f"authentication failed: {err.str()}"
    return f"broker {bootstrap_servers} not usable: {err.str()}"


def list_topics(
    admin: AdminClient,
    bootstrap_servers: str,
    fatal: Callable[[], KafkaError | None] = lambda: None,
    timeout_s: float = STARTUP_TIMEOUT_S,
    stopping: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """The cluster's topics, waiting up to ``timeout_s`` for the broker; StartupError if it never answers.

    The wait is cut in short slices so that an authentication error reported through the
    clients' ``error_cb`` (``fatal()`` returns it) ends it at once, and a stop request
    (``stopping()``) too: :class:`Stopped`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            topics: dict[str, Any] = admin.list_topics(timeout=1).topics
            break
        except KafkaException as exc:
            admin.poll(0.1)
            err = fatal()
            if err is not None:
                raise StartupError(explain(err, bootstrap_servers)) from None
            if time.monotonic() > deadline:
                raise StartupError(explain(exc.args[0], bootstrap_servers)) from None
            if stopping():
                raise Stopped("stop requested while waiting for the broker") from None
    err = fatal()
    if err is not None:
        raise StartupError(explain(err, bootstrap_servers))
    return topics


def on_kafka_error(err: KafkaError, health: Any) -> KafkaError | None:
    """A client's ``error_cb``: readiness red while the broker is unreachable, logged (rate limited);
    returns ``err`` when it is fatal (authentication, or librdkafka says so), else ``None``."""
    if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
        health.set_ready(f"broker unreachable: {err.str()}")
    rdkafka_log.warning("kafka: %s", err.str(), extra={"kind": err.name()})
    if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED) or err.fatal():
        return err
    return None


#: A DLQ record's bound when the DLQ topic's limit cannot be read (under the broker's default 1 MB).
DLQ_DEFAULT_BYTES = 900_000
#: Room left under the DLQ topic's max.message.bytes for the record batch's own overhead.
_DLQ_MARGIN = 64 * 1024


def dlq_bound(admin: AdminClient, config: SidecarConfig, producer_max: int) -> int:
    """The largest DLQ record (key, value, headers) to produce: ``dlq_max_value_bytes`` if set, else
    the DLQ topic's ``max.message.bytes`` less a margin, never over the producer's own limit."""
    bound = config.dlq_max_value_bytes
    if bound is None:
        bound = DLQ_DEFAULT_BYTES
        try:
            resource = ConfigResource(ResourceType.TOPIC, config.kafka.dlq_topic)
            entries = admin.describe_configs([resource])[resource].result(timeout=10)
            bound = max(int(entries["max.message.bytes"].value) - _DLQ_MARGIN, 1024)
        except (KafkaException, KeyError, ValueError, TypeError) as exc:
            log.warning("DLQ topic's max.message.bytes not readable (%s): DLQ records cut at %d bytes", exc, bound)
    return min(bound, producer_max - _DLQ_MARGIN)


def create_topics(admin: AdminClient, names: Iterable[str], existing: dict[str, Any]) -> None:
    """Create the output topics that do not exist yet (one partition, the broker's replication)."""
    wanted = [t for t in dict.fromkeys(names) if t not in existing]
    if not wanted:
        return
    futures = admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=-1) for t in wanted])
    for name, fut in futures.items():
        try:
            fut.result(timeout=30)
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StartupError(f"cannot create topic {name}: {exc.args[0].str()}") from None


def sidecar_settings(
    config: SidecarConfig,
    instance_id: str,
    error_cb: Callable[[KafkaError], None],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The sidecar's (consumer, producer, admin) settings.

    Security settings (SASL/TLS) go to every client: ``kafka.common``; the consumer
    section's client-level keys also reach the admin client, so either place works.
    """
    kafka = config.kafka
    common = {"bootstrap.servers": kafka.bootstrap_servers, "logger": rdkafka_log, **kafka.common}
    labels = bool(kafka.labels_topic) and config.detectors.concept_drift.enabled
    consumer = {
        **common,
        "error_cb": error_cb,
        "group.id": kafka.group_id,
        "group.instance.id": instance_id,
        "session.timeout.ms": 10_000,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        # Late labels meet their predictions only if partition i of both topics goes
        # to the same member: the range assignor does that for equal partition counts.
        **({"partition.assignment.strategy": "range"} if labels else {}),
        **kafka.consumer,
    }
    producer: dict[str, Any] = {
        **common,
        "error_cb": error_cb,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.max.bytes": MAX_STATE_BYTES + 1024 * 1024,
        "compression.type": "lz4",
    }
    if kafka.exactly_once:
        producer["transactional.id"] = transactional_id(kafka.group_id, instance_id)
        producer["transaction.timeout.ms"] = 60_000
    return consumer, {**producer, **kafka.producer}, admin_settings(common, kafka.consumer)


#: DLQ record headers (the value and key are the original bytes).
H_REASON = "driftsentinel.reason"
H_ERROR = "driftsentinel.error"
H_TOPIC = "driftsentinel.source.topic"
H_PARTITION = "driftsentinel.source.partition"
H_OFFSET = "driftsentinel.source.offset"


def dead_letter_headers(msg: Message, reason: str, detail: str) -> list[tuple[str, str | bytes | None]]:
    """The message's own headers plus why it is in the DLQ and where it came from."""
    return [
        *(msg.headers() or []),
        (H_REASON, reason.encode()),
        (H_ERROR, detail.encode("utf-8", "replace")[:1000]),
        (H_TOPIC, (msg.topic() or "").encode()),
        (H_PARTITION, str(msg.partition()).encode()),
        (H_OFFSET, str(msg.offset()).encode()),
    ]


def effective_config_line(config: SidecarConfig) -> str:
    """The start-up log line: the effective config, secrets redacted."""
    data = config.model_dump()
    for section in ("common", "consumer", "producer"):
        for key in list(data["kafka"][section]):
            if any(s in key.lower() for s in ("password", "secret", "sasl.oauthbearer", "key", "jaas")):
                data["kafka"][section][key] = "***"
    return json.dumps(data, sort_keys=True)


#: Headers of a DLQ record cut to ``dlq_max_value_bytes`` (the original is too large for the DLQ).
H_TRUNCATED = "driftsentinel.truncated"
H_SIZE = "driftsentinel.original.size"
H_SHA256 = "driftsentinel.original.sha256"
#: The original key and headers are kept up to these sizes in a cut record.
_CUT_KEY_BYTES = 1024
_CUT_HEADER_BYTES = 16 * 1024

DeadLetter = tuple[bytes | None, bytes | None, list[tuple[str, str | bytes | None]]]


def dead_letter(msg: Message, reason: str, detail: str, max_bytes: int) -> tuple[DeadLetter, bool]:
    """The DLQ record (key, value, headers) for ``msg``, and whether it had to be cut.

    A record over ``max_bytes`` (key, value and headers) could never be produced to a DLQ with
    the broker's default 1 MB limit: the transaction would abort on every retry and the
    partition never move on. It is replaced by a bounded one: the value cut to fit, the key
    and the original headers cut or left out, and headers with the original value's size
    and sha256 so the message can be found in the input topic (source headers) and checked.

    >>> class M:
    ...     def key(self): return b"k"
    ...     def value(self): return b"x" * 5000
    ...     def headers(self): return None
    ...     def topic(self): return "t"
    ...     def partition(self): return 0
    ...     def offset(self): return 7
    >>> (key, value, headers), cut = dead_letter(M(), "invalid_json", "bad", 2048)
    >>> cut, len(value) < 2048, dict(headers)[H_SIZE], dict(headers)[H_OFFSET]
    (True, True, b'5000', b'7')
    """
    key, value = msg.key(), msg.value()
    headers = dead_letter_headers(msg, reason, detail)
    size = len(key or b"") + len(value or b"") + _header_bytes(headers)
    if size <= max_bytes:
        return (key, value, headers), False
    own = list(msg.headers() or [])
    if _header_bytes(own) > _CUT_HEADER_BYTES:
        headers = headers[len(own) :]  # the original headers are too large to keep: left out
    digest = hashlib.sha256(value or b"").hexdigest().encode()
    headers += [(H_TRUNCATED, b"value"), (H_SIZE, str(len(value or b"")).encode()), (H_SHA256, digest)]
    key = key[:_CUT_KEY_BYTES] if key is not None else None
    room = max_bytes - len(key or b"") - _header_bytes(headers)
    return (key, (value or b"")[: max(room, 0)], headers), True


def _header_bytes(headers: Iterable[Any]) -> int:
    return sum(len(h[0]) + len(h[1] or b"") for h in headers)
