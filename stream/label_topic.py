"""The late-label join's shell part: the labels topic's layout and its partitions' offsets.

The join itself (which prediction a label belongs to, how long either waits) is the
engine's (:mod:`driftsentinel.detectors.labels`). Here: the labels topic must exist and be
partitioned like the input topic, with the ``range`` assignor, so that partition ``i`` of
both topics is read by the same sidecar; and where each labels partition is.

>>> check_labels_topic({"in": [0, 1], "lab": [0, 1]}, "in", "lab", "range")
>>> check_labels_topic({"in": [0, 1], "lab": [0]}, "in", "lab", "range")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftsentinel.stream.clients.StartupError: kafka.labels_topic: 'lab' has 1 partitions, input topic 'in' has 2; ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING

from driftsentinel.stream.clients import StartupError


@dataclass
class LabelPosition:
    """A partition of the labels topic; its predictions live in the same-numbered input partition."""

    partition: int
    next_offset: int = OFFSET_BEGINNING  # where the next label is read (OFFSET_BEGINNING: from the start)
    published: bool = False  # this transaction holds alerts or DLQ records of the partition


def check_labels_topic(partitions: Mapping[str, Sized], input_topic: str, labels_topic: str, strategy: str) -> None:
    """``partitions``: each existing topic's partitions. Raises :class:`StartupError` on a bad layout."""
    if labels_topic not in partitions:
        raise StartupError(f"kafka.labels_topic: topic {labels_topic!r} does not exist")
    if strategy != "range":
        raise StartupError(
            f"kafka.consumer.partition.assignment.strategy: {strategy!r} with kafka.labels_topic; only 'range' "
            "keeps partition i of the input and labels topics on the same sidecar"
        )
    n_labels = len(partitions[labels_topic])
    n_input = len(partitions[input_topic]) if input_topic in partitions else None
    if n_input is not None and n_input != n_labels:
        raise StartupError(
            f"kafka.labels_topic: {labels_topic!r} has {n_labels} partitions, input topic "
            f"{input_topic!r} has {n_input}; they must be equal, each label in its request's partition number"
        )


def split_assignment(numbers: list[tuple[str, int]], labels_topic: str) -> tuple[set[int], set[int]]:
    """Input and labels partition numbers of an assignment (they should be equal).

    >>> split_assignment([("in", 0), ("lab", 0), ("in", 1)], "lab")
    ({0, 1}, {0})
    """
    inputs = {p for t, p in numbers if t != labels_topic}
    labels = {p for t, p in numbers if t == labels_topic}
    return inputs, labels
