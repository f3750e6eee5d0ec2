"""Read a topic's partitions to their end (state restore, baselines from a topic)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition


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
