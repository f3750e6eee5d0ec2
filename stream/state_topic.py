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
    Rejected,
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


class Checkpoints(dict[tuple[str, int], Checkpoint]):
    """The checkpoints read for a restore, and the records set aside (``rejected``, by partition):
    the restore plan rebuilds a partition whose checkpoint was rejected from its earliest offset."""

    def __init__(self) -> None:
        super().__init__()
        self.rejected: dict[tuple[str, int], list[Rejected]] = {}


def watermarks(
    settings: dict[str, Any], partitions: list[tuple[str, int]], timeout: float = 10.0
) -> dict[tuple[str, int], tuple[int, int]]:
    """(low, high) offsets of each partition; a partition whose watermarks cannot be read is left out."""
    consumer = Consumer({**settings, "group.id": "driftsentinel-state-reader", "enable.auto.commit": False})
    out = {}
    try:
        for topic, partition in partitions:
            try:
                out[(topic, partition)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
            except KafkaException as exc:
                log.warning(
                    "watermarks of %s[%d] not readable (%s): its state records are not range-checked",
                    topic,
                    partition,
                    exc,
                )
    finally:
        consumer.close()
    return out


def _offset_problem(offset: int, key: tuple[str, int], marks: dict[tuple[str, int], tuple[int, int]]) -> str | None:
    """Why ``offset`` cannot be a position of partition ``key`` (``None``: it can)."""
    if offset < 0:
        return f"offset {offset} is negative"
    high = marks.get(key, (0, None))[1]
    if high is not None and offset > high:
        return f"offset {offset} is beyond the partition's high watermark {high}"
    return None


def read_checkpoints(
    settings: dict[str, Any],
    topic: str,
    group: str,
    partitions: list[tuple[str, int]],
) -> tuple[Checkpoints, dict[tuple[str, int], int]]:
    """The newest checkpoint and progress marker of each partition. A record that cannot be read,
    or whose offset is outside its partition (negative, beyond the high watermark), is logged and set
    aside (``Checkpoints.rejected``): the restore then rebuilds the partition instead of trusting it."""
    wanted = {state_key(group, *key): key for key in partitions}
    marks = {progress_key(group, *key): key for key in partitions}
    checkpoints = Checkpoints()
    progress: dict[tuple[str, int], int] = {}
    records = read_records(settings, topic, {*wanted, *marks})
    bounds = watermarks(settings, [wanted.get(k) or marks[k] for k in records]) if records else {}
    for raw_key, blob in records.items():
        key, kind = (wanted[raw_key], "checkpoint") if raw_key in wanted else (marks[raw_key], "progress")
        try:
            found = Checkpoint.decode(blob) if kind == "checkpoint" else None
            offset = found.next_offset if found is not None else decode_progress(blob)
        except StateFormatError as exc:
            reject(checkpoints, key, Rejected(kind, "unreadable", str(exc)))
            continue
        problem = _offset_problem(offset, key, bounds)
        if problem is not None:
            reject(checkpoints, key, Rejected(kind, "offset", problem))
        elif found is not None:
            checkpoints[key] = found
        else:
            progress[key] = offset
    return checkpoints, progress


def reject(checkpoints: Checkpoints, key: tuple[str, int], why: Rejected) -> None:
    """Set a state record aside, saying so (the restore reports it in metrics and /readyz)."""
    then = (
        "the partition is rebuilt from its earliest offset"
        if why.record == "checkpoint"
        else "the committed offset bounds what was published"
    )
    log.error(
        "state record set aside: %s of %s[%d] rejected (%s): %s; %s", why.record, *key, why.reason, why.detail, then
    )
    checkpoints.rejected.setdefault(key, []).append(why)
