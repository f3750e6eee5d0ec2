"""The sidecar's start-up: the broker reached, the topics checked and created, transactions initialised."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from driftsentinel.schemas import SidecarConfig
from driftsentinel.stream.clients import STARTUP_TIMEOUT_S, StartupError, create_topics, explain, list_topics
from driftsentinel.stream.label_topic import check_labels_topic
from driftsentinel.stream.state_topic import ensure_state_topic


def start_up(config: SidecarConfig, admin: AdminClient, producer: Producer, labels_topic: str | None,
             checkpointing: bool, fatal: Callable[[], KafkaError | None]) -> None:
    """Reach the broker, check the topics, create the output topics, initialise transactions — or
    raise :class:`StartupError` saying why not."""
    kafka = config.kafka
    existing = list_topics(admin, kafka.bootstrap_servers, fatal)
    if labels_topic:
        check_labels_topic({t: m.partitions for t, m in existing.items()}, kafka.input_topic, labels_topic,
                           str(kafka.consumer.get("partition.assignment.strategy", "range")))
    create_topics(admin, (kafka.alerts_topic, kafka.dlq_topic), existing)
    if checkpointing:
        ensure_state_topic(admin, kafka.state_topic)
    if kafka.exactly_once:
        try:
            producer.init_transactions(STARTUP_TIMEOUT_S)
        except KafkaException as exc:
            why = explain(exc.args[0], kafka.bootstrap_servers)
            raise StartupError(f"cannot initialise transactions: {why}") from None
