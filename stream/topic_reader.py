"""Read a topic's partitions to their end (state restore, baselines from a topic).

Short-lived clients (``baseline --from-topic``, ``demo``) first check that the broker
answers (:func:`reach_broker`, bounded by ``CONNECT_TIMEOUT_S``) and keep librdkafka's
own log lines out of the terminal (:func:`quiet`): a broker that is down is one line,
:class:`BrokerUnreachable`, not hundreds of connection-refused lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

#: How long a short-lived client waits for the broker to answer before giving up.
CONNECT_TIMEOUT_S = 5.0

#: librdkafka's log lines of short-lived clients: dropped (errors reach the user as exceptions).
_quiet_log = logging.getLogger("driftsentinel.rdkafka.quiet")
_quiet_log.addHandler(logging.NullHandler())
_quiet_log.propagate = False


class BrokerUnreachable(RuntimeError):
    """The broker did not answer, or refused this client (the message says which and what to do)."""


def quiet(conf: dict[str, Any]) -> dict[str, Any]:
    """``conf`` with librdkafka's log lines routed to a silent logger instead of stderr."""
    return {**conf, "logger": _quiet_log}


def reach_broker(conf: dict[str, Any], timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Return once the cluster answers a metadata request; :class:`BrokerUnreachable` after ``timeout_s``.

    ``conf`` holds ``bootstrap.servers`` and the client-level settings (security). An
    authentication failure is reported as such, not as an unreachable broker.
    """
    servers = conf.get("bootstrap.servers", "?")
    errors: list[KafkaError] = []
    admin = AdminClient(quiet(conf) | {"error_cb": errors.append})
    try:
        admin.list_topics(timeout=timeout_s)
        return
    except KafkaException:
        admin.poll(0.1)  # serves error_cb: an authentication error arrives there
    auth = [e for e in errors if e.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED)]
    if auth:
        raise BrokerUnreachable(
            f"Kafka at {servers} refused this client: {auth[0].str()} (check the sasl.*/ssl.* settings in kafka.common)"
        )
    raise BrokerUnreachable(
        f"cannot reach Kafka at {servers} within {timeout_s:g}s — is the broker running? "
        "(driftsentinel local-kafka start)"
    )


def read_to_end(
    consumer: Consumer,
    partitions: list[TopicPartition],
    timeout_s: float,
    stop: Callable[[Message], bool] | None = None,
    strict: bool = True,
) -> Iterator[Message]:
    """Assign ``partitions`` (with their start offsets) and yield messages until each ends.

    The consumer needs ``enable.partition.eof``; its end is the high watermark, or the
    last stable offset under ``read_committed``. A partition also ends at the first
    message for which ``stop(msg)`` is true (not yielded). ``strict``: other errors raise
    and running past ``timeout_s`` raises TimeoutError; otherwise errors are skipped and
    the reading just ends at the timeout.
    """
    consumer.assign(partitions)
    pending = {tp.partition for tp in partitions}
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            if strict:
                raise TimeoutError(f"partitions {sorted(pending)} not read to their end within {timeout_s}s")
            return
        for msg in consumer.consume(1000, timeout=0.5):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                elif strict:
                    raise KafkaException(err)
                continue
            if msg.partition() not in pending:
                continue
            if stop is not None and stop(msg):
                pending.discard(msg.partition())
                continue
            yield msg
