"""What one batch's output goes out in: a Kafka transaction, or its at-least-once twin.

Both have the same four calls, in this order per batch::

    txn.begin()
    txn.produce(topic, key, value, headers)   # alerts, DLQ records, checkpoints, ...
    txn.commit(offsets)                       # the input offsets (next offset to read)
    # on Aborted (from any call): txn.abort(), then rewind the input to the last checkpoint

:class:`ExactlyOnce`: ``begin_transaction``, the records, ``send_offsets_to_transaction``
and ``commit_transaction``: all of it becomes visible to ``read_committed`` consumers, or
none. Retriable errors are retried for :data:`TXN_RETRY_S`; abortable ones raise
:class:`Aborted`; fatal ones raise ``KafkaException``. A call stuck inside librdkafka is seen
by the :class:`Watchdog` (another thread polls :meth:`Watchdog.stuck`).

:class:`AtLeastOnce`: no transaction; ``commit`` waits until every record is acknowledged,
then commits the offsets (``None``: the consumer's current positions). A crash between the
two repeats records, never loses one.

>>> transactional_id("fraud-model", "node-1")
'driftsentinel.fraud-model.node-1'
>>> w = Watchdog(stuck_after_s=45.0)
>>> w.stuck(now=1e9)
False
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

#: How long a transaction may keep failing with retriable errors while the broker watch sees
#: the broker answering before the sidecar gives up and exits non-zero. While the broker is
#: away the wait has no end (readiness red, liveness green): outages of any length are waited out.
TXN_RETRY_S = 300.0
#: A transactional call that has not returned after this long is stuck inside librdkafka
#: (send_offsets_to_transaction can ignore its timeout: librdkafka #5456, #5511); the
#: process then re-executes itself and recovers from its checkpoints.
TXN_STUCK_S = 45.0

Headers = list[tuple[str, str | bytes | None]]


def transactional_id(group_id: str, instance_id: str) -> str:
    """The producer's transactional.id: one per group member, stable across its restarts, so a
    restarted member fences (and aborts) the open transaction of its previous life."""
    return f"driftsentinel.{group_id}.{instance_id}"


class Aborted(Exception):
    """The current batch's output must be aborted and the input rewound."""


class Health(Protocol):
    """What the transaction tells the probes (:class:`driftsentinel.stream.metrics.HealthState`)."""

    def beat(self) -> None: ...
    def set_ready(self, reason: str | None) -> None: ...
    def set_ready_for(self, reason: str, seconds: float) -> None: ...
    def broker_ok(self) -> bool: ...


class AbortStreak:
    """Consecutive aborted batches: each counted; from ``limit`` on, /readyz red with the reason and a
    growing pause (up to 30 s) before the retry, so a batch that cannot commit never spins unseen.

    >>> class H:
    ...     def set_ready_for(self, reason, seconds): print(reason)
    >>> s = AbortStreak(H(), limit=2)
    >>> s.aborted("x"), s.aborted("y")
    2 transactions aborted in a row: y
    (0.0, 0.4)
    >>> s.committed(); s.in_row
    0
    """

    def __init__(self, health: Any, limit: int, count: Callable[[], None] = lambda: None) -> None:
        self.health, self.limit, self.count = health, limit, count
        self.in_row = 0

    def aborted(self, why: str) -> float:
        """Count one abort; return the pause before the retry (seconds)."""
        self.in_row += 1
        self.count()
        if self.in_row < self.limit:
            return 0.0
        self.health.set_ready_for(f"{self.in_row} transactions aborted in a row: {why}"[:500], 120.0)
        return float(min(0.2 * 2 ** (self.in_row - self.limit + 1), 30.0))

    def committed(self) -> None:
        self.in_row = 0

    def pause(self, seconds: float, stopping: Callable[[], bool]) -> None:
        """Sleep ``seconds`` (the loop alive for the liveness probe), cut short by a stop request."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and not stopping():
            self.health.beat()
            time.sleep(0.1)


class Watchdog:
    """When the running transactional call started; :meth:`stuck` once it is older than ``stuck_after_s``."""

    def __init__(self, stuck_after_s: float = TXN_STUCK_S) -> None:
        self.stuck_after_s = stuck_after_s
        self.started: float | None = None

    def stuck(self, now: float | None = None) -> bool:
        started = self.started
        return started is not None and (time.monotonic() if now is None else now) - started > self.stuck_after_s


@dataclass
class _Delivery:
    failures: list[str] = field(default_factory=list)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err}")

    def take(self) -> list[str]:
        failures, self.failures = self.failures, []
        return failures


class _Output:
    """Producing, shared by both kinds: a full local queue waits (bounded) for deliveries."""

    def __init__(self, producer: Producer, consumer: Consumer, health: Health) -> None:
        self.producer = producer
        self.consumer = consumer
        self.health = health
        self.delivery = _Delivery()
        #: True once a stop is requested: waits for an absent broker end at once (the
        #: batch is aborted and re-read after the restart), so SIGTERM exits in bounded time.
        self.stopping: Callable[[], bool] = lambda: False

    def _give_up(self) -> bool:
        return self.stopping() and not self.health.broker_ok()

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, headers=headers, on_delivery=self.delivery)
                self.producer.poll(0)
                return
            except BufferError:  # local queue full: let deliveries drain
                if time.monotonic() > deadline:
                    raise Aborted(f"producer queue stayed full while writing to {topic}") from None
                self.producer.poll(0.05)
                self.health.beat()
            except KafkaException as exc:
                raise Aborted(exc.args[0].str()) from None


class ExactlyOnce(_Output):
    """A Kafka transaction per batch: records and input offsets committed together."""

    exactly_once = True

    def __init__(
        self, producer: Producer, consumer: Consumer, health: Health, watchdog: Watchdog, log: Any = None
    ) -> None:
        super().__init__(producer, consumer, health)
        self.watchdog = watchdog
        self.log = log

    def begin(self) -> None:
        self._call(self.producer.begin_transaction)

    def commit(self, offsets: list[TopicPartition] | None) -> None:
        if offsets:
            meta = self.consumer.consumer_group_metadata()
            self._await_broker()
            self._call(lambda: self.producer.send_offsets_to_transaction(offsets, meta, 30))
        self._call(lambda: self.producer.commit_transaction(30))
        failures = self.delivery.take()  # cannot happen after a successful commit, but never hide it
        if failures and self.log is not None:
            self.log.error("deliveries failed inside a committed transaction: %s", failures[:5])

    def abort(self) -> None:
        self.delivery.take()
        deadline = time.monotonic() + TXN_RETRY_S
        while True:
            try:
                self.producer.abort_transaction(5 if self.stopping() else 30)
                return
            except KafkaException as exc:
                if self._give_up():
                    return  # the next life's init_transactions aborts it (same transactional.id)
                if exc.args[0].fatal():
                    raise
                if self.health.broker_ok() and time.monotonic() > deadline:
                    raise
                if not self.health.broker_ok():
                    deadline = time.monotonic() + TXN_RETRY_S
                self.health.beat()
                time.sleep(0.5)

    def _await_broker(self) -> None:
        """Wait (bounded) while the broker watch sees the broker away.

        librdkafka's send_offsets_to_transaction ignores its timeout and can hang for good
        when the group coordinator is down at the call (librdkafka issues #5456, #5511), so
        it is not called while the broker is known to be away.
        """
        while not self.health.broker_ok():
            if self.stopping():
                raise Aborted("stopping while the broker is away")
            self.health.beat()
            time.sleep(0.2)

    def _call(self, call: Callable[[], Any]) -> None:
        """Run a transactional call: retry retriable errors, abort abortable ones, raise fatal ones."""
        deadline = time.monotonic() + TXN_RETRY_S
        while True:
            try:
                self.watchdog.started = time.monotonic()
                try:
                    call()
                finally:
                    self.watchdog.started = None
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal():
                    raise
                if err.txn_requires_abort() or self._give_up():
                    raise Aborted(err.str()) from None
                if not self.health.broker_ok():
                    deadline = time.monotonic() + TXN_RETRY_S  # an outage is waited out, however long
                if not err.retriable() or time.monotonic() > deadline:
                    raise
                self.health.set_ready(f"transaction retrying: {err.str()}")
                self.health.beat()
                if self.log is not None:
                    self.log.warning("transaction call failed, retrying: %s", err.str())
                time.sleep(0.5)


class AtLeastOnce(_Output):
    """The twin without transactions: records acknowledged first, then the offsets committed."""

    exactly_once = False

    def begin(self) -> None:
        return None

    def commit(self, offsets: list[TopicPartition] | None) -> None:
        """Wait for every record's acknowledgement, then commit ``offsets`` (``None``: current positions)."""
        remaining = self.producer.flush(60)
        failures = self.delivery.take()
        if remaining or failures:
            raise Aborted(f"{remaining} undelivered, failures: {failures[:5]}")
        if offsets is not None and not offsets:
            return
        try:
            if offsets is None:
                self.consumer.commit(asynchronous=False)
            else:
                self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if offsets is None and exc.args[0].code() == KafkaError._NO_OFFSET:
                return  # nothing consumed since the last commit
            raise Aborted(f"offset commit failed: {exc.args[0].str()}") from None

    def abort(self) -> None:
        self.delivery.take()


Transaction = ExactlyOnce | AtLeastOnce
