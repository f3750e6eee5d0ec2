"""Kafka clients for every loop (``run``, ``skew``): configuration, start-up, error reporting.

One place builds the librdkafka settings (security settings in ``common`` reach every
client), waits for the broker with a clear error, creates missing output topics, routes
librdkafka's own log lines through Python logging (repeats rate limited, connection failures
held back while the broker watch has said the outage in words) and writes the start-up line.

>>> admin_settings({"bootstrap.servers": "b:9092"}, {"security.protocol": "SSL", "fetch.min.bytes": 1})
{'bootstrap.servers': 'b:9092', 'security.protocol': 'SSL'}
>>> is_client_setting("sasl.mechanism"), is_client_setting("group.id")
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.profile import ProfileError, ReferenceProfile, load_profile
from driftsentinel.stream.checkpoint import MAX_STATE_BYTES
from driftsentinel.stream.transaction import transactional_id

log = logging.getLogger("driftsentinel")

#: How long start-up waits for the broker before giving up with a clear message.
STARTUP_TIMEOUT_S = 30.0


class StartupError(RuntimeError):
    """The loop cannot start (broker unreachable, authentication failed, bad topic layout, ...)."""


class Stopped(RuntimeError):
    """A stop was requested while start-up was waiting for the broker (a clean exit)."""


#: How often a repeated librdkafka message is said again, with the count of its repeats.
REPEAT_EVERY_S = 60.0
#: librdkafka's facility for a failed broker connection (refused, reset, TLS/SASL failures, timeouts).
FAIL_FACILITY = "FAIL"

_DIGITS = re.compile(r"\d+")
_THREAD = re.compile(r"^\[thrd:[^\]]*\]: ")
_AFTER = re.compile(r" \(after \d+ms in state \w+\)$")


def rdkafka_parts(record: logging.LogRecord) -> tuple[str, str]:
    """``(facility, text)`` of a librdkafka log record; ``("", message)`` for any other record.

    confluent-kafka's ``logger`` setting calls ``logger.log(level, "%s [%s] %s", facility,
    client name, text)``; the text starts with librdkafka's thread, which is dropped.

    >>> text = "[thrd:b:9092/bootstrap]: b:9092/bootstrap: Connect to ipv4#10.0.0.1:9092 failed: Connection refused"
    >>> rec = logging.LogRecord("x", 40, "", 0, "%s [%s] %s", ("FAIL", "rdkafka#producer-1", text), None)
    >>> rdkafka_parts(rec)
    ('FAIL', 'b:9092/bootstrap: Connect to ipv4#10.0.0.1:9092 failed: Connection refused')
    """
    args = record.args
    if record.msg == "%s [%s] %s" and isinstance(args, tuple) and len(args) == 3:
        return str(args[0]), _THREAD.sub("", str(args[2]))
    return "", record.getMessage()


def failure_reason(text: str) -> str:
    """A FAIL text without its broker prefixes and state suffix: the reason a person reads.

    >>> failure_reason("b:9092/bootstrap: Connect to ipv4#10.0.0.1:9092 failed: Connection refused "
    ...     "(after 0ms in state CONNECT)")
    'Connect to ipv4#10.0.0.1:9092 failed: Connection refused'
    >>> failure_reason("TxnCoordinator: b:9092: Disconnected: connection closed by peer (after 9ms in state UP)")
    'Disconnected: connection closed by peer'
    """
    while True:
        head, sep, rest = text.partition(": ")
        if not (sep and " " not in head and ("/" in head or ":" in head or head.endswith("Coordinator"))):
            return _AFTER.sub("", text)
        text = rest


class RateLimit(logging.Filter):
    """Repeated messages: the first passes, the rest of ``every_s`` are counted, and the next one
    after that passes with the count ("[412 more like this in the last 60 s]").

    Records are alike when their ``kind`` extra (an error code name) is equal or, without
    one, their facility and text with every number masked (a FAIL line's broker prefix left
    out): the same failure of several clients, of several brokers, or with another duration
    in it, is one kind. At most
    ``max_kinds`` kinds are remembered (the least recent is forgotten).

    >>> clock = iter([0.0, 1.0, 2.0, 61.0]).__next__
    >>> f = RateLimit(every_s=60.0, clock=clock)
    >>> rec = lambda: logging.LogRecord("x", logging.WARNING, "", 0, "kafka: down 3", None, None)
    >>> f.filter(rec()), f.filter(rec()), f.filter(rec())
    (True, False, False)
    >>> last = rec(); f.filter(last), last.getMessage()
    (True, 'kafka: down 3 [2 more like this in the last 61 s]')
    """

    def __init__(
        self, every_s: float = REPEAT_EVERY_S, clock: Callable[[], float] = time.monotonic, max_kinds: int = 256
    ) -> None:
        super().__init__()
        self.every_s, self.clock, self.max_kinds = every_s, clock, max_kinds
        self._kinds: OrderedDict[str, list[float]] = OrderedDict()  # kind -> [said at, repeats held back]
        self._lock = threading.Lock()

    @staticmethod
    def kind(record: logging.LogRecord) -> str:
        given = getattr(record, "kind", None)
        if given:
            return str(given)
        facility, text = rdkafka_parts(record)
        if facility == FAIL_FACILITY:  # the same failure of any broker, coordinator or client
            text = failure_reason(text)
        return f"{facility}|{_DIGITS.sub('#', text)[:200]}"

    def filter(self, record: logging.LogRecord) -> bool:
        kind, now = self.kind(record), self.clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.every_s:
                seen[1] += 1
                return False
            self._kinds[kind] = [now, 0]
            self._kinds.move_to_end(kind)
            while len(self._kinds) > self.max_kinds:
                self._kinds.popitem(last=False)
        if seen is not None and seen[1]:
            record.msg = f"{record.getMessage()} [{seen[1]:.0f} more like this in the last {now - seen[0]:.0f} s]"
            record.args = None
        return True


class Outages(logging.Filter):
    """What librdkafka says about failed broker connections, while an outage is already said in words.

    The broker watch (:mod:`driftsentinel.stream.broker_watch`) says once that no broker
    answers and once that one answers again; meanwhile librdkafka's FAIL lines (several a
    second across the clients) only count. The last FAIL text is kept as the outage's reason.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._ongoing = 0
        self._held = 0
        self._last: tuple[float, str] | None = None  # (monotonic time, reason) of the last failure

    def filter(self, record: logging.LogRecord) -> bool:
        facility, text = rdkafka_parts(record)
        if facility != FAIL_FACILITY:
            return True
        with self._lock:
            self._last = (time.monotonic(), failure_reason(text))
            if self._ongoing:
                self._held += 1
                return False
        return True

    def note(self, reason: str) -> None:
        """A connection failure reported elsewhere (a client's ``error_cb``)."""
        with self._lock:
            self._last = (time.monotonic(), reason)

    def reason(self, within_s: float = 30.0) -> str | None:
        """The last connection failure's reason if it is recent."""
        with self._lock:
            last = self._last
        return last[1] if last is not None and time.monotonic() - last[0] <= within_s else None

    def begin(self) -> int:
        """An outage is said: hold FAIL lines back; returns the count to pass to :meth:`end`."""
        with self._lock:
            self._ongoing += 1
            return self._held

    def end(self, mark: int) -> int:
        """The outage that began at ``mark`` is over: FAIL lines pass again; returns how many were held."""
        with self._lock:
            self._ongoing = max(self._ongoing - 1, 0)
            return self._held - mark


#: librdkafka's own log lines (the clients' ``logger`` setting): connection failures held back
#: during an outage said in words, repeats rate limited.
rdkafka_log = logging.getLogger("driftsentinel.rdkafka")
outages = Outages()
rdkafka_log.addFilter(outages)
rdkafka_log.addFilter(RateLimit())
#: error_cb codes that mean "a broker does not answer" (the broker watch says it in words).
BROKER_DOWN = (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE)


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
    hint = ""
    if err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT):
        hint = " - is the broker running, is kafka.bootstrap_servers right? (locally: driftsentinel local-kafka start)"
    return f"broker {bootstrap_servers} not usable: {err.str()}{hint}"


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
    """A client's ``error_cb``: readiness red while the broker is unreachable (said by the broker watch),
    other errors logged (rate limited);
    returns ``err`` when it is fatal (authentication, or librdkafka says so), else ``None``."""
    if err.code() in BROKER_DOWN:
        # librdkafka's FAIL line says it too, and the broker watch says an outage in words
        if err.code() != KafkaError._RESOLVE:
            health.set_ready(f"broker unreachable: {err.str()}")
        outages.note(failure_reason(err.str()))
        rdkafka_log.debug("kafka: %s", err.str())
    else:
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


_SECRET_WORDS = ("password", "secret", "sasl.oauthbearer", "key", "jaas")
#: Settings the start-up line names by themselves (not again among the changed ones).
_SAID = frozenset(
    {
        "kafka.input_topic",
        "kafka.alerts_topic",
        "kafka.bootstrap_servers",
        "kafka.group_id",
        "kafka.exactly_once",
        "detectors.backend",
        "detectors.include",
        "reference",
        "metrics_port",
    }
)
#: The changed settings' names take at most about this many characters of the start-up line.
_CHANGED_CHARS = 80


def effective_config(config: SidecarConfig) -> dict[str, Any]:
    """The effective config as plain data, librdkafka secrets redacted."""
    data = config.model_dump(mode="json")
    for section in ("common", "consumer", "producer"):
        for key in list(data["kafka"][section]):
            if any(s in key.lower() for s in _SECRET_WORDS):
                data["kafka"][section][key] = "***"
    return data


def effective_config_json(config: SidecarConfig) -> str:
    """The whole effective config as one JSON line (secrets redacted): logged at DEBUG."""
    return json.dumps(effective_config(config), sort_keys=True)


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_settings(config: SidecarConfig) -> list[str]:
    """The dotted names of the settings that differ from the defaults.

    >>> from driftsentinel.schemas import load_config
    >>> changed_settings(load_config(None, {"idle_exit": 10, "kafka.consumer": {"fetch.min.bytes": 1}}))
    ['idle_exit', 'kafka.consumer.fetch.min.bytes']
    """
    default = _leaves(SidecarConfig().model_dump(mode="json"))
    return sorted(k for k, v in _leaves(config.model_dump(mode="json")).items() if k not in default or default[k] != v)


def _features(config: SidecarConfig, profile: ReferenceProfile | None) -> str:
    if config.reference and profile is None:
        try:
            profile = load_profile(config.reference)
        except ProfileError:
            return "?"
    if profile is not None:
        return f"{len(profile.features)}(reference)"
    if config.detectors.include:
        return f"{len(config.detectors.include)}(include)"
    return "discovered"


def _first_names(names: list[str], chars: int) -> str:
    """
    >>> _first_names(["a.b", "c", "d.e.f"], 6)
    'a.b,c,+1 more'
    """
    shown: list[str] = []
    for name in names:
        if shown and len(",".join([*shown, name])) > chars:
            return ",".join([*shown, f"+{len(names) - len(shown)} more"])
        shown.append(name)
    return ",".join(shown)


def effective_config_line(config: SidecarConfig, profile: ReferenceProfile | None = None) -> str:
    """The start-up line: what a person checks first, one short line (secrets never in it).

    Input and alerts topics, bootstrap servers, group, backend, reference profile, the
    features watched (from the profile, ``detectors.include``, else discovered from the
    stream), the metrics port, the delivery guarantee and the names (not values) of the
    other settings that differ from the defaults. The whole config is logged at DEBUG
    (:func:`effective_config_json`).

    >>> from driftsentinel.schemas import load_config
    >>> effective_config_line(load_config(None, {"kafka.input_topic": "clicks", "idle_exit": 5}))
    'input=clicks alerts=drift-alerts bootstrap=127.0.0.1:9092 group=driftsentinel backend=kernel \
reference=none features=discovered metrics_port=8000 changed=idle_exit (full config: --log-level debug)'
    """
    kafka = config.kafka
    changed = [k for k in changed_settings(config) if k not in _SAID]
    shown = _first_names(changed, _CHANGED_CHARS)
    parts = [
        f"input={kafka.input_topic}",
        f"alerts={kafka.alerts_topic}",
        f"bootstrap={kafka.bootstrap_servers}",
        f"group={kafka.group_id}",
        f"backend={config.detectors.backend}",
        f"reference={config.reference or 'none'}",
        f"features={_features(config, profile)}",
        f"metrics_port={config.metrics_port}",
        *([] if kafka.exactly_once else ["delivery=at-least-once"]),
        *([f"changed={shown}"] if shown else []),
    ]
    return " ".join(parts) + " (full config: --log-level debug)"


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
