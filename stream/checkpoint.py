"""Detector state checkpoints: a pickle-free codec and the compacted state topic.

A state topic can be written by anyone with access, so reading it must never execute
anything: records are msgpack maps whose arrays are tagged raw buffers of a whitelisted
numeric dtype, rebuilt with ``numpy.frombuffer``.

>>> import numpy as np
>>> blob = encode_state({"a": np.arange(3.0), "b": [1, None, "x"], "c": {"d": np.array([True])}})
>>> out = decode_state(blob)
>>> out["a"].tolist(), out["b"], out["c"]["d"].tolist()
([0.0, 1.0, 2.0], [1, None, 'x'], [True])
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from driftsentinel.stream.topic_reader import read_to_end

log = logging.getLogger("driftsentinel.checkpoint")

CODEC_VERSION = 1
_ARRAY_TAG = "__ndarray__"
_DTYPES = {"<f8", "<f4", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"}
#: State topic records can be big (one per partition, all features); keep the broker limit in step.
MAX_STATE_BYTES = 32 * 1024 * 1024


class StateFormatError(ValueError):
    """A state record that is not ours, or not of a version we read."""


def _pack(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        dtype = arr.dtype.str
        if dtype not in _DTYPES:
            raise TypeError(f"cannot checkpoint arrays of dtype {dtype}")
        return {_ARRAY_TAG: dtype, "shape": list(arr.shape), "data": arr.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _pack(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_pack(v) for v in obj]
    return obj


def _unpack(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _ARRAY_TAG in obj:
            dtype = obj[_ARRAY_TAG]
            if dtype not in _DTYPES:
                raise StateFormatError(f"array dtype {dtype!r} is not allowed")
            shape = tuple(int(n) for n in obj["shape"])
            arr = np.frombuffer(obj["data"], dtype=np.dtype(dtype))
            if arr.size != int(np.prod(shape)):
                raise StateFormatError("array data does not match its shape")
            return arr.reshape(shape).copy()
        return {k: _unpack(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v) for v in obj]
    return obj


def encode_state(state: dict[str, Any]) -> bytes:
    """Serialise a state dict (numbers, strings, lists, dicts, numeric numpy arrays), zlib-compressed."""
    return zlib.compress(msgpack.packb({"codec": CODEC_VERSION, "state": _pack(state)}, use_bin_type=True), 1)


def decode_state(blob: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_state`; raises :class:`StateFormatError` on anything else."""
    try:
        raw = zlib.decompressobj().decompress(blob, MAX_STATE_BYTES * 8)
    except zlib.error as exc:
        raise StateFormatError(f"not a compressed state record: {exc}") from None
    try:
        doc = msgpack.unpackb(raw, raw=False, strict_map_key=True, max_bin_len=MAX_STATE_BYTES * 8)
    except Exception as exc:  # msgpack raises several unrelated types
        raise StateFormatError(f"not a msgpack state record: {exc}") from None
    if not isinstance(doc, dict) or doc.get("codec") != CODEC_VERSION or not isinstance(doc.get("state"), dict):
        raise StateFormatError("unknown state record format")
    return _unpack(doc["state"])


def state_key(group: str, topic: str, partition: int) -> bytes:
    """The compaction key of one input partition's state."""
    return f"{group}/{topic}/{partition}".encode()


def progress_key(group: str, topic: str, partition: int) -> bytes:
    """The compaction key of one input partition's progress marker.

    Every transaction that publishes alerts or DLQ records of the partition writes with them
    a tiny record of how far the partition has been processed. On restore it bounds what was
    already published even when the group's committed offset reads stale (the marker is
    committed atomically with the alerts).
    """
    return state_key(group, topic, partition) + b"#progress"


@dataclass(frozen=True)
class PartitionState:
    """What a checkpoint holds for one input partition."""

    next_offset: int
    state: dict[str, Any]


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


def load_states(
    bootstrap: dict[str, Any], topic: str, keys: set[bytes], timeout: float = 60.0
) -> dict[bytes, PartitionState]:
    """Read the state topic to its end; the newest readable record for each wanted key.

    Records that fail to decode are logged and skipped (the partition then starts from
    its committed offset without state, which is correct, just slower to warm up).
    """
    consumer = Consumer(
        {
            **bootstrap,
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
            key = msg.key()
            if key in keys:
                if msg.value() is None:
                    found.pop(key, None)  # tombstone
                else:
                    found[key] = msg.value()
    finally:
        consumer.close()
    out: dict[bytes, PartitionState] = {}
    for key, blob in found.items():
        try:
            doc = decode_state(blob)
            out[key] = PartitionState(next_offset=int(doc["next_offset"]), state=doc)
        except (StateFormatError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring unreadable state record %s: %s", key.decode(errors="replace"), exc)
    return out
