"""The sidecar loop: consume a batch, decode, hand it to the engine, publish, commit.

Every decision is the engine's (:mod:`driftsentinel.detectors.engine`); this loop reads
Kafka and writes what the engine returns, in one unit per batch
(:mod:`driftsentinel.stream.transaction`): with ``kafka.exactly_once`` (the default) a
transaction holding the batch's alerts, DLQ records, due checkpoints
(:mod:`driftsentinel.stream.partitions`) and input offsets; without, the at-least-once twin.

Restart and rebalance (:mod:`driftsentinel.stream.restore`): an assigned partition is rebuilt
from its newest checkpoint and read from the checkpoint's offset; events up to the committed
offset are re-processed to bring the detectors up to date, but their alerts and DLQ records,
already committed, are not produced again. A transaction that cannot be committed is aborted
and every assigned partition is rewound the same way: nothing is lost, nothing said twice.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as TP

from driftsentinel.detectors.engine import Engine, Item, LabelItem, Output
from driftsentinel.detectors.warmup import load_kernels
from driftsentinel.schemas import DriftEvent, InvalidEvent, SidecarConfig
from driftsentinel.schemas.columnar import ColumnBatch, decode_columns, is_columnar
from driftsentinel.schemas.fastdecode import EventView, decode_event_fast
from driftsentinel.schemas.labels import decode_label
from driftsentinel.schemas.profile import load_profile
from driftsentinel.stream import clients
from driftsentinel.stream.broker_watch import start_broker_watch
from driftsentinel.stream.checkpoint import Checkpoint, StateFormatError, decode_progress, progress_key, state_key
from driftsentinel.stream.columns import BatchBudget
from driftsentinel.stream.gauges import Gauges
from driftsentinel.stream.idle import IdleClock
from driftsentinel.stream.label_topic import check_labels_topic, split_assignment
from driftsentinel.stream.metrics import HealthState, Metrics, serve
from driftsentinel.stream.partitions import InputPosition, Partitions
from driftsentinel.stream.restore import committed_offsets, plan_restore
from driftsentinel.stream.state_topic import ensure_state_topic, read_records
from driftsentinel.stream.transaction import Aborted, AtLeastOnce, ExactlyOnce, Watchdog

log = logging.getLogger("driftsentinel")


class Sidecar:
    """Consume FeatureEvents (and late labels), drive the engine, publish DriftEvents."""

    def __init__(self, config: SidecarConfig, metrics: Metrics | None = None, health: HealthState | None = None,
                 on_alert: Callable[[DriftEvent], None] | None = None) -> None:
        self.config, self.on_alert = config, on_alert
        self.metrics, self.health = metrics or Metrics(), health or HealthState()
        kafka = config.kafka
        self.labels_topic = kafka.labels_topic if config.detectors.concept_drift.enabled else None
        if kafka.labels_topic and self.labels_topic is None:
            log.warning("kafka.labels_topic is set but detectors.concept_drift is disabled: labels are not read")
        self.checkpointing = config.checkpoint.enabled and config.detectors.backend == "kernel"
        if config.checkpoint.enabled and not self.checkpointing:
            log.warning("checkpoints need detectors.backend=kernel; state is kept in memory only")
        self.profile = load_profile(config.reference) if config.reference else None
        self.engine = Engine(config, kafka.input_topic, self.labels_topic, self.profile)
        self.state = Partitions(config, self.engine, self.checkpointing)
        self.gauges = Gauges(self.metrics, config.log_interval_s)
        self.consumed, self.http_port = 0, None
        self._stopping, self._fatal = False, None
        self._budget = BatchBudget()  # events per batch: bounded by matrix cells and message bytes
        self._idle = IdleClock(config.idle_exit, log)  # restarted in _loop and _on_assign
        self.instance_id = kafka.instance_id or socket.gethostname()
        consumer, producer, self._admin_conf = clients.sidecar_settings(config, self.instance_id, self._on_kafka_error)
        self.consumer, self.producer = Consumer(consumer), Producer(producer)
        self.watchdog = Watchdog()
        self.txn = (ExactlyOnce(self.producer, self.consumer, self.health, self.watchdog, log) if kafka.exactly_once
                    else AtLeastOnce(self.producer, self.consumer, self.health))

    @property
    def partitions(self) -> dict[tuple[str, int], Any]:
        """Each assigned input partition's banks (benchmarks read them)."""
        return {key: _Banks(self.engine.banks(*key)) for key in self.state.inputs}

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
            # Everything allocated so far lives as long as the process: keep it out of the
            # cycle collector's generations (measured: +15-28 % events per CPU second).
            gc.freeze()
            start_broker_watch(self._admin_conf, self.health, self.watchdog, lambda: self._stopping)
            topics = [cfg.kafka.input_topic] + ([self.labels_topic] if self.labels_topic else [])
            self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
            self._loop()
        except clients.StartupError as exc:
            log.error("cannot start: %s", exc)
            self.consumer.close()
            server.shutdown()
            return 3
        except KafkaException as exc:
            log.error("fatal Kafka error, exiting: %s", exc.args[0].str() if exc.args else exc)
            server.shutdown()
            return 1
        self._stopping = True
        self._update_gauges(force=True)
        self.consumer.close()  # revokes: the revoked partitions' state is checkpointed
        self.producer.flush(30)
        log.info("stopped after %d messages", self.consumed)
        server.shutdown()
        return 0

    def _start_up(self) -> None:
        """Reach the broker, create output topics, initialise transactions — or fail clearly."""
        kafka = self.config.kafka
        admin = clients.AdminClient({**self._admin_conf, "error_cb": self._on_kafka_error})
        existing = clients.list_topics(admin, kafka.bootstrap_servers, lambda: self._fatal)
        if self.labels_topic:
            check_labels_topic({t: m.partitions for t, m in existing.items()}, kafka.input_topic, self.labels_topic,
                               str(kafka.consumer.get("partition.assignment.strategy", "range")))
        clients.create_topics(admin, (kafka.alerts_topic, kafka.dlq_topic), existing)
        if self.checkpointing:
            ensure_state_topic(admin, kafka.state_topic)
        if kafka.exactly_once:
            try:
                self.producer.init_transactions(clients.STARTUP_TIMEOUT_S)
            except KafkaException as exc:
                why = clients.explain(exc.args[0], kafka.bootstrap_servers)
                raise clients.StartupError(f"cannot initialise transactions: {why}") from None

    def _loop(self) -> None:
        cfg = self.config
        while not self._stopping:
            self.health.beat()
            if self._fatal is not None:
                raise KafkaException(self._fatal)
            budget = self._budget.events(cfg.batch_size, self.state.widest())
            if cfg.max_events is not None:
                budget = min(budget, cfg.max_events - self.consumed)
                if budget <= 0:
                    log.info("max_events=%d reached", cfg.max_events)
                    return
            msgs = self.consumer.consume(num_messages=budget, timeout=cfg.batch_timeout_s)
            self._budget.observe(msgs)
            if not msgs:
                if not self.health.broker_ok() or not (self.state.inputs or self.state.labels):
                    self._idle.restart()  # no input while the broker is away or nothing is assigned is not idleness
                if self._idle.expired():
                    return
                continue
            started = time.perf_counter()
            self._process_batch(msgs)
            self.metrics.batch_duration.observe(time.perf_counter() - started)
            self._idle.restart()  # idleness counts from the end of the last batch
            self.gauges.report_throughput(self.consumed)

    def _process_batch(self, msgs: list[Message]) -> None:
        try:
            self.txn.begin()
            touched = self._process(msgs)
            for key, blob in self.state.due_checkpoints(touched, force=False):
                self.txn.produce(self.config.kafka.state_topic, key, blob)
            self._commit(self.state.offsets(touched, None, self.labels_topic))
        except Aborted as exc:
            log.warning("transaction aborted (%s): rewinding to the last checkpoint", exc)
            self._abort()
            self._rewind()

    def _process(self, msgs: list[Message]) -> list[tuple[str, int]]:
        """Decode per partition, run the engine, publish; returns the input partitions touched."""
        inputs: dict[tuple[str, int], list[Item]] = {}
        labels: dict[int, list[LabelItem]] = {}
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("consume error: %s", err.str())
            elif msg.topic() == self.labels_topic:
                self._take(msg, labels.setdefault(msg.partition(), []), decode_label)
            elif (msg.topic(), msg.partition()) in self.state.inputs:  # else: of a partition revoked meanwhile
                self._take(msg, inputs.setdefault((msg.topic(), msg.partition()), []), _decode_input)
        now = time.time()
        for key, items in inputs.items():
            self._emit(key, self.engine.process(*key, items, now))
        touched = dict.fromkeys(inputs)
        for number, found in labels.items():
            key = (self.config.kafka.input_topic, number)
            if key in self.state.inputs:
                touched[key] = None
                self.state.inputs[key].since_checkpoint += len(found)  # labels move the partition's state too
            self._emit(key, self.engine.process_labels(self.labels_topic or "", number, found, now))
        self._update_gauges()  # drift gauges flip in _publish; the rest once a second
        return list(touched)

    def _take(self, msg: Message, into: list[Any], decode: Callable[[bytes | None], Any]) -> None:
        """One message: its position moves on; decoded into ``into``, or (when new) to the DLQ."""
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        is_label = topic == self.labels_topic
        holder = self.state.labels.get(partition) if is_label else self.state.inputs[(topic, partition)]
        if holder is None:  # a labels partition revoked meanwhile
            return
        holder.next_offset = offset + 1
        self.consumed += 1
        if isinstance(holder, InputPosition):
            holder.since_checkpoint += 1
        try:
            into.append((offset, decode(msg.value()), _message_time(msg)))
        except InvalidEvent as exc:
            if not self.engine.owns(self.config.kafka.input_topic, partition) or self.engine.live(topic, partition,
                                                                                                  offset):
                self.txn.produce(self.config.kafka.dlq_topic, msg.key(), msg.value(),
                                 clients.dead_letter_headers(msg, exc.reason, exc.detail))
                self.metrics.invalid_events.labels(exc.reason).inc()
                holder.published = True

    def _emit(self, key: tuple[str, int], out: Output) -> None:
        """The engine's output for one partition: alerts published, counts into metrics."""
        m = self.metrics
        for model, n in out.events_per_model.items():
            m.events.labels(model).inc(n)
        for model, n in out.dropped_values.items():
            m.features_dropped.labels(model).inc(n)
        for model, n in out.labels_joined.items():
            m.labels_joined.labels(model).inc(n)
        for side, n in out.labels_unmatched.items():
            m.labels_unmatched.labels(side).inc(n)
        if out.newest_event_time is not None:  # one gauge update per partition and batch, not per event
            m.last_event_ts.labels(key[0], str(key[1])).set(out.newest_event_time)
        if out.orphan_labels:
            log.error("%d labels of %s[%d] have no input partition %s[%d] here: are the topics co-partitioned?",
                      out.orphan_labels, self.labels_topic, key[1], *key)
        for event in out.events:
            self.txn.produce(self.config.kafka.alerts_topic, event.key.encode(), event.model_dump_json().encode())
            self.gauges.alert(event)
            log.info("alert %s", event.model_dump_json())
            self.state.mark_published(event.source.topic, event.source.partition, self.labels_topic)
            if self.on_alert is not None:
                self.on_alert(event)
        if out.label_alerts and key in self.state.inputs:
            self.state.inputs[key].force_checkpoint = True

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if self.txn.exactly_once and self.checkpointing:
            for key, blob in self.state.progress_markers(offsets, self.labels_topic):
                self.txn.produce(self.config.kafka.state_topic, key, blob)
        self.txn.commit([TP(t, p, o) for (t, p), o in offsets.items() if o >= 0])
        self.health.set_ready(None)

    def _abort(self) -> None:
        self.txn.abort()

    def _rewind(self) -> None:
        """After an abort: rebuild every assigned partition from its checkpoint and seek there."""
        for tp in self._restore(list(self.consumer.assignment())):
            self.consumer.seek(tp)

    def _restore(self, tps: list[TP]) -> list[TP]:
        """Rebuild each partition from its checkpoint; return where to read each from."""
        group, keys = self.config.kafka.group_id, [(tp.topic, tp.partition) for tp in tps]
        committed = committed_offsets(self.consumer, tps, self.health)
        wanted = {state_key(group, *k): k for k in keys} if self.checkpointing else {}
        marks = {progress_key(group, *k): k for k in keys} if self.checkpointing else {}
        found = read_records(self._admin_conf, self.config.kafka.state_topic, {*wanted, *marks}) if wanted else {}
        checkpoints, progress = {}, {}
        for raw_key, blob in found.items():
            try:
                if raw_key in wanted:
                    checkpoints[wanted[raw_key]] = Checkpoint.decode(blob)
                else:
                    progress[marks[raw_key]] = decode_progress(blob)
            except StateFormatError as exc:
                log.warning("ignoring unreadable state record %s: %s", raw_key.decode(errors="replace"), exc)
        return self.state.apply(plan_restore(keys, committed, progress, checkpoints, self.labels_topic),
                                self.labels_topic)

    def _on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])
        if self.labels_topic is not None:
            inputs, labels = split_assignment([(p.topic, p.partition) for p in partitions], self.labels_topic)
            if inputs != labels:
                log.error("input partitions %s but labels partitions %s: labels without their partition are lost",
                          sorted(inputs), sorted(labels))
        consumer.assign(self._restore(partitions))
        self.health.set_ready(None)
        self._idle.restart()  # a group rejoining (e.g. after a broker restart) is not idleness

    def _on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        keys = [(p.topic, p.partition) for p in partitions if (p.topic, p.partition) in self.state.inputs]
        numbers = [p.partition for p in partitions if p.topic == self.labels_topic and p.partition in self.state.labels]
        # Offsets are committed per batch; checkpoint the state so the next owner
        # does not have to re-read events since the last periodic checkpoint.
        if keys and self.checkpointing and self._fatal is None:
            try:
                self.txn.begin()
                for key, blob in self.state.due_checkpoints(keys, force=True):
                    self.txn.produce(self.config.kafka.state_topic, key, blob)
                self._commit(self.state.offsets(keys, numbers, self.labels_topic))
            except (Aborted, KafkaException) as exc:
                log.warning("could not checkpoint revoked partitions (%s); the next owner re-reads more", exc)
                try:
                    self._abort()
                except KafkaException:
                    pass
        self.state.drop(keys, numbers)
        for key in [*keys, *((self.labels_topic or "", n) for n in numbers)]:
            self.gauges.forget(*key)
        consumer.unassign()
        log.info("revoked %s", keys)

    def _update_gauges(self, force: bool = False) -> None:
        if self.gauges.due(force):
            self.gauges.features(self.engine.readouts())
            self.gauges.consumer_lag(self.consumer)

    def _on_kafka_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.health.set_ready(f"broker unreachable: {err.str()}")
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED) or err.fatal():
            self._fatal = err
        clients.rdkafka_log.warning("kafka: %s", err.str(), extra={"kind": err.name()})


class _Banks:
    def __init__(self, banks: dict[str, Any]) -> None:
        self.banks = banks


def _decode_input(raw: bytes | None) -> EventView | ColumnBatch:
    """A FeatureEvent (JSON) or a columnar batch (msgpack); one topic may carry both."""
    return decode_columns(raw) if raw is not None and is_columnar(raw) else decode_event_fast(raw)


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
