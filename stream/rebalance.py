"""The group's assignment changes: assigned partitions restored from their checkpoints, revoked
ones checkpointed for their next owner (and after an aborted transaction, every assigned
partition rewound the same way).

Where each partition resumes is :mod:`driftsentinel.stream.restore`'s plan; what a partition
holds is :mod:`driftsentinel.stream.partitions`'.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as TP

from driftsentinel.schemas import SidecarConfig
from driftsentinel.stream.gauges import Gauges
from driftsentinel.stream.idle import IdleClock
from driftsentinel.stream.label_topic import split_assignment
from driftsentinel.stream.metrics import HealthState
from driftsentinel.stream.partitions import Partitions
from driftsentinel.stream.restore import committed_offsets, plan_restore
from driftsentinel.stream.state_topic import read_checkpoints
from driftsentinel.stream.transaction import Aborted, AtLeastOnce, ExactlyOnce

log = logging.getLogger("driftsentinel")


class Rebalance:
    """``on_assign`` / ``on_revoke`` for the consumer's subscription, and ``rewind`` after an abort."""

    def __init__(
        self,
        config: SidecarConfig,
        consumer: Consumer,
        state: Partitions,
        txn: ExactlyOnce | AtLeastOnce,
        commit: Callable[[dict[tuple[str, int], int]], None],
        health: HealthState,
        gauges: Gauges,
        idle: IdleClock,
        admin_conf: dict[str, Any],
        labels_topic: str | None,
        checkpointing: bool,
        fatal: Callable[[], KafkaError | None],
    ) -> None:
        self.config, self.consumer, self.state, self.txn, self.commit = config, consumer, state, txn, commit
        self.health, self.gauges, self.idle, self.admin_conf = health, gauges, idle, admin_conf
        self.labels_topic, self.checkpointing, self.fatal = labels_topic, checkpointing, fatal

    def rewind(self) -> None:
        """After an abort: rebuild every assigned partition from its checkpoint and seek there."""
        for tp in self.restore(list(self.consumer.assignment())):
            self.consumer.seek(tp)

    def restore(self, tps: list[TP]) -> list[TP]:
        """Rebuild each partition from its checkpoint; return where to read each from."""
        keys = [(tp.topic, tp.partition) for tp in tps]
        committed = committed_offsets(self.consumer, tps, self.health)
        kafka = self.config.kafka
        checkpoints, progress = (
            read_checkpoints(self.admin_conf, kafka.state_topic, kafka.group_id, keys)
            if self.checkpointing
            else ({}, {})
        )
        plan = plan_restore(keys, committed, progress, checkpoints, self.labels_topic)
        return self.state.apply(plan, self.labels_topic)

    def on_assign(self, consumer: Consumer, partitions: list[TP]) -> None:
        log.info("assigned %s", [f"{p.topic}[{p.partition}]" for p in partitions])
        if self.labels_topic is not None:
            inputs, labels = split_assignment([(p.topic, p.partition) for p in partitions], self.labels_topic)
            if inputs != labels:
                log.error(
                    "input partitions %s but labels partitions %s: labels without their partition are lost",
                    sorted(inputs),
                    sorted(labels),
                )
        consumer.assign(self.restore(partitions))
        self.health.set_ready(None)
        self.idle.restart()  # a group rejoining (e.g. after a broker restart) is not idleness

    def on_revoke(self, consumer: Consumer, partitions: list[TP]) -> None:
        keys = [(p.topic, p.partition) for p in partitions if (p.topic, p.partition) in self.state.inputs]
        numbers = [p.partition for p in partitions if p.topic == self.labels_topic and p.partition in self.state.labels]
        # Offsets are committed per batch; checkpoint the state so the next owner
        # does not have to re-read events since the last periodic checkpoint.
        if keys and self.checkpointing and self.fatal() is None:
            try:
                self.txn.begin()
                for key, blob in self.state.due_checkpoints(keys, force=True):
                    self.txn.produce(self.config.kafka.state_topic, key, blob)
                self.commit(self.state.offsets(keys, numbers, self.labels_topic))
            except (Aborted, KafkaException) as exc:
                log.warning("could not checkpoint revoked partitions (%s); the next owner re-reads more", exc)
                with contextlib.suppress(KafkaException):
                    self.txn.abort()
        self.state.drop(keys, numbers)
        for gone in [*keys, *((self.labels_topic or "", n) for n in numbers)]:
            self.gauges.forget(*gone)
        consumer.unassign()
        log.info("revoked %s", keys)
