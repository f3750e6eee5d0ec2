"""The compacted state topic: create it, read the newest record of each wanted key.

Records are written inside the batch's transaction (:mod:`driftsentinel.stream.transaction`);
what they hold is :mod:`driftsentinel.stream.checkpoint`'s to say.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from driftsentinel.stream.checkpoint import (
    MAX_STATE_BYTES,
    Checkpoint,
    StateFormatError,
    decode_progress,
    progress_key,
    state_key,
)
from driftsentinel.stream.topic_reader import read_to_end

log = logging.getLogger("driftsentinel.checkpoint")


def ensure_state_topic(admin: AdminClient, topic: str) -> None:
    """Create the compacted state topic if it does not exist."""
    if topic in admin.list_topics(timeout=10).topics:
        return
    spec = NewTopic(
        topic,
        num_partitions=1,
        replication_factor=-1,
        config={"cleanup.policy": "compact", "max.message.bytes": str(MAX_STATE_BYTES)},
    )
    fut = admin.create_topics([spec])[topic]
    try:
        fut.result(timeout=30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def read_records(settings: dict[str, Any], topic: str, keys: set[bytes], timeout: float = 60.0) -> dict[bytes, bytes]:
    """Read the state topic to its end (read_committed); the newest value of each wanted key
    (a tombstone removes the key)."""
    consumer = Consumer(
        {
            **settings,
            "group.id": "driftsentinel-state-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.message.max.bytes": MAX_STATE_BYTES,
        }
    )
    found: dict[bytes, bytes] = {}
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        for msg in read_to_end(consumer, parts, timeout):
            key, value = msg.key(), msg.value()
            if key in keys:
                if value is None:
                    found.pop(key, None)
                else:
                    found[key] = value
    finally:
        consumer.close()
    return found


def read_checkpoints(settings: dict[str, Any], topic: str, group: str, partitions: list[tuple[str, int]],
                     ) -> tuple[dict[tuple[str, int], Checkpoint], dict[tuple[str, int], int]]:
    """The newest checkpoint and progress marker of each partition; unreadable records are
    logged and skipped (the partition then starts from its committed offset without state,
    which is correct, just slower to warm up)."""
    wanted = {state_key(group, *key): key for key in partitions}
    marks = {progress_key(group, *key): key for key in partitions}
    checkpoints: dict[tuple[str, int], Checkpoint] = {}
    progress: dict[tuple[str, int], int] = {}
    for raw_key, blob in read_records(settings, topic, {*wanted, *marks}).items():
        try:
            if raw_key in wanted:
                checkpoints[wanted[raw_key]] = Checkpoint.decode(blob)
            else:
                progress[marks[raw_key]] = decode_progress(blob)
        except StateFormatError as exc:
            log.warning("ignoring unreadable state record %s: %s", raw_key.decode(errors="replace"), exc)
    return checkpoints, progress
