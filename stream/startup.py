"""The sidecar's start-up: the broker reached, the topics checked and created, transactions initialised.

A first start fails fast (:class:`StartupError` after ``STARTUP_TIMEOUT_S``: a wrong address is a
configuration error). A process the broker watch re-executed (``REEXEC_ENV`` set) was running
fine until the broker went away: it waits for the broker as long as it takes, readiness red with
the reason, until the broker answers or a stop is requested (:class:`Stopped`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from driftsentinel.schemas import SidecarConfig
from driftsentinel.stream.broker_watch import REEXEC_ENV
from driftsentinel.stream.checkpoint import MAX_STATE_BYTES
from driftsentinel.stream.clients import (
    STARTUP_TIMEOUT_S,
    StartupError,
    Stopped,
    create_topics,
    dlq_bound,
    explain,
    list_topics,
)
from driftsentinel.stream.label_topic import check_labels_topic
from driftsentinel.stream.state_topic import ensure_state_topic

log = logging.getLogger("driftsentinel")


def labels_and_checkpoints(config: SidecarConfig) -> tuple[str | None, bool]:
    """The labels topic actually read (concept drift on) and whether checkpoints are written (kernel
    backend); a setting that has no effect is logged."""
    labels_topic = config.kafka.labels_topic if config.detectors.concept_drift.enabled else None
    if config.kafka.labels_topic and labels_topic is None:
        log.warning("kafka.labels_topic is set but detectors.concept_drift is disabled: labels are not read")
    checkpointing = config.checkpoint.enabled and config.detectors.backend == "kernel"
    if config.checkpoint.enabled and not checkpointing:
        log.warning("checkpoints need detectors.backend=kernel; state is kept in memory only")
    return labels_topic, checkpointing


def start_up(
    config: SidecarConfig,
    admin: AdminClient,
    producer: Producer,
    labels_topic: str | None,
    checkpointing: bool,
    fatal: Callable[[], KafkaError | None],
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Reach the broker, check the topics, create the output topics, initialise transactions — or
    raise :class:`StartupError` saying why not (:class:`Stopped` if a stop came while waiting).
    Returns the largest DLQ record to produce (:func:`driftsentinel.stream.clients.dlq_bound`)."""
    kafka = config.kafka
    patient = os.environ.pop(REEXEC_ENV, None) is not None  # not inherited by anything started later
    timeout = math.inf if patient else STARTUP_TIMEOUT_S
    existing = list_topics(admin, kafka.bootstrap_servers, fatal, timeout, stopping)
    if labels_topic:
        check_labels_topic(
            {t: m.partitions for t, m in existing.items()},
            kafka.input_topic,
            labels_topic,
            str(kafka.consumer.get("partition.assignment.strategy", "range")),
        )
    create_topics(admin, (kafka.alerts_topic, kafka.dlq_topic), existing)
    if checkpointing:
        ensure_state_topic(admin, kafka.state_topic)
    producer_max = int(kafka.producer.get("message.max.bytes", MAX_STATE_BYTES + 1024 * 1024))
    bound = dlq_bound(admin, config, producer_max)
    if kafka.exactly_once:
        _init_transactions(producer, kafka.bootstrap_servers, patient, stopping)
    return bound


def _init_transactions(producer: Producer, servers: str, patient: bool, stopping: Callable[[], bool]) -> None:
    """``init_transactions`` (fences and aborts the previous life's open transaction); a patient
    start retries it while the broker is away, a first start fails after ``STARTUP_TIMEOUT_S``."""
    while True:
        try:
            producer.init_transactions(STARTUP_TIMEOUT_S)
            return
        except KafkaException as exc:
            err: KafkaError = exc.args[0]
            if not patient or err.fatal() or not err.retriable():
                raise StartupError(f"cannot initialise transactions: {explain(err, servers)}") from None
        if stopping():
            raise Stopped("stop requested while waiting for the broker")
        time.sleep(0.5)
