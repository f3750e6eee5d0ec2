"""The sidecar loop: consume a batch, decode, detect, publish, commit.

Exactly-once (``kafka.exactly_once``, the default): each batch is one Kafka transaction
holding its alerts, its DLQ records, any due detector checkpoints and the input offsets
(``send_offsets_to_transaction``). Either all of it becomes visible to
``read_committed`` consumers, or none of it.

Restart and rebalance: when a partition is assigned, its newest checkpoint is read from
the compacted state topic, the detectors are rebuilt from it, and the partition is read
from the checkpoint's offset. Events between the checkpoint and the committed offset are
re-processed to bring the detectors up to date, but their alerts and DLQ records, which
were already committed, are not produced again. The first transaction of every partition
carries a checkpoint, so a committed offset always has a checkpoint at or before it.

A transaction that cannot be committed (broker gone too long, coordinator aborted it)
is aborted and every assigned partition is rewound the same way: nothing is lost, and
nothing is said twice.

With ``exactly_once: false`` the same happens without transactions (at-least-once):
offsets are committed after every record of the batch is acknowledged, and a crash
between the two repeats records with the same ``event_id``.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from itertools import repeat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.concept import pair_error
from driftsentinel.detectors.warmup import load_kernels
from driftsentinel.schemas import DriftEvent, FeatureBatch, InvalidEvent, SidecarConfig
from driftsentinel.schemas.columnar import ColumnBatch, decode_columns, is_columnar
from driftsentinel.schemas.fastdecode import EventView, decode_event_fast
from driftsentinel.schemas.labels import decode_label
from driftsentinel.schemas.profile import load_profile
from driftsentinel.detectors.policy import AlertPolicy
from driftsentinel.stream.clients import (
    STARTUP_TIMEOUT_S,
    StartupError,
    admin_settings,
    create_topics,
    explain,
    list_topics,
    rdkafka_log,
)
from driftsentinel.stream.checkpoint import (
    MAX_STATE_BYTES,
    encode_state,
    ensure_state_topic,
    load_states,
    progress_key,
    state_key,
)
from driftsentinel.detectors.batching import columnar_to_batch, to_batches
from driftsentinel.stream.columns import BatchBudget
from driftsentinel.stream.idle import IdleClock
from driftsentinel.detectors.labels import JoinedLabel, LabelJoin
from driftsentinel.stream.metrics import HealthState, Metrics, serve

log = logging.getLogger("driftsentinel")

#: DLQ record headers (the value and key are the original bytes).
H_REASON = "driftsentinel.reason"
H_ERROR = "driftsentinel.error"
H_TOPIC = "driftsentinel.source.topic"
H_PARTITION = "driftsentinel.source.partition"
H_OFFSET = "driftsentinel.source.offset"

#: How long a transaction may keep failing with retriable errors (broker away) before
#: the sidecar gives up and exits non-zero.
TXN_RETRY_S = 300.0
#: A transactional call that has not returned after this long is stuck inside librdkafka
#: (send_offsets_to_transaction can ignore its timeout: librdkafka #5456, #5511); the
#: process then re-executes itself and recovers from its checkpoints.
TXN_STUCK_S = 45.0
#: How long a new owner waits for committed offsets that an open transaction holds (a
#: member that died between send_offsets_to_transaction and commit): the broker aborts that
#: transaction after its transaction.timeout.ms (60 s here) plus its abort-scan interval.
PENDING_OFFSETS_WAIT_S = 180.0


def transactional_id(group_id: str, instance_id: str) -> str:
    """The producer's transactional.id: one per group member, stable across its restarts, so a
    restarted member fences (and aborts) the open transaction of its previous life.

    >>> transactional_id("fraud-model", "node-1")
    'driftsentinel.fraud-model.node-1'
    """
    return f"driftsentinel.{group_id}.{instance_id}"


class _Abort(Exception):
    """The current transaction must be aborted and the partitions rewound."""


@dataclass
class _Delivery:
    failures: list[str] = field(default_factory=list)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err}")


@dataclass
class _Partition:
    """What the sidecar holds for one assigned input partition."""

    topic: str
    partition: int
    banks: dict[str, DetectorBank] = field(default_factory=dict)
    next_offset: int = -1  # next offset to process (-1: not known yet)
    replay_until: int = -1  # alerts of offsets below this were already committed
    since_checkpoint: int = 0
    checkpointed_at: float = 0.0  # monotonic time; 0 = never in this assignment
    published: bool = False  # this transaction holds alerts or DLQ records of the partition
    labels: LabelJoin | None = None  # predictions waiting for late labels (kafka.labels_topic)
    force_checkpoint: bool = False  # checkpoint in this transaction (a late-label alert was published)


@dataclass
class _LabelPartition:
    """A partition of the labels topic; its predictions live in the same-numbered input partition."""

    partition: int
    next_offset: int = OFFSET_BEGINNING  # where the next label is read (OFFSET_BEGINNING: from the start)
    replay_until: int = -1  # alerts of labels below this were already committed
    published: bool = False


class Sidecar:
    """Consume FeatureEvents, run the detector banks, publish DriftEvents."""

    def __init__(
        self,
        config: SidecarConfig,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
        on_alert: Callable[[DriftEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.health = health or HealthState()
        self.on_alert = on_alert
        self.policy = AlertPolicy(config.alerts, config.kafka.group_id)
        self.profile = load_profile(config.reference) if config.reference else None
        self.partitions: dict[tuple[str, int], _Partition] = {}
        self.label_parts: dict[int, _LabelPartition] = {}
        self.labels_topic = config.kafka.labels_topic if config.detectors.concept_drift.enabled else None
        if config.kafka.labels_topic and self.labels_topic is None:
            log.warning("kafka.labels_topic is set but detectors.concept_drift is disabled: labels are not read")
        self.consumed = 0
        self.http_port: int | None = None
        self._stopping = False
        self._delivery = _Delivery()
        self._last_gauges = 0.0
        self._last_report = (time.monotonic(), 0)
        self._lag: dict[tuple[str, int], int] = {}
        # events per batch: batch_size, and bounded by matrix cells and message bytes (wide events)
        self._budget = BatchBudget()
        self._fatal: KafkaError | None = None
        self._txn_started: float | None = None
        self._idle = IdleClock(config.idle_exit, log)  # restarted in _loop and _on_assign
        kafka = config.kafka
        self.instance_id = kafka.instance_id or socket.gethostname()
        self.checkpointing = config.checkpoint.enabled and config.detectors.backend == "kernel"
        if config.checkpoint.enabled and not self.checkpointing:
            log.warning("checkpoints need detectors.backend=kernel; state is kept in memory only")
        # Security settings (SASL/TLS) go to every client: kafka.common; the consumer
        # section's client-level keys also reach the admin client, so either place works.
        self._common = {"bootstrap.servers": kafka.bootstrap_servers, "logger": rdkafka_log, **kafka.common}
        self.consumer = Consumer(
            {
                **self._common,
                "error_cb": self._on_kafka_error,
                "group.id": kafka.group_id,
                "group.instance.id": f"{self.instance_id}",
                "session.timeout.ms": 10_000,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.partition.eof": False,
                # Late labels meet their predictions only if partition i of both topics goes
                # to the same member: the range assignor does that for equal partition counts.
                **({"partition.assignment.strategy": "range"} if self.labels_topic else {}),
                **kafka.consumer,
            }
        )
        producer_conf: dict[str, Any] = {
            **self._common,
            "error_cb": self._on_kafka_error,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.max.bytes": MAX_STATE_BYTES + 1024 * 1024,
            "compression.type": "lz4",
        }
        if kafka.exactly_once:
            producer_conf["transactional.id"] = transactional_id(kafka.group_id, self.instance_id)
            producer_conf["transaction.timeout.ms"] = 60_000
        self.producer = Producer({**producer_conf, **kafka.producer})
        self._admin_conf = admin_settings(self._common, kafka.consumer)

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, *_: Any) -> None:
        """Finish the current batch, commit, exit (SIGTERM/SIGINT handler)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Run until stopped, ``max_events`` or ``idle_exit``; returns the exit code."""
        cfg = self.config
        server = serve(self.metrics, self.health, cfg.metrics_host, cfg.metrics_port)
        self.http_port = server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, self.http_port)
        try:
            self._start_up()
            # numba's cached kernels load on first call (~0.4 s): here, not in the first batch
            log.info("detector kernels loaded in %.2fs", load_kernels(cfg.detectors, self.profile))
            # Everything allocated so far (modules, compiled kernels, clients) lives as
            # long as the process: keep it out of the cycle collector's generations
            # (measured: +15-28 % events per CPU second, docs/performance.md).
            gc.freeze()
            threading.Thread(target=self._watch_broker, name="broker-watch", daemon=True).start()
            topics = [cfg.kafka.input_topic] + ([self.labels_topic] if self.labels_topic else [])
            self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
            self._loop()
        except StartupError as exc:
            log.error("cannot start: %s", exc)
            self.consumer.close()
            server.shutdown()
            return 3
        except KafkaException as exc:
            log.error("fatal Kafka error, exiting: %s", exc.args[0].str() if exc.args else exc)
            server.shutdown()
            return 1
        self._shutdown()
        server.shutdown()
        return 0

    def _watch_broker(self, interval_s: float = 0.5) -> None:
        """Background thread: is the broker answering? (The main loop may be blocked in a
        transaction while it is away, so readiness cannot depend on the loop.)"""
        admin = AdminClient(self._admin_conf)
        while not self._stopping:
            try:
                admin.list_topics(timeout=2)
                self.health.set_broker(None)
            except KafkaException as exc:
                self.health.set_broker(f"broker unreachable: {exc.args[0].str()}")
            started = self._txn_started
            if started is not None and time.monotonic() - started > TXN_STUCK_S:
                self._restart_in_place(f"a transactional call has not returned for {TXN_STUCK_S:.0f}s")
            time.sleep(interval_s)

    def _restart_in_place(self, why: str) -> None:
        """Re-execute this process: a fresh Kafka client, state restored from checkpoints.

        Exactly-once makes this safe: the open transaction is aborted when the new producer
        (same transactional.id) initialises, and the partitions are rewound to their
        checkpoints as after any crash.
        """
        log.error("%s (librdkafka bug); restarting in place to recover", why)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

    def _start_up(self) -> None:
        """Reach the broker, create output topics, initialise transactions — or fail clearly."""
        kafka = self.config.kafka
        admin = AdminClient({**self._admin_conf, "error_cb": self._on_kafka_error})
        existing = list_topics(admin, kafka.bootstrap_servers, lambda: self._fatal)
        if self.labels_topic:
            self._check_labels_topic(existing)
        create_topics(admin, (kafka.alerts_topic, kafka.dlq_topic), existing)
        if self.checkpointing:
            ensure_state_topic(admin, kafka.state_topic)
        if kafka.exactly_once:
            try:
                self.producer.init_transactions(STARTUP_TIMEOUT_S)
            except KafkaException as exc:
                raise StartupError(f"cannot initialise transactions: {explain(exc.args[0], kafka.bootstrap_servers)}") from None

    def _check_labels_topic(self, existing: dict[str, Any]) -> None:
        """The labels topic must exist and be partitioned like the input topic."""
        kafka = self.config.kafka
        if self.labels_topic not in existing:
            raise StartupError(f"kafka.labels_topic: topic {self.labels_topic!r} does not exist")
        strategy = str(kafka.consumer.get("partition.assignment.strategy", "range"))
        if strategy != "range":
            raise StartupError(
                f"kafka.consumer.partition.assignment.strategy: {strategy!r} with kafka.labels_topic; only 'range' "
                "keeps partition i of the input and labels topics on the same sidecar"
            )
        n_labels = len(existing[self.labels_topic].partitions)
        n_input = len(existing[kafka.input_topic].partitions) if kafka.input_topic in existing else None
        if n_input is not None and n_input != n_labels:
            raise StartupError(
                f"kafka.labels_topic: {self.labels_topic!r} has {n_labels} partitions, input topic "
                f"{kafka.input_topic!r} has {n_input}; they must be equal, each label in its request's partition number"
            )

    def _loop(self) -> None:
        cfg = self.config
        while not self._stopping:
            self.health.beat()
            if self._fatal is not None:
                raise KafkaException(self._fatal)
            budget = self._budget.events(cfg.batch_size, self._widest_bank())
            if cfg.max_events is not None:
                budget = min(budget, cfg.max_events - self.consumed)
                if budget <= 0:
                    log.info("max_events=%d reached", cfg.max_events)
                    return
            msgs = self.consumer.consume(num_messages=budget, timeout=cfg.batch_timeout_s)
            self._budget.observe(msgs)
            if not msgs:
                if not self.health.broker_ok() or not (self.partitions or self.label_parts):
                    # no input because the broker is away, or while this sidecar owns no
                    # partition (before its first assignment, during a rebalance), is not idleness
                    self._idle.restart()
                if self._idle.expired():
                    return
                continue
            started = time.perf_counter()
            self._process_batch(msgs)
            self.metrics.batch_duration.observe(time.perf_counter() - started)
            self._idle.restart()  # idleness counts from the end of the last batch
            self._report_throughput()

    def _shutdown(self) -> None:
        self._stopping = True
        self._update_gauges(force=True)
        self.consumer.close()  # revokes: the revoked partitions' state is checkpointed
        self.producer.flush(30)
        log.info("stopped after %d messages", self.consumed)

    # ------------------------------------------------------------------ batch
    def _process_batch(self, msgs: list[Message]) -> None:
        try:
            self._begin()
            touched = self._process(msgs)
            self._checkpoint(touched, force=False)
            self._finish({**{key: self.partitions[key].next_offset for key in touched}, **self._label_offsets()})
        except _Abort as exc:
            log.warning("transaction aborted (%s): rewinding to the last checkpoint", exc)
            self._abort()
            self._rewind()

    def _process(self, msgs: list[Message]) -> list[tuple[str, int]]:
        """Decode, detect, produce; returns the partitions the batch touched."""
        # per partition, in offset order: runs of one-event messages, and columnar messages
        per_partition: dict[tuple[str, int], list[list[tuple[int, EventView]] | tuple[int, ColumnBatch]]] = {}
        newest_ts: dict[tuple[str, int], float] = {}
        touched: dict[tuple[str, int], None] = {}
        joined: dict[tuple[str, int], list[JoinedLabel]] = {}
        for msg in msgs:
            err = msg.error()
            if err is not None:
                self._on_consume_error(err)
                continue
            if self.labels_topic is not None and msg.topic() == self.labels_topic:
                self._take_label(msg, joined, touched)
                continue
            key = (msg.topic(), msg.partition())
            part = self.partitions.get(key)
            if part is None:  # a stale message of a partition revoked meanwhile
                continue
            touched[key] = None
            offset = msg.offset()
            part.next_offset = offset + 1
            part.since_checkpoint += 1
            self.consumed += 1
            value = msg.value()
            segments = per_partition.setdefault(key, [])
            try:
                if is_columnar(value):
                    columns = decode_columns(value)
                    segments.append((offset, columns))
                    last_ts = float(columns.ts[-1])
                    if last_ts == last_ts:
                        newest_ts[key] = last_ts
                    if part.labels is not None and columns.id is not None and columns.prediction is not None:
                        joined.setdefault(key, []).extend(part.labels.add_predictions(
                            columns.model or self.config.default_model, columns.id, columns.prediction,
                            columns.label or repeat(None), _message_time(msg)))
                    continue
                event = decode_event_fast(value)
            except InvalidEvent as exc:
                if offset >= part.replay_until:
                    self._dead_letter(msg, exc)
                    part.published = True
                continue
            if not segments or segments[-1].__class__ is not list:
                segments.append([])
            segments[-1].append((offset, event))  # type: ignore[union-attr]
            if event.ts is not None:
                newest_ts[key] = event.ts
            if part.labels is not None and event.prediction is not None:
                joined.setdefault(key, []).extend(part.labels.add_predictions(
                    event.model or self.config.default_model, (event.id,), (event.prediction,), (event.label,),
                    _message_time(msg)))
        # One gauge update per partition and batch (per event it cost ~20% of the loop).
        for (topic, partition), ts in newest_ts.items():
            self.metrics.last_event_ts.labels(topic, str(partition)).set(ts)
        now = time.time()
        for key, segments in per_partition.items():
            part = self.partitions[key]

            def admit(m: str, names: list[str], part: _Partition = part) -> list[str]:
                return self._bank(part, m).admit(names)

            for segment in segments:
                if segment.__class__ is list:
                    batches = to_batches(segment, self.config.default_model, admit=admit)  # type: ignore[arg-type]
                else:
                    offset, columns = segment  # type: ignore[misc]
                    model, batch = columnar_to_batch(columns, offset, self.config.default_model, admit=admit)
                    batches = {model: batch}
                for model, batch in batches.items():
                    self._detect(part, model, batch, now)
        for key, hits in joined.items():
            self._concept_from_labels(self.partitions[key], hits, now)
        if self.labels_topic is not None:
            for key in touched:
                self._expire_labels(self.partitions[key])
        self._update_gauges()  # drift gauges flip in _publish; the rest once a second
        return list(touched)

    def _detect(self, part: _Partition, model: str, batch: FeatureBatch, now: float) -> None:
        """Run one model's bank over a batch of the partition; publish what the policy admits."""
        bank = self._bank(part, model)
        live = batch.offsets >= part.replay_until
        self.metrics.events.labels(model).inc(int(live.sum()))
        if batch.dropped_values:
            self.metrics.features_dropped.labels(model).inc(batch.dropped_values)
        for sig in bank.update(batch):
            offset = int(batch.offsets[sig.row])
            if not self.policy.admit(sig, model, part.topic, part.partition, offset):
                continue
            if offset < part.replay_until:
                continue  # committed before the restart
            ts = float(batch.event_times[sig.row])
            row = None if batch.rows_in_message is None else int(batch.rows_in_message[sig.row])
            self._publish(
                self.policy.to_event(
                    sig, model=model, topic=part.topic, partition=part.partition, offset=offset,
                    event_time=None if ts != ts else ts, now=now, row=row,
                )
            )
            part.published = True

    # ------------------------------------------------------------------ late labels
    def _take_label(self, msg: Message, joined: dict[tuple[str, int], list[JoinedLabel]],
                    touched: dict[tuple[str, int], None]) -> None:
        """One labels-topic message: DLQ if malformed, else offered to its partition's join."""
        lp = self.label_parts.get(msg.partition())
        if lp is None:  # a stale message of a partition revoked meanwhile
            return
        offset = msg.offset()
        lp.next_offset = offset + 1
        self.consumed += 1
        key = (self.config.kafka.input_topic, msg.partition())
        part = self.partitions.get(key)
        try:
            event = decode_label(msg.value())
        except InvalidEvent as exc:
            if offset >= lp.replay_until:
                self._dead_letter(msg, exc)
                lp.published = True
            return
        if part is None or part.labels is None:
            self.metrics.labels_unmatched.labels("label").inc()
            log.error("label at %s[%d]@%d has no input partition %s[%d] here: are the topics co-partitioned?",
                      self.labels_topic, msg.partition(), offset, *key)
            return
        touched[key] = None
        part.since_checkpoint += 1  # labels move the partition's state too
        hit = part.labels.add_label(event, offset, _message_time(msg))
        if hit is not None:
            joined.setdefault(key, []).append(hit)

    def _concept_from_labels(self, part: _Partition, hits: list[JoinedLabel], now: float) -> None:
        """Joined (prediction, label) pairs -> each model's concept-drift ADWIN -> alerts."""
        lp = self.label_parts.get(part.partition)
        topic = self.labels_topic or ""
        by_model: dict[str, list[JoinedLabel]] = {}
        for hit in hits:
            by_model.setdefault(hit.model, []).append(hit)
        for model, pairs in by_model.items():
            self.metrics.labels_joined.labels(model).inc(len(pairs))
            bank = self._bank(part, model)
            if bank.concept is None:
                continue
            for sig in bank.concept.update_errors([pair_error(h.prediction, h.label) for h in pairs]):
                hit = pairs[sig.row]
                if not self.policy.admit(sig, model, topic, part.partition, hit.offset):
                    continue
                if lp is None or hit.offset < lp.replay_until:
                    continue  # committed before the restart
                self._publish(self.policy.to_event(sig, model=model, topic=topic, partition=part.partition,
                                                   offset=hit.offset, event_time=hit.ts, now=now))
                lp.published = True
                # The two topics interleave differently after a restart: never let a replay
                # cross a published late-label alert (it could land on a new offset).
                part.force_checkpoint = True

    def _expire_labels(self, part: _Partition) -> None:
        if part.labels is None:
            return
        part.labels.expire()
        for side, n in part.labels.take_unmatched().items():
            if n:
                self.metrics.labels_unmatched.labels(side).inc(n)

    def _label_offsets(self, partitions: list[int] | None = None) -> dict[tuple[str, int], int]:
        """Next offsets of the labels partitions (all, or the given numbers), for the commit."""
        if self.labels_topic is None:
            return {}
        wanted = self.label_parts if partitions is None else partitions
        return {(self.labels_topic, p): self.label_parts[p].next_offset for p in wanted if p in self.label_parts}

    def _widest_bank(self) -> int:
        """Features of the widest bank: batches shrink so that one matrix stays ~32 MB."""
        return max((len(b.features) for p in self.partitions.values() for b in p.banks.values()), default=0)

    def _bank(self, part: _Partition, model: str) -> DetectorBank:
        bank = part.banks.get(model)
        if bank is None:
            bank = part.banks[model] = DetectorBank(self.config.detectors, self.profile)
        return bank

    def _publish(self, event: DriftEvent) -> None:
        self._produce(self.config.kafka.alerts_topic, event.key.encode(), event.model_dump_json().encode(), None)
        self.metrics.alerts.labels(event.model, event.feature, event.detector, event.status).inc()
        self.metrics.drift_detected.labels(event.model, event.feature, event.detector).set(
            1 if event.status == "drift" else 0
        )
        log.info("alert %s", event.model_dump_json())
        if self.on_alert is not None:
            self.on_alert(event)

    def _dead_letter(self, msg: Message, exc: InvalidEvent) -> None:
        headers = list(msg.headers() or [])
        headers += [
            (H_REASON, exc.reason.encode()),
            (H_ERROR, exc.detail.encode("utf-8", "replace")[:1000]),
            (H_TOPIC, msg.topic().encode()),
            (H_PARTITION, str(msg.partition()).encode()),
            (H_OFFSET, str(msg.offset()).encode()),
        ]
        self._produce(self.config.kafka.dlq_topic, msg.key(), msg.value(), headers)
        self.metrics.invalid_events.labels(exc.reason).inc()

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, headers: list | None) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, headers=headers, on_delivery=self._delivery)
                self.producer.poll(0)
                return
            except BufferError:  # local queue full: let deliveries drain
                if time.monotonic() > deadline:
                    raise _Abort(f"producer queue stayed full while writing to {topic}") from None
                self.producer.poll(0.05)
                self.health.beat()
            except KafkaException as exc:
                raise _Abort(exc.args[0].str()) from None

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, keys: list[tuple[str, int]], force: bool) -> None:
        if not self.checkpointing:
            return
        cfg = self.config.checkpoint
        now = time.monotonic()
        for key in keys:
            part = self.partitions[key]
            due = (
                force
                or part.force_checkpoint
                or part.checkpointed_at == 0.0
                or part.since_checkpoint >= cfg.every_events
                or now - part.checkpointed_at >= cfg.every_s
            )
            if not due or part.next_offset < 0:
                continue
            doc = {
                "version": 1,
                "group": self.config.kafka.group_id,
                "topic": part.topic,
                "partition": part.partition,
                "next_offset": part.next_offset,
                "banks": {model: bank.state_dict() for model, bank in part.banks.items()},
                "policy": self.policy.export_partition(part.topic, part.partition),
            }
            if part.labels is not None and self.labels_topic is not None:
                lp = self.label_parts.get(part.partition)
                doc["labels"] = {
                    "next_offset": lp.next_offset if lp is not None else None,
                    "join": part.labels.state_dict(),
                    "policy": self.policy.export_partition(self.labels_topic, part.partition),
                }
            blob = encode_state(doc)
            part.force_checkpoint = False
            part.since_checkpoint = 0
            part.checkpointed_at = now
            if len(blob) > MAX_STATE_BYTES:
                # Correct without it (the previous checkpoint stays, a restart re-reads more),
                # but say so: fewer features per model (detectors.max_features) keep it small.
                log.error("checkpoint of %s[%d] is %d bytes > %d: not written", *key, len(blob), MAX_STATE_BYTES)
                continue
            self._produce(self.config.kafka.state_topic, state_key(self.config.kafka.group_id, *key), blob, None)

    def _committed(self, tps: list[TopicPartition], wait_s: float = PENDING_OFFSETS_WAIT_S) -> list[TopicPartition]:
        """The group's committed offsets, waiting (bounded) while an open transaction holds them.

        Under read_committed the broker answers UNSTABLE_OFFSET_COMMIT for offsets sent in a
        transaction that is neither committed nor aborted yet; librdkafka retries until its
        timeout. That transaction belongs to a member that died mid-commit, and the broker
        aborts it after its transaction.timeout.ms: wait for that instead of failing the
        takeover.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.consumer.committed(tps, timeout=min(10.0, max(1.0, deadline - time.monotonic())))
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._TIMED_OUT or time.monotonic() >= deadline:
                    raise
                self.health.beat()
                self.health.set_ready("restoring: committed offsets held by an open transaction")
                log.warning("committed offsets of %s not readable yet: a transaction of a member that died "
                            "mid-commit holds them until the broker aborts it (its transaction.timeout.ms); "
                            "waiting", [f"{tp.topic}[{tp.partition}]" for tp in tps])

    def _restore(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        """Rebuild each partition from its checkpoint; return where to read each from."""
        group = self.config.kafka.group_id
        committed = {(tp.topic, tp.partition): tp.offset for tp in self._committed(tps)}
        states: dict[tuple[str, int], Any] = {}
        progress: dict[tuple[str, int], int] = {}
        if self.checkpointing:
            keys = {state_key(group, tp.topic, tp.partition): (tp.topic, tp.partition) for tp in tps}
            marks = {progress_key(group, tp.topic, tp.partition): (tp.topic, tp.partition) for tp in tps}
            found_all = load_states(self._admin_conf, self.config.kafka.state_topic, set(keys) | set(marks))
            states = {keys[k]: v for k, v in found_all.items() if k in keys}
            progress = {marks[k]: v.next_offset for k, v in found_all.items() if k in marks}
        out = []
        label_starts: dict[int, int | None] = {}  # labels partition -> offset its checkpoint was taken at
        for tp in tps:
            if tp.topic == self.labels_topic:
                continue
            key = (tp.topic, tp.partition)
            done = max(committed.get(key, OFFSET_INVALID), progress.get(key, OFFSET_INVALID))
            if done > committed.get(key, OFFSET_INVALID):
                log.warning("%s[%d]: committed offset %s is behind the progress marker %d; using the marker",
                            *key, committed.get(key), done)
            part = _Partition(tp.topic, tp.partition, replay_until=max(done, 0))
            start = done if done >= 0 else OFFSET_BEGINNING
            self.policy.load_partition(tp.topic, tp.partition, [])
            found = states.get(key)
            if found is not None and done >= 0 and found.next_offset <= done:
                try:
                    part.banks = {
                        model: DetectorBank.from_state(st, self.config.detectors, self.profile)
                        for model, st in found.state["banks"].items()
                    }
                    self.policy.load_partition(tp.topic, tp.partition, found.state.get("policy", []))
                    label_starts[tp.partition] = self._restore_labels(part, found.state.get("labels"))
                    start = found.next_offset
                    part.next_offset = start
                    part.checkpointed_at = time.monotonic()
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("checkpoint of %s[%d] not usable (%s): starting without state", *key, exc)
                    part.banks = {}
            elif done >= 0:
                log.warning("no checkpoint for %s[%d]: detectors start fresh at offset %d", *key, done)
            if self.labels_topic is not None:
                if part.labels is None:
                    label_starts[tp.partition] = self._restore_labels(part, None)
                if part.next_offset < 0 and start >= 0:
                    part.next_offset = start  # known now: a labels-only batch can checkpoint the partition
            self.partitions[key] = part
            log.info(
                "partition %s[%d]: committed %s, reading from %s, alerts from %d",
                tp.topic, tp.partition, done, start, part.replay_until,
            )
            out.append(TopicPartition(tp.topic, tp.partition, start))
        for tp in tps:
            if tp.topic != self.labels_topic:
                continue
            key = (tp.topic, tp.partition)
            done = max(committed.get(key, OFFSET_INVALID), progress.get(key, OFFSET_INVALID))
            lp = _LabelPartition(tp.partition, replay_until=max(done, 0))
            at_checkpoint = label_starts.get(tp.partition)
            if at_checkpoint is not None and (done < 0 or at_checkpoint <= done):
                lp.next_offset = at_checkpoint  # re-read the labels since the checkpoint, alerts suppressed
            else:
                lp.next_offset = done if done >= 0 else OFFSET_BEGINNING
            self.label_parts[tp.partition] = lp
            log.info("labels %s[%d]: committed %s, reading from %s", *key, done, lp.next_offset)
            out.append(TopicPartition(tp.topic, tp.partition, lp.next_offset))
        return out

    def _restore_labels(self, part: _Partition, state: dict[str, Any] | None) -> int | None:
        """The partition's label join from its checkpoint (or empty); returns the labels offset it matches."""
        if self.labels_topic is None:
            return None
        cfg = self.config.detectors.concept_drift
        self.policy.load_partition(self.labels_topic, part.partition, state.get("policy", []) if state else [])
        if state is None:
            part.labels = LabelJoin(cfg.label_wait_events, cfg.label_wait_s)
            return None
        part.labels = LabelJoin.from_state(state["join"], cfg.label_wait_events, cfg.label_wait_s)
        offset = state.get("next_offset")
        return None if offset is None else int(offset)

    # ------------------------------------------------------------------ transactions
    def _begin(self) -> None:
        if self.config.kafka.exactly_once:
            self._txn(self.producer.begin_transaction)

    def _finish(self, next_offsets: dict[tuple[str, int], int]) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items() if o >= 0]
        if self.config.kafka.exactly_once:
            if self.checkpointing:
                # How far a partition got, committed with its alerts: only transactions that
                # publish something need it (it bounds what a restart must not repeat).
                for tp in offsets:
                    part = self._holder(tp.topic, tp.partition)
                    if part is not None and part.published:
                        part.published = False
                        self._produce(self.config.kafka.state_topic,
                                      progress_key(self.config.kafka.group_id, tp.topic, tp.partition),
                                      encode_state({"next_offset": tp.offset}), None)
            if offsets:
                meta = self.consumer.consumer_group_metadata()
                self._await_broker()
                self._txn(lambda: self.producer.send_offsets_to_transaction(offsets, meta, 30))
            self._txn(lambda: self.producer.commit_transaction(30))
            if self._delivery.failures:  # cannot happen after a successful commit, but never hide it
                failures, self._delivery.failures = self._delivery.failures, []
                log.error("deliveries failed inside a committed transaction: %s", failures[:5])
        else:
            remaining = self.producer.flush(60)
            if remaining or self._delivery.failures:
                failures, self._delivery.failures = self._delivery.failures, []
                raise _Abort(f"{remaining} undelivered, failures: {failures[:5]}")
            if offsets:
                try:
                    self.consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as exc:
                    raise _Abort(f"offset commit failed: {exc.args[0].str()}") from None
        self.health.set_ready(None)

    def _holder(self, topic: str, partition: int) -> _Partition | _LabelPartition | None:
        if topic == self.labels_topic:
            return self.label_parts.get(partition)
        return self.partitions.get((topic, partition))

    def _await_broker(self) -> None:
        """Wait (bounded) while the broker watch sees the broker away.

        librdkafka's send_offsets_to_transaction ignores its timeout and can hang for good
        when the group coordinator is down at the call (librdkafka issues #5456, #5511), so
        it is not called while the broker is known to be away.
        """
        deadline = time.monotonic() + TXN_RETRY_S
        while not self.health.broker_ok() and time.monotonic() < deadline:
            self.health.beat()
            time.sleep(0.2)

    def _txn(self, call: Callable[[], Any]) -> None:
        """Run a transactional call: retry retriable errors, abort abortable ones, raise fatal ones."""
        deadline = time.monotonic() + TXN_RETRY_S
        while True:
            try:
                self._txn_started = time.monotonic()
                try:
                    call()
                finally:
                    self._txn_started = None
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal():
                    raise
                if err.txn_requires_abort():
                    raise _Abort(err.str()) from None
                if not err.retriable() or time.monotonic() > deadline:
                    raise
                self.health.set_ready(f"transaction retrying: {err.str()}")
                self.health.beat()
                log.warning("transaction call failed, retrying: %s", err.str())
                time.sleep(0.5)

    def _abort(self) -> None:
        self._delivery.failures = []
        if not self.config.kafka.exactly_once:
            return
        deadline = time.monotonic() + TXN_RETRY_S
        while True:
            try:
                self.producer.abort_transaction(30)
                return
            except KafkaException as exc:
                if exc.args[0].fatal() or time.monotonic() > deadline:
                    raise
                self.health.beat()
                time.sleep(0.5)

    def _rewind(self) -> None:
        """After an abort: rebuild every assigned partition from its checkpoint and seek there."""
        assigned = list(self.consumer.assignment())
        for tp in self._restore(assigned):
            self.consumer.seek(tp)

    # ------------------------------------------------------------------ rebalance
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])
        if self.labels_topic is not None:
            inputs = {p.partition for p in partitions if p.topic != self.labels_topic}
            labels = {p.partition for p in partitions if p.topic == self.labels_topic}
            if inputs != labels:
                log.error("input partitions %s but labels partitions %s: labels without their partition are lost",
                          sorted(inputs), sorted(labels))
        consumer.assign(self._restore(partitions))
        self.health.set_ready(None)
        self._idle.restart()  # a group rejoining (e.g. after a broker restart) is not idleness

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions if (p.topic, p.partition) in self.partitions]
        label_keys = [p.partition for p in partitions if p.topic == self.labels_topic and p.partition in self.label_parts]
        # Offsets are committed per batch; checkpoint the state so the next owner
        # does not have to re-read events since the last periodic checkpoint.
        if keys and self.checkpointing and self._fatal is None:
            try:
                self._begin()
                self._checkpoint(keys, force=True)
                self._finish({**{k: self.partitions[k].next_offset for k in keys}, **self._label_offsets(label_keys)})
            except (_Abort, KafkaException) as exc:
                log.warning("could not checkpoint revoked partitions (%s); the next owner re-reads more", exc)
                try:
                    self._abort()
                except KafkaException:
                    pass
        for key in keys:
            del self.partitions[key]
            self.policy.load_partition(key[0], key[1], [])
            self._lag.pop(key, None)
        for number in label_keys:
            del self.label_parts[number]
            self.policy.load_partition(self.labels_topic or "", number, [])
            self._lag.pop((self.labels_topic or "", number), None)
        consumer.unassign()
        log.info("revoked %s", keys)

    # ------------------------------------------------------------------ read-outs
    def _update_gauges(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_gauges < 1.0:
            return
        self._last_gauges = now
        m = self.metrics
        drift: dict[tuple[str, str, str], bool] = {}
        for part in self.partitions.values():
            for model, bank in part.banks.items():
                for st in bank.status():
                    if st.live_mean is not None:
                        m.feature_mean.labels(model, st.feature).set(st.live_mean)
                    if st.missing_ratio is not None:
                        m.missing_ratio.labels(model, st.feature).set(st.missing_ratio)
                    for stat, value in st.scores.items():
                        m.drift_score.labels(model, st.feature, stat).set(value)
                    for det, size in st.window_size.items():
                        m.window_size.labels(model, st.feature, det).set(size)
                    for det, flag in st.drift.items():
                        drift[(model, st.feature, det)] = drift.get((model, st.feature, det), False) or flag
        for labels, flag in drift.items():
            m.drift_detected.labels(*labels).set(1 if flag else 0)
        if self.labels_topic is not None:
            pending = {"prediction": 0, "label": 0}
            for part in self.partitions.values():
                for side, n in (part.labels.pending().items() if part.labels is not None else ()):
                    pending[side] += n
            for side, n in pending.items():
                m.labels_pending.labels(side).set(n)
        self._update_lag()

    def _update_lag(self) -> None:
        try:
            assigned = self.consumer.assignment()
            positions = self.consumer.position(assigned) if assigned else []
        except KafkaException:
            return
        for tp in positions:
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                lag = max(high - tp.offset, 0)
                self._lag[(tp.topic, tp.partition)] = lag
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    def _report_throughput(self) -> None:
        """One log line every ``log_interval_s`` (lag as of the last gauge update)."""
        now = time.monotonic()
        since, count = self._last_report
        if now - since < self.config.log_interval_s:
            return
        self._last_report = (now, self.consumed)
        log.info(
            "throughput messages=%d rate=%.0f/s lag=%d partitions=%d",
            self.consumed,
            (self.consumed - count) / (now - since),
            sum(self._lag.values()),
            len(self._lag),
        )

    # ------------------------------------------------------------------ callbacks
    def _on_kafka_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.health.set_ready(f"broker unreachable: {err.str()}")
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED) or err.fatal():
            self._fatal = err
        rdkafka_log.warning("kafka: %s", err.str(), extra={"kind": err.name()})

    def _on_consume_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise KafkaException(err)
        log.warning("consume error: %s", err.str())


def _message_time(msg: Message) -> float:
    """The message's Kafka timestamp in seconds (the join's clock: the same on a re-read)."""
    kind, ms = msg.timestamp()
    return ms / 1000.0 if kind != TIMESTAMP_NOT_AVAILABLE else time.time()


def effective_config_line(config: SidecarConfig) -> str:
    """The start-up log line: the effective config, secrets redacted."""
    data = config.model_dump()
    for section in ("common", "consumer", "producer"):
        for key in list(data["kafka"][section]):
            if any(s in key.lower() for s in ("password", "secret", "sasl.oauthbearer", "key", "jaas")):
                data["kafka"][section][key] = "***"
    return json.dumps(data, sort_keys=True)
