"""Partition checkpoints: the document (built and parsed here only) and its pickle-free codec.

The state topic's I/O is :mod:`driftsentinel.stream.state_topic`; what a restart does with
a checkpoint is :mod:`driftsentinel.stream.restore`.

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

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

CODEC_VERSION = 1
_ARRAY_TAG = "__ndarray__"
_DTYPES = {"<f8", "<f4", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"}
#: State topic records can be big (one per partition, all features); keep the broker limit in step.
MAX_STATE_BYTES = 32 * 1024 * 1024


class StateFormatError(ValueError):
    """A state record that is not ours, or not of a version we read."""


@dataclass(frozen=True)
class Rejected:
    """A state record set aside: which (``checkpoint`` or ``progress``), why (``reason``, one of
    :data:`driftsentinel.detectors.state_check.REASONS`: the metric's label) and what was wrong."""

    record: str
    reason: str
    detail: str


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


#: Nesting deeper than any state we write is not ours (and would exhaust the stack).
MAX_DEPTH = 32


def _unpack(obj: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise StateFormatError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(obj, dict):
        if _ARRAY_TAG in obj:
            return _unpack_array(obj)
        return {k: _unpack(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v, depth + 1) for v in obj]
    return obj


def _unpack_array(obj: dict[str, Any]) -> np.ndarray:
    """A tagged array: whitelisted dtype, a shape of non-negative ints that its bytes fill exactly."""
    dtype, shape, data = obj[_ARRAY_TAG], obj.get("shape"), obj.get("data")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise StateFormatError(f"array dtype {dtype!r} is not allowed")
    if not (isinstance(shape, list) and len(shape) <= 8 and all(type(n) is int and n >= 0 for n in shape)):
        raise StateFormatError(f"array shape {shape!r} is not a list of non-negative integers")
    if not isinstance(data, bytes):
        raise StateFormatError("array data is not bytes")
    arr = np.frombuffer(data, dtype=np.dtype(dtype)) if len(data) % np.dtype(dtype).itemsize == 0 else None
    if arr is None or arr.size != math.prod(shape):
        raise StateFormatError("array data does not match its shape")
    return arr.reshape(shape).copy()


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


DOC_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """One input partition's checkpoint: the engine's state as of ``next_offset``.

    ``engine``: :meth:`driftsentinel.detectors.engine.Engine.state` (banks, policy, feature
    episodes, with late labels their join and policy, with performance estimation its monitors);
    ``labels_next_offset``: where the labels partition of the same number was when it was
    taken (``None``: no labels topic, or not known).

    >>> c = Checkpoint("g", "t", 0, 42, {"banks": {}, "policy": [], "labels": {"join": {}, "policy": []}}, 7)
    >>> d = Checkpoint.decode(c.encode())
    >>> d == c, sorted(decode_state(c.encode()))
    (True, ['banks', 'group', 'labels', 'next_offset', 'partition', 'policy', 'topic', 'version'])
    """

    group: str
    topic: str
    partition: int
    next_offset: int
    engine: Mapping[str, Any]
    labels_next_offset: int | None = None

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "version": DOC_VERSION,
            "group": self.group,
            "topic": self.topic,
            "partition": self.partition,
            "next_offset": self.next_offset,
            "banks": self.engine["banks"],
            "policy": self.engine["policy"],
        }
        if "labels" in self.engine:
            doc["labels"] = {"next_offset": self.labels_next_offset, **self.engine["labels"]}
        if "performance" in self.engine:  # live performance estimation's monitors
            doc["performance"] = self.engine["performance"]
        if "episodes" in self.engine:  # the feature episodes (one change, one alert)
            doc["episodes"] = self.engine["episodes"]
        return encode_state(doc)

    @classmethod
    def decode(cls, blob: bytes) -> Checkpoint:
        """Parse a state record; :class:`StateFormatError` when it is not a checkpoint we read."""
        doc = decode_state(blob)
        try:
            engine: dict[str, Any] = {"banks": doc["banks"], "policy": doc.get("policy", [])}
            if doc.get("performance") is not None:
                engine["performance"] = doc["performance"]
            if doc.get("episodes") is not None:  # absent from checkpoints written before feature episodes
                engine["episodes"] = doc["episodes"]
            labels = doc.get("labels")
            offset = None
            if labels is not None:
                engine["labels"] = {"join": labels["join"], "policy": labels.get("policy", [])}
                offset = None if labels.get("next_offset") is None else int(labels["next_offset"])
            return cls(
                str(doc.get("group", "")),
                str(doc.get("topic", "")),
                int(doc.get("partition", -1)),
                int(doc["next_offset"]),
                engine,
                offset,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFormatError(f"not a checkpoint: {exc!r}") from None


def encode_progress(next_offset: int) -> bytes:
    """A progress marker (:func:`progress_key`): how far the partition's published output goes.

    >>> decode_progress(encode_progress(17))
    17
    """
    return encode_state({"next_offset": next_offset})


def decode_progress(blob: bytes) -> int:
    try:
        return int(decode_state(blob)["next_offset"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFormatError(f"not a progress marker: {exc!r}") from None
