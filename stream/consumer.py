"""The sidecar loop: consume a batch, decode, detect, publish, commit.

Delivery guarantee: at-least-once. Offsets are committed only after every alert and
DLQ record of the batch is acknowledged by the broker (idempotent producer, acks=all);
if the process dies in between, the batch is read again and yields the same
``event_id``s, so consumers can de-duplicate.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from detectors.bank import DetectorBank
from schemas import DriftEvent, FeatureEvent, InvalidEvent, SidecarConfig, decode_event
from stream.alerts import AlertPolicy
from stream.columns import to_batches
from stream.metrics import HealthState, Metrics, serve

log = logging.getLogger("driftsentinel")

#: DLQ record headers (the value and key are the original bytes).
H_REASON = "driftsentinel.reason"
H_ERROR = "driftsentinel.error"
H_TOPIC = "driftsentinel.source.topic"
H_PARTITION = "driftsentinel.source.partition"
H_OFFSET = "driftsentinel.source.offset"


class DeliveryFailed(RuntimeError):
    """An alert or DLQ record was not acknowledged; offsets must not be committed."""


@dataclass
class _Delivery:
    failures: list[str] = field(default_factory=list)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err}")


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
        self.banks: dict[tuple[str, int, str], DetectorBank] = {}
        self.consumed = 0
        self.http_port: int | None = None
        self._stopping = False
        self._delivery = _Delivery()
        self._last_gauges = 0.0
        self._last_probe = 0.0
        self._last_report = (time.monotonic(), 0)
        self._lag: dict[tuple[str, int], int] = {}
        kafka = config.kafka
        common = {"bootstrap.servers": kafka.bootstrap_servers, "error_cb": self._on_kafka_error}
        self.consumer = Consumer(
            {
                **common,
                "group.id": kafka.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                **kafka.consumer,
            }
        )
        self.producer = Producer(
            {**common, "enable.idempotence": True, "acks": "all", "linger.ms": 5, **kafka.producer}
        )

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, *_: Any) -> None:
        """Finish the current batch, flush, commit, exit (SIGTERM/SIGINT handler)."""
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
            self._ensure_output_topics()
            self.consumer.subscribe([cfg.kafka.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
            self._loop()
        finally:
            self._shutdown()
            server.shutdown()
        return 0

    def _loop(self) -> None:
        cfg = self.config
        last_input = time.monotonic()
        while not self._stopping:
            self.health.beat()
            budget = cfg.batch_size
            if cfg.max_events is not None:
                budget = min(budget, cfg.max_events - self.consumed)
                if budget <= 0:
                    log.info("max_events=%d reached", cfg.max_events)
                    return
            msgs = self.consumer.consume(num_messages=budget, timeout=cfg.batch_timeout_s)
            if not msgs:
                self._probe_broker_when_not_ready()
                if cfg.idle_exit is not None and time.monotonic() - last_input >= cfg.idle_exit:
                    log.info("no input for %.1fs: exiting (idle_exit)", cfg.idle_exit)
                    return
                continue
            last_input = time.monotonic()
            started = time.perf_counter()
            self._process(msgs)
            self.metrics.batch_duration.observe(time.perf_counter() - started)
            self._report_throughput()

    def _shutdown(self) -> None:
        self._stopping = True
        try:
            self.producer.flush(30)
            self._update_gauges(force=True)
        finally:
            self.consumer.close()  # leaves the group at once; offsets were committed per batch
        log.info("stopped after %d messages", self.consumed)

    # ------------------------------------------------------------------ batch
    def _process(self, msgs: list[Message]) -> None:
        topic_name = self.config.kafka.input_topic
        per_partition: dict[int, list[tuple[int, FeatureEvent]]] = {}
        next_offsets: dict[tuple[str, int], int] = {}
        for msg in msgs:
            err = msg.error()
            if err is not None:
                self._on_consume_error(err)
                continue
            partition, offset = msg.partition(), msg.offset()
            next_offsets[(msg.topic(), partition)] = offset + 1
            self.consumed += 1
            try:
                event = decode_event(msg.value())
            except InvalidEvent as exc:
                self._dead_letter(msg, exc)
                continue
            per_partition.setdefault(partition, []).append((offset, event))
            ts = event.ts
            if ts is not None:
                self.metrics.last_event_ts.labels(topic_name, str(partition)).set(ts)
        now = time.time()
        signalled = False
        for partition, events in per_partition.items():
            for model, batch in to_batches(events, self.config.default_model).items():
                self.metrics.events.labels(model).inc(batch.n_rows)
                bank = self.banks.get((topic_name, partition, model))
                if bank is None:
                    bank = self.banks[(topic_name, partition, model)] = DetectorBank(self.config.detectors)
                for sig in bank.update(batch):
                    offset = int(batch.offsets[sig.row])
                    if not self.policy.admit(sig, model, topic_name, partition, offset):
                        continue
                    ts = float(batch.event_times[sig.row])
                    event = self.policy.to_event(
                        sig,
                        model=model,
                        topic=topic_name,
                        partition=partition,
                        offset=offset,
                        event_time=None if ts != ts else ts,
                        now=now,
                    )
                    self._publish(event)
                    signalled = True
        self._commit(next_offsets)
        self._update_gauges(force=signalled)
        self._update_lag()

    def _publish(self, event: DriftEvent) -> None:
        self.producer.produce(
            self.config.kafka.alerts_topic,
            key=event.key.encode(),
            value=event.model_dump_json().encode(),
            on_delivery=self._delivery,
        )
        self.producer.poll(0)
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
        self._produce_with_retry(self.config.kafka.dlq_topic, msg.key(), msg.value(), headers)
        self.metrics.invalid_events.labels(exc.reason).inc()

    def _produce_with_retry(self, topic: str, key: bytes | None, value: bytes | None, headers: list) -> None:
        for _ in range(1000):  # bounded: ~10 s of a full local queue
            try:
                self.producer.produce(topic, key=key, value=value, headers=headers, on_delivery=self._delivery)
                self.producer.poll(0)
                return
            except BufferError:
                self.producer.poll(0.01)
        raise DeliveryFailed(f"producer queue stayed full while writing to {topic}")

    def _commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        """Commit only after every record of the batch was acknowledged."""
        remaining = self.producer.flush(60)
        if remaining or self._delivery.failures:
            failures, self._delivery.failures = self._delivery.failures, []
            raise DeliveryFailed(f"{remaining} undelivered, failures: {failures[:5]}")
        if next_offsets:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()], asynchronous=False
            )
        self.health.set_ready(None)

    # ------------------------------------------------------------------ read-outs
    def _update_gauges(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_gauges < 1.0:
            return
        self._last_gauges = now
        m = self.metrics
        drift: dict[tuple[str, str, str], bool] = {}
        for (_, _, model), bank in self.banks.items():
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
        """One log line every ``log_interval_s``: messages, rate and lag since the last one."""
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

    def _probe_broker_when_not_ready(self) -> None:
        """While idle and not ready, ask the broker for metadata (at most every 5 s)."""
        if self.health.ready()[0] or time.monotonic() - self._last_probe < 5.0:
            return
        self._last_probe = time.monotonic()
        try:
            self.consumer.list_topics(self.config.kafka.input_topic, timeout=2)
        except KafkaException:
            return
        self.health.set_ready(None)

    # ------------------------------------------------------------------ callbacks
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])
        self.health.set_ready(None)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Offsets are committed at the end of every batch, so nothing is pending here.
        revoked = {(p.topic, p.partition) for p in partitions}
        for key in [k for k in self.banks if (k[0], k[1]) in revoked]:
            del self.banks[key]
        log.info("revoked %s", sorted(revoked))

    def _on_kafka_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.health.set_ready(f"broker unreachable: {err.str()}")
        log.warning("kafka: %s", err.str())

    def _on_consume_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise KafkaException(err)
        log.warning("consume error: %s", err.str())

    def _ensure_output_topics(self) -> None:
        kafka = self.config.kafka
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        existing = admin.list_topics(timeout=10).topics
        wanted = [t for t in (kafka.alerts_topic, kafka.dlq_topic) if t not in existing]
        if not wanted:
            return
        futures = admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=-1) for t in wanted])
        for name, fut in futures.items():
            try:
                fut.result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            log.info("created topic %s", name)


def effective_config_line(config: SidecarConfig) -> str:
    """The start-up log line: the effective config, secrets redacted."""
    data = config.model_dump()
    for section in ("consumer", "producer"):
        for key in list(data["kafka"][section]):
            if any(s in key.lower() for s in ("password", "secret", "sasl.oauthbearer", "key")):
                data["kafka"][section][key] = "***"
    return json.dumps(data, sort_keys=True)
