"""One consumed batch through the engine: decode per partition, run, publish what it returns.

Messages of the input topic are decoded (a FeatureEvent, or a columnar batch: one topic may
carry both) and handed to the engine per partition; messages of the labels topic go to the
engine's late-label join. Undecodable messages go to the DLQ (unless a restart re-reads
them: then they were sent before). Each partition's position moves past every message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from driftsentinel.detectors.engine import Engine, Item, LabelItem, Output
from driftsentinel.schemas import DriftEvent, InvalidEvent, SidecarConfig
from driftsentinel.schemas.columnar import decode_columns, is_columnar
from driftsentinel.schemas.fastdecode import decode_event_fast
from driftsentinel.schemas.labels import decode_label
from driftsentinel.stream import clients
from driftsentinel.stream.gauges import Gauges
from driftsentinel.stream.partitions import Partitions
from driftsentinel.stream.transaction import Transaction

log = logging.getLogger("driftsentinel")


class BatchRunner:
    """Runs consumed batches through the engine into the current transaction."""

    def __init__(
        self,
        config: SidecarConfig,
        engine: Engine,
        state: Partitions,
        gauges: Gauges,
        txn: Transaction,
        on_alert: Callable[[DriftEvent], None] | None,
    ) -> None:
        self.config, self.engine, self.state, self.gauges, self.txn = config, engine, state, gauges, txn
        self.metrics = gauges.metrics
        self.labels_topic = engine.labels_topic
        self.on_alert = on_alert
        self.consumed = 0
        #: The largest DLQ record to produce: set at start-up from the DLQ topic's limit.
        self.dlq_max_bytes = config.dlq_max_value_bytes or clients.DLQ_DEFAULT_BYTES

    def run(self, msgs: list[Message]) -> list[tuple[str, int]]:
        """Decode per partition, run the engine, publish; returns the input partitions touched."""
        inputs: dict[tuple[str, int], list[Item]] = {}
        labels: dict[int, list[LabelItem]] = {}
        for msg in msgs:
            err = msg.error()
            if err is not None:
                clients.consume_error(err)
            elif msg.topic() == self.labels_topic:
                self._take_label(msg, labels)
            else:
                self._take_input(msg, inputs)
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
        return list(touched)

    def _take_input(self, msg: Message, inputs: dict[tuple[str, int], list[Item]]) -> None:
        """An input message: its partition's position moves on; decoded, or (when new) to the DLQ."""
        key = (msg.topic() or "", msg.partition() or 0)
        pos = self.state.inputs.get(key)
        if pos is None:  # a stale message of a partition revoked meanwhile
            return
        offset = msg.offset() or 0
        pos.next_offset = offset + 1
        pos.since_checkpoint += 1
        self.consumed += 1
        value = msg.value()
        try:
            message = decode_columns(value) if value is not None and is_columnar(value) else decode_event_fast(value)
        except InvalidEvent as exc:
            if self.engine.live(*key, offset):
                self._dead_letter(msg, exc)
                pos.published = True
            return
        # the message time is the late-label join's clock and the engine's check of each event's ts
        t = _message_time(msg)
        items = inputs.get(key)
        if items is None:
            items = inputs[key] = []
        items.append((offset, message, t))

    def _take_label(self, msg: Message, labels: dict[int, list[LabelItem]]) -> None:
        """A labels-topic message: decoded for the join, or (when new) to the DLQ."""
        partition, offset = msg.partition() or 0, msg.offset() or 0
        pos = self.state.labels.get(partition)
        if pos is None:  # a stale message of a partition revoked meanwhile
            return
        pos.next_offset = offset + 1
        self.consumed += 1
        try:
            labels.setdefault(partition, []).append((offset, decode_label(msg.value()), _message_time(msg)))
        except InvalidEvent as exc:
            mine = self.engine.owns(self.config.kafka.input_topic, partition)
            if not mine or self.engine.live(self.labels_topic or "", partition, offset):
                self._dead_letter(msg, exc)
                pos.published = True

    def _dead_letter(self, msg: Message, exc: InvalidEvent) -> None:
        # A record over the bound is cut (headers keep its size and sha256): produced whole it
        # could exceed the DLQ topic's limit and abort every retry of this batch.
        (key, value, headers), cut = clients.dead_letter(msg, exc.reason, exc.detail, self.dlq_max_bytes)
        if cut:
            self.metrics.dlq_truncated.inc()
            log.warning(
                "DLQ record of %s[%s]@%s cut to %d bytes (value was %d bytes)",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                self.dlq_max_bytes,
                len(msg.value() or b""),
            )
        self.txn.produce(self.config.kafka.dlq_topic, key, value, headers)
        self.metrics.invalid_events.labels(exc.reason).inc()

    def _emit(self, key: tuple[str, int], out: Output) -> None:
        """The engine's output for one partition: alerts published, counts into metrics."""
        self.gauges.counts(*key, out)
        if out.orphan_labels:
            log.error(
                "%d labels of %s[%d] have no input partition %s[%d] here: are the topics co-partitioned?",
                out.orphan_labels,
                self.labels_topic,
                key[1],
                *key,
            )
        for event in out.events:
            self.txn.produce(self.config.kafka.alerts_topic, event.key.encode(), event.model_dump_json().encode())
            self.gauges.alert(event)
            log.info("alert %s", event.model_dump_json())
            self.state.mark_published(event.source.topic, event.source.partition, self.labels_topic)
            if self.on_alert is not None:
                self.on_alert(event)
        if out.label_alerts and key in self.state.inputs:
            self.state.inputs[key].force_checkpoint = True


def _message_time(msg: Message) -> float:
    """The message's Kafka timestamp in seconds (the join's clock: the same on a re-read)."""
    kind, ms = msg.timestamp()
    return ms / 1000.0 if kind != TIMESTAMP_NOT_AVAILABLE else time.time()
